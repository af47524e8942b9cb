/*
 * process/watchdog.c: one background thread per process, started with the
 * first loop thread (elmon_watchdog_ensure, handed to hot/registry.c at
 * init), all signals
 * blocked.  It notices blocking spans while they run, drains the spans
 * loop threads finished, has their reports built and sent to the sinks
 * (pipeline.h), and at exit writes each loop's summary.
 *
 * Owns: the "watchdog" fields of every slot (hot/loop.h), the tick.
 * Threads: its own thread; the exiting thread (shutdown, bounded).
 * May not: write into a loop thread's fields but ring_tail and
 * outside_since, or wait on anything without a bound at exit.
 */
#ifndef ELMON_WATCHDOG_H
#define ELMON_WATCHDOG_H

#include <stdint.h>
#include "loop.h"

/* Start the watchdog, once: a loop thread's first wait (hot/registry.c). */
void elmon_watchdog_ensure(void);
/* Exit: stop the watchdog (waiting at most stop_ms), close the spans
 * still open and write the summaries (taking the writer lock for at most
 * lock_ms, and up to runnable_ms more while its holder is runnable or in a
 * disk wait).  fast (_exit, possibly from a signal handler): the records
 * only, none of the hooks that may allocate or lock. */
void elmon_watchdog_shutdown(unsigned stop_ms, unsigned lock_ms, unsigned runnable_ms, int fast);
void elmon_watchdog_atfork_child(void);


#endif
