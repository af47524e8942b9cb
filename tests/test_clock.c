/*
 * The loop clock (preload/core/clock.c, clock.h): which clock ELMON_CLOCK
 * picks, ticks that never go back (on one thread and handed across CPUs),
 * tick differences that agree with CLOCK_MONOTONIC, tick stamps that
 * convert to the monotonic and the wall clock, ns <-> ticks round trips,
 * and a refinement of the TSC rate that keeps converted time continuous.
 *
 * Most cases run twice: _i 0 with ELMON_CLOCK unset (the TSC where the
 * kernel trusts it, as on most x86_64 machines), _i 1 with
 * ELMON_CLOCK=monotonic.  Tolerances are loose (a loaded 2-core machine
 * preempts anywhere); each is far tighter than what a broken conversion
 * gives.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "support.h"

/* What clock.c should pick under "auto": the TSC exactly when the kernel
 * keeps CLOCK_MONOTONIC on it. */
static int kernel_uses_tsc(void)
{
#if defined(__x86_64__)
    char src[64] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f)
        return 0;
    if (!fgets(src, sizeof src, f))
        src[0] = 0;
    fclose(f);
    return strcmp(src, "tsc\n") == 0;
#else
    return 0;
#endif
}

static void init_mode(int i)
{
    if (i == 1)
        setenv("ELMON_CLOCK", "monotonic", 1);
    else
        unsetenv("ELMON_CLOCK");
    elmon_clock_init();
}

static int64_t sdiff(uint64_t a, uint64_t b)
{
    return (int64_t)(a - b);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A tick stamp and the monotonic time at it, read within 20 us of each
 * other (retried while preempted). */
static void tight_pair(uint64_t *ticks, uint64_t *mono)
{
    for (int tries = 0;; tries++) {
        uint64_t m0 = elmon_mono_ns();
        uint64_t t = elmon_ticks();
        uint64_t m1 = elmon_mono_ns();
        if (m1 - m0 < 20000 || tries > 10000) {
            *ticks = t;
            *mono = m0 + (m1 - m0) / 2;
            return;
        }
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

START_TEST(elmon_clock_picks_the_clock)
{
    static const struct {
        const char *value;   /* NULL: unset */
        int tsc;             /* -1: as the kernel does */
        int warns;
    } t[] = {
        {NULL, -1, 0}, {"auto", -1, 0}, {"AUTO", -1, 0}, {"tsc", -1, 0},
        {"monotonic", 0, 0}, {"Monotonic", 0, 0}, {"bogus", -1, 1},
    };
    /* fd 2 to a file: the one warning a bad value earns. */
    char path[] = "/tmp/elmon-test-clock-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    dup2(fd, 2);
    int want_tsc = kernel_uses_tsc();
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].value)
            setenv("ELMON_CLOCK", t[i].value, 1);
        else
            unsetenv("ELMON_CLOCK");
        off_t before = lseek(fd, 0, SEEK_END);
        elmon_clock_init();
        int want = t[i].tsc < 0 ? want_tsc : t[i].tsc;
        ck_assert_msg(elmon_clock_tsc == want, "ELMON_CLOCK=%s: tsc %d, want %d", t[i].value ? t[i].value : "(unset)",
                      elmon_clock_tsc, want);
        if (!elmon_clock_tsc) {
            /* A tick is then one nanosecond of CLOCK_MONOTONIC. */
            ck_assert_uint_eq(elmon_clock_mult, 1ull << 32);
            uint64_t m = elmon_mono_ns();
            uint64_t k = elmon_ticks();
            ck_assert_msg(k >= m && k - m < 100000000, "monotonic tick %lu vs CLOCK_MONOTONIC %lu", k, m);
        }
        off_t after = lseek(fd, 0, SEEK_END);
        char buf[512] = "";
        ck_assert_int_ge(pread(fd, buf, sizeof buf - 1, before), 0);
        if (t[i].warns) {
            ck_assert_msg(strstr(buf, "ELMON_CLOCK='bogus'") != NULL, "no warning for a bad value: '%s'", buf);
            ck_assert_ptr_nonnull(strstr(buf, "using auto"));
        } else {
            ck_assert_msg(after == before, "ELMON_CLOCK=%s warned: %s", t[i].value ? t[i].value : "(unset)", buf);
        }
    }
    close(fd);
}
END_TEST

START_TEST(ticks_never_go_back_on_one_thread)
{
    init_mode(_i);
    uint64_t prev = elmon_ticks();
    for (int i = 0; i < 2000000; i++) {
        uint64_t t = elmon_ticks();
        if (t < prev)   /* not ck_assert: its bookkeeping per call is a write(2) */
            ck_abort_msg("read %d: %lu after %lu", i, t, prev);
        prev = t;
    }
    /* And they advance: 10 ms of sleep is ticks, not zero. */
    uint64_t a = elmon_ticks();
    sleep_ms(10);
    ck_assert_uint_gt(elmon_ticks_to_ns(elmon_ticks() - a), 5000000);
}
END_TEST

/* Ping-pong of tick stamps between two threads on different CPUs: a stamp
 * read after seeing another thread's stamp is not smaller, beyond what
 * RDTSC's lack of ordering allows.  RDTSC (no LFENCE) may execute before
 * the load that saw the other thread's stamp: measured on x86_64 KVM, about
 * 1 round in 1000 comes out up to ~30 cycles (~10 ns) early.  Counters out
 * of step between CPUs would show as microseconds.  CLOCK_MONOTONIC (the
 * vDSO orders its read) is never early at all. */
static uint64_t pp_stamp;
static int pp_turn;          /* 0: main writes; 1: peer writes */
enum { ROUNDS = 3000 };

static void pin(int nth)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int seen = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set) && seen++ == nth) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
}

struct side {
    int me;
    uint64_t worst_ticks;    /* largest amount a stamp came out early */
    int early;               /* how many did */
    int rounds;
};

/* Set by main after ROUNDS rounds or 3 s (a loaded machine hands the CPU
 * over slowly), whichever comes first. */
static int pp_stop;

static void play(struct side *s)
{
    double t0 = mono_ms();
    for (int r = 0; r < ROUNDS; r++) {
        if (s->me == 0 && mono_ms() - t0 > 3000)
            __atomic_store_n(&pp_stop, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&pp_turn, __ATOMIC_ACQUIRE) != s->me) {
            if (__atomic_load_n(&pp_stop, __ATOMIC_ACQUIRE))
                return;
            sched_yield();
        }
        if (__atomic_load_n(&pp_stop, __ATOMIC_ACQUIRE))
            return;
        s->rounds++;
        uint64_t seen = __atomic_load_n(&pp_stamp, __ATOMIC_RELAXED);
        uint64_t now = elmon_ticks();
        if (now < seen) {
            s->early++;
            if (seen - now > s->worst_ticks)
                s->worst_ticks = seen - now;
        }
        __atomic_store_n(&pp_stamp, now > seen ? now : seen, __ATOMIC_RELAXED);
        __atomic_store_n(&pp_turn, !s->me, __ATOMIC_RELEASE);
    }
}

static void *peer(void *arg)
{
    pin(1);
    play(arg);
    return NULL;
}

START_TEST(ticks_never_go_back_across_cpus)
{
    init_mode(_i);
    struct side mine = {0, 0, 0, 0}, theirs = {1, 0, 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, peer, &theirs), 0);
    pin(0);
    play(&mine);
    __atomic_store_n(&pp_stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert_msg(mine.rounds + theirs.rounds >= 200, "only %d rounds", mine.rounds + theirs.rounds);
    uint64_t worst = mine.worst_ticks > theirs.worst_ticks ? mine.worst_ticks : theirs.worst_ticks;
    int early = mine.early + theirs.early;
    uint64_t worst_ns = elmon_ticks_to_ns(worst);
    if (elmon_clock_tsc)
        ck_assert_msg(worst_ns < 1000, "%d of %d stamps came out early, by up to %lu ns", early, mine.rounds + theirs.rounds,
                      worst_ns);
    else
        ck_assert_msg(early == 0, "%d of %d CLOCK_MONOTONIC stamps came out early, by up to %lu ns", early,
                      mine.rounds + theirs.rounds, worst_ns);
}
END_TEST

START_TEST(tick_differences_match_monotonic)
{
    init_mode(_i);
    for (int k = 0; k < 3; k++) {
        uint64_t t0, m0, t1, m1;
        tight_pair(&t0, &m0);
        sleep_ms(50);
        tight_pair(&t1, &m1);
        double ns = (double)elmon_ticks_to_ns(t1 - t0), want = (double)(m1 - m0);
        ck_assert_msg(ns > want * 0.8 && ns < want * 1.2,
                      "round %d: %.3f ms of ticks over %.3f ms of CLOCK_MONOTONIC", k, ns / 1e6, want / 1e6);
    }
}
END_TEST

START_TEST(stamps_convert_to_monotonic_and_wall_clock)
{
#if defined(__x86_64__)
    /* A TSC reading from 100 ms before the calibration origin (ticks <
     * base). */
    uint64_t early_tsc = __rdtsc(), early_mono = elmon_mono_ns();
    sleep_ms(100);
#endif
    init_mode(_i);
    uint64_t t, m;
    tight_pair(&t, &m);
    uint64_t rt = realtime_ns();
    ck_assert_msg(llabs(sdiff(elmon_ticks_to_mono_ns(t), m)) < 50000000, "mono: %ld ns off",
                  sdiff(elmon_ticks_to_mono_ns(t), m));
    ck_assert_msg(llabs(sdiff(elmon_ticks_to_unix_ns(t), rt)) < 50000000, "unix: %ld ns off",
                  sdiff(elmon_ticks_to_unix_ns(t), rt));
    /* A stamp from 200 ms ago converts to then, not to now. */
    sleep_ms(200);
    uint64_t now_rt = realtime_ns();
    ck_assert_msg(llabs(sdiff(elmon_ticks_to_unix_ns(t), rt)) < 50000000, "old stamp: %ld ns off",
                  sdiff(elmon_ticks_to_unix_ns(t), rt));
    ck_assert_msg(llabs(sdiff(elmon_ticks_to_mono_ns(t), m)) < 50000000, "old stamp mono: %ld ns off",
                  sdiff(elmon_ticks_to_mono_ns(t), m));
    ck_assert_int_gt(sdiff(now_rt, elmon_ticks_to_unix_ns(t)), 150000000);
#if defined(__x86_64__)
    if (elmon_clock_tsc)
        ck_assert_msg(llabs(sdiff(elmon_ticks_to_mono_ns(early_tsc), early_mono)) < 50000000,
                      "a stamp from before the calibration: %ld ns off",
                      sdiff(elmon_ticks_to_mono_ns(early_tsc), early_mono));
#endif
}
END_TEST

/* The watchdog refines the rate once a second.  A refinement moves the
 * conversion of the present by the error of the rate it replaces times the
 * time since calibration (a few us after 300 ms of a 500 us calibration):
 * it may step converted time back by that much, never by a millisecond,
 * and the rate it leaves agrees with CLOCK_MONOTONIC. */
START_TEST(refine_keeps_time_continuous)
{
    init_mode(_i);
    uint64_t mult0 = elmon_clock_mult;
    uint64_t tt, mm;
    tight_pair(&tt, &mm);
    sleep_ms(300);
    uint64_t before = elmon_ticks_to_mono_ns(tt);
    uint64_t a = elmon_ticks_to_mono_ns(elmon_ticks());
    elmon_clock_refine();
    uint64_t b = elmon_ticks_to_mono_ns(elmon_ticks());
    ck_assert_msg(sdiff(b, a) > -1000000, "refine stepped converted time back by %ld ns", sdiff(a, b));
    ck_assert_msg(llabs(sdiff(elmon_ticks_to_mono_ns(tt), before)) < 1000000,
                  "refine moved an old stamp by %ld ns", sdiff(elmon_ticks_to_mono_ns(tt), before));
    uint64_t mult1 = elmon_clock_mult;
    double rel = mult1 > mult0 ? (double)(mult1 - mult0) / (double)mult0 : (double)(mult0 - mult1) / (double)mult0;
    ck_assert_msg(rel < 1e-3, "refine changed the rate by %.6f", rel);
    if (!elmon_clock_tsc)
        ck_assert_uint_eq(mult1, 1ull << 32);
    /* The refined rate: conversion error against CLOCK_MONOTONIC drifts by
     * less than 0.05% over 100 ms. */
    uint64_t t0, m0, t1, m1;
    tight_pair(&t0, &m0);
    sleep_ms(100);
    tight_pair(&t1, &m1);
    int64_t e0 = sdiff(elmon_ticks_to_mono_ns(t0), m0), e1 = sdiff(elmon_ticks_to_mono_ns(t1), m1);
    ck_assert_msg(llabs(e1 - e0) < 50000, "after refine the conversion drifted %ld ns in %.1f ms", e1 - e0,
                  (double)(m1 - m0) / 1e6);
    ck_assert_msg(llabs(e1) < 1000000, "after refine a stamp converts %ld ns off", e1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("choose");
    tcase_add_test(tc, elmon_clock_picks_the_clock);
    suite_add_tcase(s, tc);
    tc = tcase_create("ticks");
    tcase_add_loop_test(tc, ticks_never_go_back_on_one_thread, 0, 2);
    tcase_add_loop_test(tc, ticks_never_go_back_across_cpus, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("convert");
    tcase_add_loop_test(tc, tick_differences_match_monotonic, 0, 2);
    tcase_add_loop_test(tc, stamps_convert_to_monotonic_and_wall_clock, 0, 2);
    tcase_add_loop_test(tc, refine_keeps_time_continuous, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
