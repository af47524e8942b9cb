/*
 * Blocking reports: the human lines (log.c) and the JSON Lines events file
 * (ELMON_EVENTS).  Called by the watchdog, and by the exiting thread for the
 * summaries; never by the hot path.
 */
#ifndef ELMON_REPORT_H
#define ELMON_REPORT_H

#include <stdint.h>
#include "buf.h"
#include "loop.h"
#include "snapshot.h"

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
    int no_capture;              /* reported at exit without the capture hooks */
    int end;                     /* enum elmon_span_end, for a block that ended */
    int no_settle;               /* _exit: use the capture only as it is (no symbolizing) */
};

void elmon_report_block(const struct elmon_block *b);
/* The same with the writer lock already held (exit path). */
void elmon_report_block_held(const struct elmon_block *b);
/* exited: the thread ended before the process did. */
void elmon_report_summary(const struct elmon_loop_snapshot *s, int exited);
/* The same with the writer lock already held (exit path). */
void elmon_report_summary_held(const struct elmon_loop_snapshot *s, int exited);
void elmon_report_atfork_child(void);
/* Exit path: take the writer lock for at most timeout_ms; 0 on success. */
int elmon_report_lock_timed(unsigned timeout_ms);
void elmon_report_unlock(void);

/* Filled by the stack capture module when it is linked in (weak): the
 * cause/stack/python members of a block record, and the lines printed under
 * the human blocking line. */
void elmon_capture_json(const struct elmon_block *b, struct elmon_buf *out) __attribute__((weak));
void elmon_capture_human(const struct elmon_block *b, struct elmon_buf *out) __attribute__((weak));
/* One line naming the culprit ("slow_handler (app.py:42)"), for the stats
 * file and the CLI; 0 when there is one, -1 when not captured. */
int elmon_capture_culprit(const struct elmon_block *b, char *out, unsigned n) __attribute__((weak));

#endif
