/*
 * Choosing and calibrating the loop clock (see clock.h).  Cold: runs once
 * when the first loop thread registers, then once a second on the watchdog.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "clock.h"
#include "config.h"
#include "outfile.h"

int elmon_clock_tsc;
uint64_t elmon_clock_mult = 1ull << 32;

/* The calibration origin: a TSC reading and the monotonic time at it. */
static uint64_t base_ticks, base_mono_ns;

/* The kernel keeps CLOCK_MONOTONIC on the TSC only when it trusts it to be
 * invariant and synchronised across CPUs; we trust it exactly as far. */
static int tsc_trusted = -1;   /* -1: not probed */

void elmon_clock_probe(void)
{
#if defined(__x86_64__)
    char src[64];
    if (elmon_read_small("/sys/devices/system/clocksource/clocksource0/current_clocksource", src, sizeof src) < 0)
        tsc_trusted = 0;
    else
        tsc_trusted = strncmp(src, "tsc", 3) == 0 && (src[3] == '\n' || src[3] == 0);
#else
    tsc_trusted = 0;
#endif
}

static int tsc_usable(void)
{
    if (tsc_trusted < 0)
        elmon_clock_probe();
    return tsc_trusted;
}

/* A (ticks, ns) pair read close together: the TSC read twice around the
 * clock, the midpoint kept, the tightest of a few tries. */
static void read_pair(uint64_t *ticks, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = elmon_ticks();
        uint64_t m = elmon_mono_ns();
        uint64_t b = elmon_ticks();
        if (b - a < best) {
            best = b - a;
            *ticks = a + (b - a) / 2;
            *ns = m;
        }
    }
}

static void set_mult(uint64_t dticks, uint64_t dns)
{
    if (dticks == 0)
        return;
    uint64_t mult = (uint64_t)(((unsigned __int128)dns << 32) / dticks);
    __atomic_store_n(&elmon_clock_mult, mult, __ATOMIC_RELAXED);
}

void elmon_clock_init(void)
{
    static const char *const modes[] = {"auto", "tsc", "monotonic", 0};
    int mode = elmon_env_enum("ELMON_CLOCK", modes, 0);
    elmon_clock_tsc = mode == 2 ? 0 : tsc_usable();
    if (!elmon_clock_tsc) {
        elmon_clock_mult = 1ull << 32;
        base_ticks = base_mono_ns = 0;
        return;
    }
    /* 500 us of spinning, once per process, puts the first rate within
     * about 0.01%; the watchdog's refinements take it to ppm. */
    uint64_t t0, m0, t1, m1;
    read_pair(&t0, &m0);
    do
        read_pair(&t1, &m1);
    while (m1 - m0 < 500000);
    base_ticks = t0;
    base_mono_ns = m0;
    set_mult(t1 - t0, m1 - m0);
}

void elmon_clock_refine(void)
{
    if (!elmon_clock_tsc)
        return;
    uint64_t t, m;
    read_pair(&t, &m);
    set_mult(t - base_ticks, m - base_mono_ns);
}

uint64_t elmon_ticks_to_mono_ns(uint64_t ticks)
{
    if (!elmon_clock_tsc)
        return ticks;
    if (ticks >= base_ticks)
        return base_mono_ns + elmon_ticks_to_ns(ticks - base_ticks);
    return base_mono_ns - elmon_ticks_to_ns(base_ticks - ticks);
}

uint64_t elmon_ticks_to_unix_ns(uint64_t ticks)
{
    struct timespec rt, mo;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mo);
    int64_t off = ((int64_t)rt.tv_sec - mo.tv_sec) * 1000000000 + (rt.tv_nsec - mo.tv_nsec);
    return (uint64_t)((int64_t)elmon_ticks_to_mono_ns(ticks) + off);
}
