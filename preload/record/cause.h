/*
 * record/cause.c: a thread's state from /proc/self/task/TID alone (no
 * signal), the restart rules of signal(7), and the cause classes.
 *
 * Owns: the system call table.  Threads: the watchdog (reads), the exiting
 * thread (elmon_task_state of the writer lock's holder), and whichever
 * thread builds a span report (elmon_cause_fill: pure).
 * May not: signal, or read any task but the one asked for.
 */
#ifndef ELMON_CAUSE_H
#define ELMON_CAUSE_H

#include <stdint.h>
#include "span.h"

struct elmon_task {
    char state;
    long nr;                     /* -1: running in user mode, -2: unknown */
    uint64_t args[6];
    uint64_t sp, pc;
    uint64_t run_ns;             /* schedstat: time on CPU */
    uint64_t sigblk;             /* blocked signals, bit n-1 for signal n */
};
int elmon_task_read(int tid, struct elmon_task *t);
/* The scheduler state letter alone (R, S, D...); 0 when unreadable. */
char elmon_task_state(int tid);
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
/* The cause of a span from the readings at its crossing: class, state,
 * system call, CPU time (cpu_share of span_ms; cpu_share < 0: unknown). */
void elmon_cause_fill(struct elmon_span_cause *c, const struct elmon_task *t, double cpu_share, double span_ms);

#endif
