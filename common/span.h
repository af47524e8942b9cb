/*
 * The span report: one blocking span, interpreted once, as every output
 * renders it (docs/ARCHITECTURE.md).
 *
 * Owner: preload/interpret/span.c builds it, on the watchdog thread (or on
 * the exiting thread once the watchdog has stopped), from the raw capture
 * (return addresses, Python frames, /proc readings) and the watchdog's
 * timings.  Every sink (events file, human log, folded stacks, live stats,
 * OTLP) reads it and nothing else; none may change it.
 *
 * Flat and versioned, because it crosses the .so boundary into
 * libelmon-exporter.so, which queues copies of it: no pointers, strings are
 * offsets into text[] (0: none), and the used part is the first
 * elmon_span_report_len() bytes.  The static asserts below pin the layout;
 * a change bumps ELMON_SPAN_REPORT_VERSION (and the exporter API version).
 */
#ifndef ELMON_SPAN_H
#define ELMON_SPAN_H

#include <stddef.h>
#include <stdint.h>

#define ELMON_SPAN_REPORT_VERSION 3
#define ELMON_SPAN_MAX_FRAMES 64
#define ELMON_SPAN_MAX_PY 64
#define ELMON_SPAN_TEXT_BYTES 32768

/* When the report was made: at the threshold crossing (block_begin, the
 * span still running) or at the span's end (block). */
enum elmon_span_phase { ELMON_SPAN_BEGIN = 0, ELMON_SPAN_END = 1 };

/* The culprit a report names: a Python frame, a JIT-compiled function, a
 * native frame, a statement of where in the runtime the thread is (no
 * frame of the application known), or none (not captured). */
enum elmon_culprit_kind {
    ELMON_CULPRIT_NONE = 0, ELMON_CULPRIT_PY, ELMON_CULPRIT_JIT, ELMON_CULPRIT_NATIVE, ELMON_CULPRIT_RUNTIME
};

struct elmon_span_frame {          /* a native frame, innermost first */
    uint64_t addr;                 /* a return address except for frame 0 */
    uint64_t offset;               /* addr minus the module's load base */
    uint32_t module, build_id, function, file;   /* text offsets */
    int32_t line;                  /* 0: unknown */
    uint32_t flags;                /* ELMON_FRAME_* */
    uint32_t symbol;               /* text: the raw symbol when function is its demangling, 0 otherwise */
    uint32_t reserved;
};
#define ELMON_FRAME_VM 1           /* a language runtime's own code (the interpreter, the VM) */

struct elmon_span_pyframe {        /* a Python frame, innermost first */
    uint32_t file, function;
    int32_t line;
    uint32_t reserved;
};

struct elmon_span_cause {
    char cls[8];                   /* cpu, sleep, io, lock, disk, unknown */
    char state;                    /* /proc state letter, 0 when unread */
    char reserved[7];
    int64_t nr;                    /* system call; -1 running in user mode, -2 unknown */
    char syscall[32];              /* its name, "" when none */
    double cpu_ms;                 /* CPU time of the span, -1 unknown */
};

struct elmon_span_report {
    uint32_t size;                 /* sizeof(struct elmon_span_report) of the builder */
    uint32_t version;              /* ELMON_SPAN_REPORT_VERSION */

    /* --- the span (the watchdog's timings) --- */
    int32_t pid, tid;
    char thread[64];
    int32_t poller;                /* enum elmon_poller (preload/hot/loop.h) */
    int32_t phase;                 /* enum elmon_span_phase */
    int32_t end;                   /* enum elmon_span_end, when phase is END */
    int32_t critical;              /* duration >= ELMON_CRITICAL_MS */
    uint64_t turn;
    uint64_t start_unix_ns;
    uint64_t duration_ns;          /* busy time; so far at BEGIN */
    uint64_t lag_ns;

    /* --- the capture, interpreted; captured 0: none for this span --- */
    int32_t captured;
    int32_t culprit_kind;          /* enum elmon_culprit_kind */
    int32_t culprit_frame;         /* the frame it names (frames[] or py[]), -1 none */
    uint32_t culprit;              /* text: "function (file:line)", 0 when none */
    char how[8];                   /* signal, proc, none */
    struct elmon_span_cause cause;
    double stack_ms;               /* crossing -> raw stack in hand, -1 none */
    double handler_us;             /* wall time in the handler, -1 none */
    double handler_cpu_us;         /* CPU time of it, -1 none */
    uint32_t note;                 /* text: why the capture is partial, 0 none */
    int32_t n_frames, n_py;
    uint32_t text_len;             /* bytes of text[] in use */
    uint32_t task;                 /* text: "function (file:line)" of the running asyncio task's coroutine, 0 none */
    uint32_t reserved;
    double py_read_us;             /* watchdog CPU time reading the Python frames, -1 none */
    struct elmon_span_frame frames[ELMON_SPAN_MAX_FRAMES];
    struct elmon_span_pyframe py[ELMON_SPAN_MAX_PY];
    char text[ELMON_SPAN_TEXT_BYTES];   /* last: a copy may stop after text_len */
};

_Static_assert(sizeof(struct elmon_span_frame) == 48, "span frame layout");
_Static_assert(sizeof(struct elmon_span_pyframe) == 16, "span Python frame layout");
_Static_assert(sizeof(struct elmon_span_cause) == 64, "span cause layout");
_Static_assert(offsetof(struct elmon_span_report, thread) == 16, "span report layout");
_Static_assert(offsetof(struct elmon_span_report, turn) == 96, "span report layout");
_Static_assert(offsetof(struct elmon_span_report, captured) == 128, "span report layout");
_Static_assert(offsetof(struct elmon_span_report, cause) == 152, "span report layout");
_Static_assert(offsetof(struct elmon_span_report, frames) == 272, "span report layout");
_Static_assert(offsetof(struct elmon_span_report, text) == 272 + 48 * ELMON_SPAN_MAX_FRAMES + 16 * ELMON_SPAN_MAX_PY,
               "span report layout");

/* A string of the report: NULL for offset 0 or one outside the text. */
static inline const char *elmon_span_str(const struct elmon_span_report *r, uint32_t off)
{
    return off && off < r->text_len && off < sizeof r->text ? r->text + off : NULL;
}

/* The bytes a copy must take: everything up to the used text. */
static inline size_t elmon_span_report_len(const struct elmon_span_report *r)
{
    size_t t = r->text_len < sizeof r->text ? r->text_len : sizeof r->text;
    return offsetof(struct elmon_span_report, text) + t;
}

#endif
