/*
 * The sink interface: an output that renders span reports (common/span.h)
 * and loop summaries, and nothing else.  The sinks are events.c (the
 * ELMON_EVENTS file), human.c (the ELMON_LOG lines), folded.c
 * (ELMON_FOLDED), stats.c (the live stats file of `elmon stat/top`) and
 * otlp.c (the exporter, libelmon-exporter.so).  process/pipeline.c names
 * them all in one table and is the only caller of these functions.
 *
 * Owns: the interface (struct elmon_sink) and the emit flags; each sink's
 * state is its own .c's.
 * Threads: the watchdog; record sinks also on the exiting thread (with the
 * writer lock held, or beside a watchdog that did not stop in time).
 * May not: read the capture (a span is known to a sink by its report
 * alone), or block the watchdog without a bound.
 */
#ifndef ELMON_SINK_H
#define ELMON_SINK_H

#include "snapshot.h"
#include "span.h"

/* How a report reaches the sinks (the flags of elmon_pipeline_begin/end). */
#define ELMON_EMIT_HELD          1   /* the exiting thread, writer lock held */
#define ELMON_EMIT_RECORDS_ONLY  2   /* record sinks only: _exit, or beside a running watchdog */

struct elmon_sink {
    const char *name;
    /* 1: a record of the span (the events file, the human log), written on
     * every path including the exiting thread's; 0: the watchdog's alone. */
    int record;
    /* 1: written under the pipeline's writer lock, which orders it with the
     * exit path's records and summaries. */
    int locked;
    /* NULL when on, else why it is off (for ELMON_VERBOSE's list). */
    const char *(*off)(void);
    void (*start)(void);                                        /* watchdog, once */
    void (*span)(const struct elmon_span_report *r, int flags);
    void (*summary)(const struct elmon_loop_snapshot *s, int exited);
    void (*tick)(void);                                         /* watchdog, once a second (a locked sink's under the writer lock) */
    void (*atfork_child)(void);
    void (*shutdown)(int fast);                                 /* exiting thread */
};

extern const struct elmon_sink elmon_sink_events, elmon_sink_human, elmon_sink_folded, elmon_sink_stats,
    elmon_sink_otlp;

#endif
