/*
 * record/capture.c: what the watchdog learns about a blocked loop thread
 * at its span's threshold crossing, as raw facts (docs/STACKS.md).
 *
 * Owns: one struct elmon_capture per loop slot (allocated at the slot's
 * first crossing, kept across reuse), the capture signal and its handler.
 * Threads: the watchdog (everything but the handler); the loop thread, in
 * the handler (async-signal-safe code only: tests/hot_path_contract.sh
 * checks what it reaches).
 * May not: symbolize, classify or format anything (interpret/ does, once),
 * touch another slot's capture from the handler, or change the host's
 * errno or signal dispositions.
 *
 * A capture has two parts with two owners:
 *   - the handshake block, written by the handler on the loop thread and by
 *     the watchdog, ordered by hstate (acquire/release);
 *   - the result (raw return addresses, Python frames, /proc readings),
 *     written by the watchdog under lock; seq counts its changes, so the
 *     report built from it is rebuilt only when it changed (a late answer).
 */
#ifndef ELMON_CAPTURE_H
#define ELMON_CAPTURE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "cause.h"
#include "loop.h"

#define ELMON_CAPTURE_MAX_FRAMES 64
#define ELMON_CAPTURE_MAX_PY 64

/* Handshake states (hstate). */
enum {
    ELMON_H_IDLE = 0,
    ELMON_H_ARMED,        /* watchdog: the signal is on its way */
    ELMON_H_RUNNING,      /* handler: unwinding */
    ELMON_H_DONE,         /* handler: addrs[] is in */
};

/* Handler notes (hflags). */
#define ELMON_HF_IN_LOADER   1   /* interrupted inside the dynamic loader: no native unwind */
#define ELMON_HF_TURN_ENDED  2   /* the span had ended when the handler ran */

/* A Python frame as read from the interpreter (record/pyframes.c);
 * strings in the capture's arena. */
struct elmon_pyframe {
    const char *file;
    const char *function;
    int line;
};

/* The mapping an address of addrs[] was in, from /proc/self/maps read
 * right after the stack was taken: the module a frame is named after is
 * the one that held its code then, whatever the loader's lists say later. */
struct elmon_capture_map {
    uint64_t start;              /* the mapping's first address */
    uint64_t file_off;           /* its offset in the file */
    const char *path;            /* the file (capture arena); NULL: anonymous memory */
    int found;                   /* 0: in no executable mapping (or not read) */
};

struct elmon_capture {
    /* --- handshake (handler and watchdog) --- */
    int hstate;
    int tid;                     /* the thread the signal is for */
    uint64_t armed_busy_since;   /* the span being captured */
    int hflags;
    int n_addrs;
    uint64_t handler_ns;         /* time spent inside the handler */
    uint64_t handler_cpu_ns;     /* CPU time of it (UINT64_MAX: the clock was refused) */
    uint64_t done_ns;            /* CLOCK_MONOTONIC when the handler finished */
    uintptr_t addrs[ELMON_CAPTURE_MAX_FRAMES];

    /* --- result (watchdog; lock for the exiting thread) --- */
    pthread_mutex_t lock;
    int valid;
    uint32_t generation;
    uint64_t turn;
    uint32_t seq;                /* bumped whenever the result changes */
    int pending;                 /* signal sent, answer not in yet */
    uint64_t cross_ns;           /* CLOCK_MONOTONIC of the threshold crossing */
    uint64_t arm_ns;
    const char *how;             /* "signal", "proc", "none" */
    int addrs_first_is_return;   /* addrs[0] is a return address too (a /proc unwind) */
    struct elmon_capture_map maps[ELMON_CAPTURE_MAX_FRAMES];   /* of addrs[], n_addrs of them */
    int late_wait;               /* the wait for the answer ended with the signal still armed: a late answer is taken */
    int have_task;               /* task below was read */
    struct elmon_task task;      /* /proc at the crossing */
    double cpu_share;            /* of the thread over >= 5 ms from the crossing, -1 unknown */
    double span_ms;              /* the span's length at the crossing */
    double stack_ms;             /* crossing -> raw stack in hand, -1: none */
    int n_py;
    struct elmon_pyframe py[ELMON_CAPTURE_MAX_PY];
    /* The whole Python stack, beyond the frames kept: */
    int py_header;               /* the thread's thread state was found and its frames read */
    int py_depth;                /* frames read (walked, and agreed on when partial) */
    int py_truncated;            /* the chain went on past the frames walked */
    int py_partial;              /* it changed while read: innermost frames left out */
    int py_loop;                 /* a frame of an event loop's run method was in it */
    int py_unsure;               /* frames missing where a run method could be: no outside-a-loop verdict */
    const char *py_task_function;   /* the outermost coroutine: what the asyncio task runs, NULL none */
    const char *py_task_file;
    int py_task_line;
    uint64_t py_read_ns;         /* watchdog CPU time of the Python read, UINT64_MAX none */
    char note[192];
    struct elmon_arena arena;    /* the Python frames' strings */
    char arena_mem[16384];
};

/* A copy of s[0..n) in the capture's arena: "" when full, NULL for NULL. */
static inline const char *elmon_capture_str(struct elmon_capture *c, const char *s, size_t n)
{
    if (!s)
        return NULL;
    uint32_t off = elmon_arena_put(&c->arena, s, n);
    return off ? c->arena.p + off : "";
}

/* The capture at a crossing (watchdog): cause readings, then the stack by
 * signal or from /proc.  Sets stacks off/native/all from ELMON_STACKS. */
void elmon_capture_on_cross(struct elmon_loop *l, uint64_t turn);
/* The capture of the loop's span `turn`, locked, with a late handler answer
 * taken first when settle is set (watchdog, or the exiting thread once the
 * watchdog has stopped); NULL when that span was not captured. */
struct elmon_capture *elmon_capture_lock_span(struct elmon_loop *l, uint64_t turn, int settle);
void elmon_capture_unlock(struct elmon_capture *c);
/* ELMON_PY_LOOP_CHECK (default on). */
int elmon_capture_loop_check(void);
void elmon_capture_atfork_child(void);

#endif
