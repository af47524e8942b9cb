/*
 * process/exit.c: the end of the process's measurement, once, bounded: the
 * watchdog stopped, the spans still open closed, the summaries written,
 * the sinks shut down.
 *
 * Owns: the exit-done flag.  Threads: the exiting thread (atexit handler,
 * library destructor, or _exit, which may run in a signal handler).
 * May not: wait without a bound, or run twice.
 */
#ifndef ELMON_EXIT_H
#define ELMON_EXIT_H

/* fast: _exit (no atexit handlers; maybe in a signal handler): the records
 * and summaries within about 50 ms, no final export. */
void elmon_exit_work(int fast);
/* Register the exit work with atexit, after the exporter registered its
 * final flush, so that ours runs first (watchdog thread, at start). */
void elmon_exit_register(void);

#endif
