/*
 * process/pipeline.c: the one table that wires the stages together, and the
 * writer lock.  Every sink and every hook (cross, end, tick, fork, exit) is
 * named here by its symbol, so a module left out is a link error, and a
 * sink that writes nothing says why at start (ELMON_VERBOSE).
 *
 * Owns: the sink table, the writer lock.  Runs on: the watchdog (start,
 * cross, span, summary, tick), the exiting thread (span and summary with
 * ELMON_EMIT_HELD, shutdown), the forking thread (atfork).
 * May not: be reached from the hot path or a signal handler.
 */
#ifndef ELMON_PIPELINE_H
#define ELMON_PIPELINE_H

#include <stdint.h>
#include "loop.h"
#include "sink.h"
#include "snapshot.h"
#include "span.h"

/* Watchdog thread, once before its first tick: the sinks' start (the
 * exporter loads here), then the exit work's atexit registration. */
void elmon_pipeline_start(void);
/* A span crossed its threshold: its capture (record/), then the verdict
 * (interpret/).  1 when the busy period turned out to be outside a
 * running loop: no span. */
int elmon_pipeline_cross(struct elmon_loop *l, uint64_t turn);
/* A report to every sink; flags ELMON_EMIT_*.  Locked sinks are written
 * under the writer lock (taken here unless HELD), the others after it. */
void elmon_pipeline_span(const struct elmon_span_report *r, int flags);
void elmon_pipeline_summary(const struct elmon_loop_snapshot *s, int exited, int flags);
void elmon_pipeline_tick(void);
/* Exit path: take the writer lock for at most timeout_ms; 0 on success. */
int elmon_pipeline_lock_timed(unsigned timeout_ms);
void elmon_pipeline_unlock(void);
/* In a new child: every module's child handler, lowest stage first. */
void elmon_pipeline_atfork_child(void);
/* Exiting thread, after the last records: the sinks' shutdown. */
void elmon_pipeline_shutdown(int fast);

#endif
