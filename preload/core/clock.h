/*
 * HOT PATH: the loop clock.
 *
 * Contract: elmon_ticks() makes no allocation, takes no lock, does no stdio
 * and enters the kernel for nothing; it is the only clock the wrappers read.
 *
 * On x86_64, when the kernel itself keeps CLOCK_MONOTONIC on the TSC (the
 * clocksource is "tsc" and the CPU has constant_tsc and nonstop_tsc), a tick
 * is one TSC cycle read with RDTSC: about 10 ns against the 20-25 ns of a
 * vDSO clock_gettime, which matters because every wrapped wait reads the
 * clock twice.  Anywhere else a tick is one nanosecond of CLOCK_MONOTONIC.
 * Ticks become nanoseconds through elmon_clock_mult (ns per tick, 32.32
 * fixed point), which the registry calibrates once and the watchdog refines.
 *
 * Owns: the choice of clock (elmon_clock_tsc), the tick rate
 * (elmon_clock_mult) and the calibration origin it converts stamps from.
 * Threads: elmon_ticks() and elmon_ticks_to_ns() on every thread, loop
 * threads inside their waits included; the probe in the constructor; the
 * choice and first calibration on the thread registering the first loop;
 * the refinement on the watchdog, once a second; the stamp conversions on
 * the watchdog and the exiting thread.
 * May not: break the contract above in its inline functions, open a file
 * on a loop thread's wait (the /sys probe belongs to the constructor), or
 * call into any stage above core.
 */
#ifndef ELMON_CLOCK_H
#define ELMON_CLOCK_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* Written once by elmon_clock_init() before the first loop thread exists;
 * read by every thread afterwards. */
extern int elmon_clock_tsc;
/* ns per tick in 32.32 fixed point; written by the watchdog (relaxed
 * atomic store), read by loop threads (relaxed atomic load). */
extern uint64_t elmon_clock_mult;

static inline uint64_t elmon_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t elmon_ticks(void)
{
#if defined(__x86_64__)
    if (__builtin_expect(elmon_clock_tsc, 1))
        return __rdtsc();
#endif
    return elmon_mono_ns();
}

static inline uint64_t elmon_ticks_to_ns(uint64_t ticks)
{
    uint64_t mult = __atomic_load_n(&elmon_clock_mult, __ATOMIC_RELAXED);
    return (uint64_t)(((unsigned __int128)ticks * mult) >> 32);
}

/* Reads the kernel's clock source once (a /sys file): the constructor
 * calls it, so a loop thread's first wait opens no file for the clock (a
 * sandboxed host may forbid it).  elmon_clock_init probes itself when
 * nobody did (unit tests). */
void elmon_clock_probe(void);
/* Cold: choose the clock (ELMON_CLOCK=auto|tsc|monotonic) and calibrate. */
void elmon_clock_init(void);
/* Cold, watchdog thread: refine the TSC rate over a longer baseline. */
void elmon_clock_refine(void);
/* Cold: convert a tick stamp to CLOCK_MONOTONIC and CLOCK_REALTIME ns. */
uint64_t elmon_ticks_to_mono_ns(uint64_t ticks);
uint64_t elmon_ticks_to_unix_ns(uint64_t ticks);
/* Cold: ns to ticks, for thresholds compared on the hot path. */

#endif
