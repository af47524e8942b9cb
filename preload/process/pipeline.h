/*
 * process/pipeline.c: the one table that wires the stages together, and the
 * writer lock.  Every sink and every hook is named here by its symbol, so a
 * module left out is a link error, and a sink that writes nothing says why
 * at start (ELMON_VERBOSE).  The hooks, one function each below: start,
 * cross (a span crossed its threshold: capture, verdict), begin (its
 * block_begin report), end (a span ended: its block report), tick, fork
 * (elmon_pipeline_atfork_child) and exit (elmon_pipeline_shutdown).  A span
 * report reaches the sinks only through begin or end, which interpret it
 * (elmon_span_build) first.
 *
 * Owns: the sink table, the writer lock.  Threads: the watchdog (start,
 * cross, begin, end, summary, tick), the exiting thread (end and summary
 * with ELMON_EMIT_HELD, shutdown), the forking thread (atfork).
 * May not: be reached from the hot path or a signal handler.
 */
#ifndef ELMON_PIPELINE_H
#define ELMON_PIPELINE_H

#include <stdint.h>
#include "loop.h"
#include "sink.h"
#include "snapshot.h"
#include "span.h"

struct elmon_block;   /* interpret/report.h */

/* Watchdog thread, once before its first tick: the sinks' start (the
 * exporter loads here), then the exit work's atexit registration. */
void elmon_pipeline_start(void);
/* A span crossed its threshold: its capture (record/), then the verdict
 * (interpret/).  1 when the busy period turned out to be outside a
 * running loop: no span. */
int elmon_pipeline_cross(struct elmon_loop *l, uint64_t turn);
/* A span's report: interpreted once (elmon_span_build; bare is the
 * caller's report for a span without a capture), then to every sink; flags
 * ELMON_EMIT_*.  Locked sinks are written under the writer lock (taken here
 * unless HELD), the others after it.  begin: the crossing's block_begin
 * (b->ongoing), once elmon_pipeline_cross said it is a span; end: the block
 * of a span that ended (its loop's next wait, a closed loop, the thread's
 * or the process's exit). */
void elmon_pipeline_begin(const struct elmon_block *b, struct elmon_span_report *bare, int flags);
void elmon_pipeline_end(const struct elmon_block *b, struct elmon_span_report *bare, int flags);
void elmon_pipeline_summary(const struct elmon_loop_snapshot *s, int exited, int flags);
void elmon_pipeline_tick(void);
/* Exit path: take the writer lock for at most timeout_ms, and up to
 * runnable_ms more while its holder is runnable or in a disk wait
 * (preempted, or waiting for its disk; not asleep); 0 on success. */
int elmon_pipeline_lock_timed(unsigned timeout_ms, unsigned runnable_ms);
void elmon_pipeline_unlock(void);
/* In a new child: every module's child handler, lowest stage first. */
void elmon_pipeline_atfork_child(void);
/* Exiting thread, after the last records: the sinks' shutdown. */
void elmon_pipeline_shutdown(int fast);

#endif
