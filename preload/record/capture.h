/*
 * Stack capture: what the watchdog learns about a blocked loop thread while
 * the span runs (docs/STACKS.md).
 *
 * One struct elmon_capture per loop slot, allocated by the watchdog at the
 * slot's first crossing and kept across slot reuse (loop.h).  It has two
 * parts with two owners:
 *   - the handshake block, written by the signal handler on the loop thread
 *     and by the watchdog, ordered by hstate (acquire/release);
 *   - the result (cause, symbolized frames, Python frames), written by the
 *     watchdog only, under lock so that a reader on another thread
 *     (elmon_capture_culprit) sees a whole one.
 *
 * Modules: capture.c (policy, hooks, output), unwind.c (libunwind, in the
 * handler and from /proc registers), symbolize.c (libdw, perf maps),
 * cause.c (/proc/self/task/TID), pyframes.c (CPython's traceback dumper).
 */
#ifndef ELMON_CAPTURE_H
#define ELMON_CAPTURE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define ELMON_CAPTURE_MAX_FRAMES 64
#define ELMON_CAPTURE_MAX_PY 64

/* Handshake states (hstate). */
enum {
    ELMON_H_IDLE = 0,
    ELMON_H_ARMED,        /* watchdog: the signal is on its way */
    ELMON_H_RUNNING,      /* handler: unwinding */
    ELMON_H_DONE,         /* handler: addrs[] and the Python dump are in */
};

/* Handler notes (hflags). */
#define ELMON_HF_IN_LOADER   1   /* interrupted inside the dynamic loader: no native unwind */
#define ELMON_HF_TURN_ENDED  2   /* the span had ended when the handler ran */
#define ELMON_HF_PY_DUMPED   4

/* Registers the unwinder starts from (x86-64 DWARF numbering: rax, rdx,
 * rcx, rbx, rsi, rdi, rbp, rsp, r8..r15, rip). */
struct elmon_regs {
    uint64_t r[17];
    uint32_t valid;              /* bit per register */
};

struct elmon_frame {
    uintptr_t addr;
    uintptr_t offset;            /* addr minus the module's load base */
    const char *module;          /* strings point into the capture's arena */
    const char *build_id;        /* hex */
    const char *function;
    const char *file;
    int line;                    /* 0: unknown */
};

struct elmon_pyframe {
    const char *file;
    const char *function;
    int line;
};

struct elmon_cause {
    char cls[8];                 /* cpu, sleep, io, lock, disk, unknown */
    char state;                  /* /proc state letter, 0 when unread */
    long nr;                     /* syscall number; -1 running in user mode, -2 unknown */
    char syscall[32];
    double cpu_ms;
};

struct elmon_capture {
    /* --- handshake (handler and watchdog) --- */
    int hstate;
    int tid;                     /* the thread the signal is for */
    uint64_t armed_busy_since;   /* the span being captured */
    int want_python;
    int hflags;
    int n_addrs;
    uint64_t handler_ns;         /* time spent inside the handler */
    uint64_t handler_cpu_ns;     /* CPU time of it: the wall time less preemption */
    uint64_t done_ns;            /* CLOCK_MONOTONIC when the handler finished */
    uintptr_t addrs[ELMON_CAPTURE_MAX_FRAMES];

    /* --- result (watchdog; lock for readers on other threads) --- */
    pthread_mutex_t lock;
    int valid;
    uint32_t generation;
    uint64_t turn;
    int pending;                 /* signal sent, answer not in yet */
    uint64_t cross_ns;           /* CLOCK_MONOTONIC of the threshold crossing */
    uint64_t arm_ns;
    const char *how;             /* "signal", "proc", "none" */
    struct elmon_cause cause;
    double stack_ms;             /* crossing -> raw stack in hand, -1: none */
    int n_frames;
    struct elmon_frame frames[ELMON_CAPTURE_MAX_FRAMES];
    int n_py;
    struct elmon_pyframe py[ELMON_CAPTURE_MAX_PY];
    /* The whole Python dump, beyond the frames kept: */
    int py_header;               /* CPython dumped a thread state ("Stack (most recent call first)") */
    int py_truncated;            /* it stopped at its frame limit ("...") */
    int py_loop;                 /* a frame of an event loop's run method was in it */
    char note[192];
    size_t arena_len;
    char arena[40960];
};

/* A copy of s into the capture's arena; "" when full, NULL for NULL. */
const char *elmon_capture_str(struct elmon_capture *c, const char *s, size_t n);
/* Which of a symbolized stack's frames names the culprit: the innermost
 * outside libc, the loader, libelmon and a sanitizer's runtime.  -1 when
 * n is 0. */
int elmon_culprit_frame(const struct elmon_frame *frames, int n);

/* ---- unwind.c ---- */
/* dlopen libunwind and warm it up (watchdog).  0 or -1 (said once). */
int elmon_unwind_load(void);
/* Rebuild the module and memory tables the unwinder reads; watchdog, never
 * while a handler may run. */
void elmon_unwind_refresh(void);
/* Walk from regs; async-signal-safe (the handler calls it).  Returns the
 * number of return addresses stored, addrs[0] being regs' rip. */
int elmon_unwind_regs(struct elmon_regs *regs, uintptr_t *addrs, int max);
/* regs from a ucontext_t (handler). */
void elmon_regs_from_ucontext(struct elmon_regs *r, const void *uc);
/* 1 when addr is inside the dynamic loader's text (handler). */
int elmon_unwind_in_loader(uintptr_t pc);

/* ---- symbolize.c (watchdog) ---- */
int elmon_sym_load(void);
void elmon_sym_frame(struct elmon_capture *c, uintptr_t addr, int is_return, struct elmon_frame *f);
void elmon_sym_atfork_child(void);
/* One line of a JIT's perf map (/tmp/perf-PID.map): "START SIZE name",
 * hex. */
struct jit_sym {
    uintptr_t start, end;
    char *name;
};
#ifdef ELMON_UNITTEST
#include <stdio.h>
void jit_read(FILE *f);
const struct jit_sym *jit_lookup(uintptr_t addr);
const struct jit_sym *jit_table(size_t *n);
#endif

/* ---- cause.c ---- */
struct elmon_task {
    char state;
    long nr;                     /* -1: running in user mode, -2: unknown */
    uint64_t args[6];
    uint64_t sp, pc;
    uint64_t run_ns;             /* schedstat: time on CPU */
    uint64_t sigblk;             /* blocked signals, bit n-1 for signal n */
};
int elmon_task_read(int tid, struct elmon_task *t);
#ifdef ELMON_UNITTEST
/* The parsers of elmon_task_read, each on one NUL-terminated file. */
void task_parse_stat(const char *buf, struct elmon_task *t);
void task_parse_syscall(const char *buf, struct elmon_task *t);
void task_parse_status(const char *buf, struct elmon_task *t);
#endif
const char *elmon_syscall_name(long nr);
/* 1 when a handled signal makes this call fail with EINTR even with
 * SA_RESTART (signal(7)), so that a host that does not retry would see a
 * change. */
int elmon_syscall_eintr(const struct elmon_task *t);
void elmon_cause_fill(struct elmon_cause *c, const struct elmon_task *t, double cpu_share,
                      double span_ms);

/* ---- pyframes.c ---- */
/* 1 when the host is an initialised CPython whose dumper is usable. */
int elmon_py_load(void);
void elmon_py_prepare(void);          /* watchdog: empty the pipe */
void elmon_py_dump(void);             /* handler */
void elmon_py_collect(struct elmon_capture *c);   /* watchdog */
/* 1 when a Python frame (file, function) is an event loop's run method
 * (asyncio, tornado, twisted, socketserver, kombu, curio, trio, gevent,
 * eventlet). */
int elmon_py_is_loop_frame(const char *file, size_t file_len, const char *function);
void elmon_py_atfork_child(void);

#endif
