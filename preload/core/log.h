/*
 * The human log: warnings and blocking lines, to stderr by default,
 * ELMON_LOG=path to a file of its own, ELMON_LOG=off for nothing.  Written
 * with write(2) under a mutex, never from the hot path.
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
