/*
 * The human log: warnings and blocking lines, to stderr by default,
 * ELMON_LOG=path to a file of its own, ELMON_LOG=off for nothing.  Written
 * with write(2) under a mutex, never from the hot path.
 *
 * Owns: the log's descriptor (stderr, or a file of libelmon's own), the
 * mutex that keeps lines whole, the exiting flag.
 * Threads: any libelmon thread: the thread registering the first loop
 * (which opens it), the watchdog, the exiting thread, a fork child's
 * first line (its own %p file); the exporter's through the core table.
 * May not: be called from the hot path or a signal handler, change errno,
 * wait more than ~50 ms for another writer, or hold an exiting process
 * more than 20 ms a line on a descriptor nobody reads.
 */
#ifndef ELMON_LOG_H
#define ELMON_LOG_H

#include <stddef.h>

void elmon_log_open(void);
/* One whole line (the newline is added); dropped when the log is off. */
void elmon_log_line(const char *s, size_t n);
void elmon_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "elmon: warning: ..." */
void elmon_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void elmon_log_atfork_child(void);
int elmon_log_enabled(void);
/* Set once the process is exiting: log writes stop waiting on the fd. */
extern int elmon_exiting;

#endif
