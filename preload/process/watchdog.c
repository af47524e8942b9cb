/*
 * The watchdog thread (see watchdog.h).
 *
 * It wakes every tick (a fifth of ELMON_BLOCK_MS, at most 10 ms), so a span
 * is noticed within threshold + one tick of its start even if it never ends.
 * It owns the "watchdog" fields of every slot; everything else it reads with
 * relaxed or acquire loads, and the only thing it writes into a loop
 * thread's view is ring_tail (release), which frees ring entries.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include "attach.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "pipeline.h"
#include "registry.h"
#include "report.h"
#include "snapshot.h"
#include "turn.h"
#include "watchdog.h"

static int wd_started;           /* 0/1, CAS by the first loop thread */
static pthread_t wd_thread;
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static int wd_stop;              /* under wd_lock */
static int wd_stopped;           /* under wd_lock: the thread has left its loop */
static uint64_t wd_tick_ns;
/* Set by a shutdown from _exit, which may run in a signal handler that
 * interrupted anything: the records are written, but nothing that could
 * allocate, symbolize or take an untimed lock runs (no folded file, live
 * stats or export hooks, no late symbolization). */
static int wd_exit_fast;

/* The tick: a fifth of the threshold, so a span is noticed within
 * threshold + 20%, between these bounds. */
#define WD_TICK_PER_THRESHOLD 5
#define WD_TICK_MAX_NS 10000000ull
#define WD_TICK_MIN_NS 1000000ull

/* Reports of spans without a capture of their own: the watchdog's, and the
 * exiting thread's (which may run beside a watchdog that did not stop). */
static struct elmon_span_report bare_watchdog, bare_exit;

/* watchdog: the caller is the watchdog, or the watchdog has stopped; only
 * then is the thread-name cache (wd_thread_name, the watchdog's) touched.
 * The exiting thread draining beside a watchdog still busy reads the name
 * from /proc alone. */
static void fill_block(struct elmon_block *b, struct elmon_loop *l, uint64_t turn,
                       uint64_t start_ticks, uint64_t busy_ns, uint64_t lag_ns, int ongoing, int watchdog)
{
    memset(b, 0, sizeof *b);
    b->loop = l;
    b->pid = getpid();
    b->tid = l->tid;
    if (elmon_read_comm(l->tid, b->thread, sizeof b->thread) == 0) {
        if (watchdog)
            snprintf(l->wd_thread_name, sizeof l->wd_thread_name, "%s", b->thread);
    } else if (watchdog) {
        snprintf(b->thread, sizeof b->thread, "%s", l->wd_thread_name);
    } else {
        snprintf(b->thread, sizeof b->thread, "?");
    }
    b->poller = ELMON_LOAD(&l->poller);   /* a loop thread switching loops stores it */
    b->turn = turn;
    b->start_unix_ns = elmon_ticks_to_unix_ns(start_ticks);
    b->duration_ns = busy_ns;
    b->lag_ns = lag_ns;
    b->critical = busy_ns >= elmon_critical_ns;
    b->ongoing = ongoing;
    b->no_capture = 0;
    b->end = ELMON_END_WAIT;
}

/* The block record of a span that ended, and the hooks after it (which
 * belong to the watchdog: the exiting thread reports without them).  A
 * span that ended some other way than by its loop's next wait was begun by
 * the watchdog (block_begin), and is counted here: the loop thread counts
 * only the turns it ends. */
static void report_ended(struct elmon_loop *l, uint64_t turn, uint64_t since, uint64_t busy_ns, uint64_t lag_ns,
                         int end, int hooks, int held)
{
    struct elmon_block b;
    fill_block(&b, l, turn, since, busy_ns, lag_ns, 0, hooks);
    b.no_capture = !hooks;
    b.end = end;
    b.no_settle = __atomic_load_n(&wd_exit_fast, __ATOMIC_RELAXED);
    if (end != ELMON_END_WAIT) {
        if (b.critical)
            __atomic_add_fetch(&l->wd_closed_critical, 1, __ATOMIC_RELAXED);
        else
            __atomic_add_fetch(&l->wd_closed_warning, 1, __ATOMIC_RELAXED);
    }
    elmon_pipeline_end(&b, held ? &bare_exit : &bare_watchdog,
                       (held ? ELMON_EMIT_HELD : 0) | (!hooks || b.no_settle ? ELMON_EMIT_RECORDS_ONLY : 0));
}

/* Pops and reports every span the loop thread finished.  Normally only the
 * watchdog drains; at exit the exiting thread drains too when the watchdog
 * is still busy (a slow first symbolization), so entries are claimed with a
 * CAS on ring_tail and a span is reported exactly once.  The exiting thread
 * reports without the capture hooks, which belong to the watchdog. */
static void drain_spans(struct elmon_loop *l, int hooks, int held)
{
    for (;;) {
        uint32_t tail = __atomic_load_n(&l->ring_tail, __ATOMIC_ACQUIRE);
        if (tail == __atomic_load_n(&l->ring_head, __ATOMIC_ACQUIRE))
            return;
        /* The producer does not reuse this entry before ring_tail passes
         * it, so the copy is stable; the CAS decides who reports it. */
        struct elmon_span s = l->ring[tail & (ELMON_SPAN_RING - 1)];
        if (!__atomic_compare_exchange_n(&l->ring_tail, &tail, tail + 1, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        /* A busy period found outside a running loop is no span; one its
         * loop's end cut short closes a span only if one was begun. */
        int begun = __atomic_load_n(&l->wd_open, __ATOMIC_ACQUIRE) && ELMON_LOAD(&l->wd_open_turn) == s.turn &&
                    ELMON_LOAD(&l->wd_open_since) == s.start_ticks &&
                    __atomic_exchange_n(&l->wd_open, 0, __ATOMIC_ACQ_REL);
        if (ELMON_LOAD(&l->wd_outside_turn) == s.turn + 1 || (s.end != ELMON_END_WAIT && !begun))
            continue;
        report_ended(l, s.turn, s.start_ticks, s.busy_ns, s.lag_ns, s.end, hooks, held);
    }
}

/* A span begun and still open when its thread or the process ended: its
 * block, with the duration up to end_ticks. */
static void close_open(struct elmon_loop *l, uint64_t end_ticks, int end, int hooks, int held)
{
    /* The exiting thread may race a watchdog that did not stop in time:
     * whoever takes wd_open writes the record. */
    if (!__atomic_exchange_n(&l->wd_open, 0, __ATOMIC_ACQ_REL))
        return;
    uint64_t since = ELMON_LOAD(&l->wd_open_since);
    uint64_t busy_ns = end_ticks > since ? elmon_ticks_to_ns(end_ticks - since) : 0;
    report_ended(l, ELMON_LOAD(&l->wd_open_turn), since, busy_ns, busy_ns + ELMON_LOAD(&l->overshoot_ns), end, hooks,
                 held);
}

/* The loop's descriptor was closed while a span the watchdog began ran:
 * its block, with the duration up to the close.  1 when there was one.
 * The loop thread, at its next wait, pushes the same end; whoever takes
 * wd_open first writes it. */
static int close_if_loop_closed(struct elmon_loop *l, int hooks, int held)
{
    if (elmon_word_kind(__atomic_load_n(&l->loop_word, __ATOMIC_ACQUIRE)) != ELMON_LOOP_NONE)
        return 0;
    uint64_t closed = __atomic_load_n(&l->closed_ticks, __ATOMIC_ACQUIRE);
    uint64_t since = __atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE);
    if (!closed || !since || !__atomic_load_n(&l->wd_open, __ATOMIC_ACQUIRE) || ELMON_LOAD(&l->wd_open_since) != since)
        return 0;
    close_open(l, closed, ELMON_END_LOOP_CLOSED, hooks, held);
    return 1;
}

static void check_crossing(struct elmon_loop *l, uint64_t now_ticks)
{
    uint64_t since = __atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE);
    if (!since || since == ELMON_LOAD(&l->outside_since))
        return;
    /* No loop runs (its descriptor was closed): no turn either. */
    if (elmon_word_kind(__atomic_load_n(&l->loop_word, __ATOMIC_ACQUIRE)) == ELMON_LOOP_NONE) {
        close_if_loop_closed(l, 1, 0);
        return;
    }
    uint64_t turn = ELMON_LOAD(&l->turn);
    if (l->wd_crossed_turn == turn + 1 || now_ticks < since)
        return;
    uint64_t busy_ns = elmon_ticks_to_ns(now_ticks - since);
    if (busy_ns < elmon_block_ns)
        return;
    /* The turn may have ended between the two loads; then its end report
     * comes through the ring instead. */
    if (__atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE) != since)
        return;
    l->wd_crossed_turn = turn + 1;
    /* A span begun earlier whose end the ring could not hold (it was full)
     * ended before this busy period began. */
    close_open(l, since, ELMON_END_WAIT, 1, 0);
    /* Open before the capture, which can take milliseconds: a process that
     * exits meanwhile drains this span on its exiting thread and takes
     * wd_open with it, and then no block_begin follows the block it wrote
     * (opened after the capture, the exit wrote the block, the watchdog a
     * block_begin, and a later close_open a second block). */
    ELMON_STORE(&l->wd_open_turn, turn);
    ELMON_STORE(&l->wd_open_since, since);
    __atomic_store_n(&l->wd_open, 1, __ATOMIC_RELEASE);
    /* The runtime says no event loop is running (docs: "Time outside a
     * running loop"): the busy period is no turn, and nothing is written. */
    if (elmon_pipeline_cross(l, turn)) {
        ELMON_STORE(&l->wd_outside_turn, turn + 1);
        ELMON_STORE(&l->outside_since, since);
        __atomic_store_n(&l->wd_open, 0, __ATOMIC_RELEASE);
        if (elmon_opt.verbose)
            elmon_logf("pid %d tid %d: busy %.0f ms outside a running event loop; not a span",
                       (int)getpid(), l->tid, (double)busy_ns / 1e6);
        return;
    }
    if (!__atomic_load_n(&l->wd_open, __ATOMIC_ACQUIRE))
        return;   /* the exiting thread took the span and wrote its block */
    struct elmon_block b;
    fill_block(&b, l, turn, since, busy_ns, busy_ns + ELMON_LOAD(&l->overshoot_ns), 1, 1);
    elmon_pipeline_begin(&b, &bare_watchdog, 0);
}

static void rotate_second(struct elmon_loop *l)
{
    uint64_t m = __atomic_exchange_n(&l->window_max_lag_ns, 0, __ATOMIC_RELAXED);
    unsigned n = sizeof l->recent_max_ns / sizeof l->recent_max_ns[0];
    ELMON_STORE(&l->recent_max_ns[l->recent_pos % n], m);
    l->recent_pos++;
    uint64_t cur = __atomic_load_n(&l->wd_export_max_ns, __ATOMIC_RELAXED);
    while (m > cur && !__atomic_compare_exchange_n(&l->wd_export_max_ns, &cur, m, 0,
                                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        ;
}

static void harvest_dead(struct elmon_loop *l)
{
    drain_spans(l, 1, 0);
    if (!close_if_loop_closed(l, 1, 0))
        close_open(l, ELMON_LOAD(&l->exit_ticks), ELMON_END_THREAD_EXIT, 1, 0);
    struct elmon_loop_snapshot *s = &(struct elmon_loop_snapshot){0};
    elmon_loop_snapshot(l, s);
    elmon_pipeline_summary(s, 1, 0);
    __atomic_store_n(&l->state, ELMON_SLOT_FREE, __ATOMIC_RELEASE);
}

static void scan(int new_second)
{
    uint64_t now = elmon_ticks();
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_loop *l = &elmon_loops[i];
        int st = __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
        if (st == ELMON_SLOT_ACTIVE) {
            drain_spans(l, 1, 0);
            check_crossing(l, now);
            if (new_second)
                rotate_second(l);
        } else if (st == ELMON_SLOT_DEAD) {
            harvest_dead(l);
        }
    }
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    elmon_pipeline_start();
    uint64_t next_second = elmon_mono_ns() + 1000000000;
    pthread_mutex_lock(&wd_lock);
    while (!wd_stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += (long)wd_tick_ns;
        dl.tv_sec += dl.tv_nsec / 1000000000;
        dl.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&wd_cond, &wd_lock, &dl);
        if (wd_stop)
            break;
        pthread_mutex_unlock(&wd_lock);
        uint64_t now = elmon_mono_ns();
        int new_second = now >= next_second;
        if (new_second) {
            next_second = now + 1000000000;
            elmon_clock_refine();
        }
        scan(new_second);
        elmon_attach_tick();
        if (new_second)
            elmon_pipeline_tick();
        pthread_mutex_lock(&wd_lock);
    }
    wd_stopped = 1;
    pthread_cond_broadcast(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

void elmon_watchdog_ensure(void)
{
    int expect = 0;
    if (!__atomic_compare_exchange_n(&wd_started, &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &ca);
    pthread_condattr_destroy(&ca);
    wd_tick_ns = elmon_block_ns / WD_TICK_PER_THRESHOLD;
    if (wd_tick_ns > WD_TICK_MAX_NS)
        wd_tick_ns = WD_TICK_MAX_NS;
    if (wd_tick_ns < WD_TICK_MIN_NS)
        wd_tick_ns = WD_TICK_MIN_NS;
    wd_stop = wd_stopped = 0;
    int rc = elmon_thread_start(&wd_thread, watchdog_main, NULL, "elmon-watchdog");
    if (rc < 0) {
        wd_stopped = 1;
        elmon_warn("cannot start the watchdog thread (%s); spans are reported only when they end",
                   strerror(-rc));
    }
}

static int summary_one(struct elmon_loop *l, void *arg)
{
    (void)arg;
    struct elmon_loop_snapshot *s = &(struct elmon_loop_snapshot){0};
    elmon_loop_snapshot(l, s);
    elmon_pipeline_summary(s, s->dead, ELMON_EMIT_HELD);
    return 0;
}

/* Spans that ended since the last tick, then the spans still open: a
 * thread that exited closes its own at its exit, a loop still blocked
 * closes at the process's exit with its duration so far. */
static int drain_one_held(struct elmon_loop *l, void *arg)
{
    int hooks = *(int *)arg;
    drain_spans(l, hooks, 1);
    if (close_if_loop_closed(l, hooks, 1))
        return 0;
    if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) == ELMON_SLOT_DEAD)
        close_open(l, ELMON_LOAD(&l->exit_ticks), ELMON_END_THREAD_EXIT, hooks, 1);
    else
        close_open(l, elmon_ticks(), ELMON_END_EXIT, hooks, 1);
    return 0;
}

/* Exit: ask the watchdog to stop and give it stop_ms; then write what is
 * left ourselves, taking the writer lock for at most lock_ms more (more
 * while its holder is runnable, up to runnable_ms).  A watchdog or writer
 * stuck on a full pipe costs the exit their sum, never a hang. */
void elmon_watchdog_shutdown(unsigned stop_ms, unsigned lock_ms, unsigned runnable_ms, int fast)
{
    if (!__atomic_load_n(&wd_started, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&wd_exit_fast, fast, __ATOMIC_RELAXED);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += (long)stop_ms * 1000000;
    dl.tv_sec += dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    int stopped = 0;
    /* A trylock loop bounded by a monotonic deadline: the watchdog holds
     * wd_lock only between ticks, never across a write. */
    for (;;) {
        if (pthread_mutex_trylock(&wd_lock) == 0) {
            wd_stop = 1;
            pthread_cond_broadcast(&wd_cond);
            while (!wd_stopped) {
                if (pthread_cond_timedwait(&wd_cond, &wd_lock, &dl) == ETIMEDOUT)
                    break;
            }
            stopped = wd_stopped;
            pthread_mutex_unlock(&wd_lock);
            break;
        }
        if (elmon_mono_ns() >= (uint64_t)dl.tv_sec * 1000000000u + (uint64_t)dl.tv_nsec)
            break;
        struct timespec ms1 = {0, 1000000};
        nanosleep(&ms1, NULL);
    }
    /* Spans that ended since the last tick, with their captures when the
     * watchdog is out of the way; then the summaries.  All under the writer
     * lock taken for at most lock_ms: a watchdog stuck inside a write (a hung
     * NFS or FUSE events file) costs the exit these records, never a hang. */
    if (elmon_pipeline_lock_timed(lock_ms, runnable_ms) != 0)
        return;
    elmon_loops_foreach(drain_one_held, &stopped);
    elmon_loops_foreach(summary_one, NULL);
    elmon_pipeline_unlock();
}

void elmon_watchdog_atfork_child(void)
{
    pthread_mutex_init(&wd_lock, NULL);
    wd_started = 0;
    wd_stop = 0;
    wd_stopped = 0;
}
