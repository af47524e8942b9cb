/*
 * A consistent-enough copy of one loop's figures, for every reader that is
 * not the loop thread (watchdog, report writer, exporter, stats file).
 * Each field is read untorn; fields may be one turn apart from each other.
 */
#ifndef ELMON_SNAPSHOT_H
#define ELMON_SNAPSHOT_H

#include <stdint.h>
#include "hist.h"

/* The loop table's size: loop threads alive at once. */
#define ELMON_MAX_LOOPS 512

struct elmon_loop;

struct elmon_loop_snapshot {
    int pid, tid;
    char thread[64];             /* /proc/self/task/TID/comm, "" when gone */
    int poller;                  /* the wait call of its current or last loop */
    uint32_t generation;
    int dead;                    /* the thread has exited */
    uint64_t start_unix_ns;
    uint64_t n_loops;            /* loops the thread has run (one after another) */
    uint64_t n_turns, busy_ns, idle_ns, n_events;
    uint64_t n_warning, n_critical, n_spans_dropped;
    uint64_t n_fds;              /* registered with its epoll set, or polled */
    uint64_t ongoing_busy_ns;    /* the current turn so far, 0 when waiting */
    uint64_t recent_max_lag_ns;  /* last 10 s, including the current turn */
    struct elmon_hist lag;
};

void elmon_loop_snapshot(struct elmon_loop *l, struct elmon_loop_snapshot *out);

/* The thread's current name (/proc/self/task/TID/comm); 0 or -1. */
int elmon_read_comm(int tid, char *out, size_t n);

/* healthy < 10 ms <= ok < 50 ms <= degraded < 500 ms <= critical */
const char *elmon_status_name(uint64_t lag_ns);

/* The largest lag since the previous call (the exporter's window); the
 * watchdog folds each second's maximum in. */
uint64_t elmon_loop_take_window_max(struct elmon_loop *l);
/* The slot's index in the loop table. */
int elmon_loop_index(const struct elmon_loop *l);

/* Visit every ACTIVE or DEAD loop; stops early when fn returns non-zero. */
int elmon_loops_foreach(int (*fn)(struct elmon_loop *l, void *arg), void *arg);

#endif
