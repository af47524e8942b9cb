/*
 * interpret/report.c: the span report (common/span.h), built once from the
 * raw capture and the watchdog's timings; the one place where addresses
 * become symbols, readings a cause, and a stack a culprit.
 *
 * Owns: each slot's report (struct elmon_span_cache, allocated at its
 * first captured span): the capture's interpretation, redone only when
 * the capture changed (a late handler answer), and the span's timings,
 * refreshed for each record of the span.
 * Threads: the watchdog; the exiting thread once the watchdog has stopped
 * (or, while it runs, only with no_capture: then the caller's bare
 * report and nothing of the slot's is touched).
 * May not: write any output (sinks/ do), or run on a loop thread.
 */
#ifndef ELMON_REPORT_H
#define ELMON_REPORT_H

#include <stdint.h>
#include "loop.h"
#include "span.h"

/* A span as the watchdog sees it. */
struct elmon_block {
    struct elmon_loop *loop;
    int pid, tid;
    char thread[64];
    int poller;
    uint64_t turn;
    uint64_t start_unix_ns;
    uint64_t duration_ns;        /* busy time; so far when ongoing */
    uint64_t lag_ns;
    int critical;
    int ongoing;                 /* crossed the threshold, still running */
    int no_capture;              /* reported at exit beside a running watchdog: no capture */
    int end;                     /* enum elmon_span_end, for a block that ended */
    int no_settle;               /* _exit: the capture only as already interpreted */
};

/* The report of b's span: the slot's, its capture interpreted, or bare (the
 * caller's memory, no capture) when b has none.  Valid until the next
 * build for the same slot. */
const struct elmon_span_report *elmon_span_build(const struct elmon_block *b, struct elmon_span_report *bare);

/* The verdict after a crossing's capture: 1 when the runtime shows no event
 * loop running on the thread (CPython: a wait of CPython's select module,
 * the whole Python stack dumped, no loop's run method on it), so the busy
 * period is no turn; 0 when it does or cannot tell.  Watchdog. */
int elmon_span_outside_loop(struct elmon_loop *l, uint64_t turn);

void elmon_span_atfork_child(void);

#endif
