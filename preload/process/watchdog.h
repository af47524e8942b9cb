/*
 * The watchdog: one background thread per process, started with the first
 * loop thread, all signals blocked.  It notices blocking spans while they
 * run, drains the spans loop threads finished, writes the reports, and at
 * exit writes each loop's summary.
 */
#ifndef ELMON_WATCHDOG_H
#define ELMON_WATCHDOG_H

#include <stdint.h>
#include "loop.h"

void elmon_watchdog_ensure(void);
/* Exit: stop the watchdog (waiting at most stop_ms), close the spans
 * still open and write the summaries (taking the writer lock for at most
 * lock_ms).  fast (_exit, possibly from a signal handler): the records
 * only, none of the hooks that may allocate or lock. */
void elmon_watchdog_shutdown(unsigned stop_ms, unsigned lock_ms, int fast);
void elmon_watchdog_atfork_child(void);

/* Start a thread with every signal blocked (libelmon's threads never take
 * a signal meant for the host).  0 or -errno. */
int elmon_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

/* Extension points, defined by the modules that need them (weak): the stack
 * capture at a span's crossing, the exporter's intake of ended spans, and a
 * once-a-second tick for the live stats file. */
struct elmon_block;
void elmon_capture_on_cross(struct elmon_loop *l, uint64_t turn) __attribute__((weak));
void elmon_export_on_block(const struct elmon_block *b) __attribute__((weak));
void elmon_stats_tick(void) __attribute__((weak));
/* A span crossed its threshold (ongoing) or ended: the live stats file. */
void elmon_stats_on_block(const struct elmon_block *b) __attribute__((weak));
/* After the capture at a crossing: 1 when the runtime shows no event loop
 * running on the thread (CPython: no loop's run method on its stack), so
 * the busy period is no turn; 0 when it does or cannot tell. */
int elmon_capture_outside_loop(struct elmon_loop *l, uint64_t turn) __attribute__((weak));
/* A span ended (after its report is written): the folded-stack file. */
void elmon_capture_on_end(const struct elmon_block *b) __attribute__((weak));
/* Runs on the watchdog thread once, before its first tick: the exporter
 * loads (dlopen) and starts its own thread from here. */
void elmon_exporter_start(void) __attribute__((weak));
/* Right after it (elmon.c): the exit work is registered with atexit after
 * the exporter's final flush, so it runs first. */
void elmon_exit_register(void) __attribute__((weak));

#endif
