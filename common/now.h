/*
 * Nanosecond readings of a POSIX clock for code off the hot path (the
 * exporter, the CLI).  The hot path keeps its own clock in clock.h, so that
 * its contract stays inside the files that state it.
 */
#ifndef ELMON_NOW_H
#define ELMON_NOW_H

#include <stdint.h>
#include <time.h>

static inline uint64_t elmon_now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
