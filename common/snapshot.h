/*
 * The layout of a consistent-enough copy of one loop's figures (filled by
 * preload/hot/registry.c, elmon_loop_snapshot), for every reader that is
 * not the loop thread (watchdog, report writer, exporter, stats file).
 * Each field is read untorn; fields may be one turn apart from each other.
 */
#ifndef ELMON_SNAPSHOT_H
#define ELMON_SNAPSHOT_H

#include <stddef.h>
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

/* Filled by libelmon.so for libelmon-exporter.so (through the core table,
 * common/export_api.h): both must agree on it. */
_Static_assert(offsetof(struct elmon_loop_snapshot, lag) == 184, "loop snapshot layout");
_Static_assert(sizeof(struct elmon_loop_snapshot) == 8016, "loop snapshot layout");

#endif
