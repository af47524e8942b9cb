/*
 * HOT PATH: per-thread turn accounting, called by every wrapper in wrap.c.
 *
 * Contract: no malloc, no locks, no stdio, no system call but the clock
 * (elmon_ticks); errno is left as the real call set it.  The only way out
 * of this contract is elmon_register(), the slow path taken once per
 * thread at its first loop wait; elmon_loop_enter() (loopid.c) keeps it.
 *
 * A turn is the time from one wait of the thread's loop returning to the
 * loop's next wait (busy), followed by that wait (idle).  Its lag sample is
 * the busy time plus the delay past the requested timeout of the wait that
 * began it, when that wait timed out with no events.  Which wait is the
 * loop's, and when a loop ends, is loopid.h's rule; a busy period the
 * watchdog found outside a running loop (outside_since) is no turn.
 *
 * Owns: no state of its own: it writes the calling thread's "loop thread"
 * fields of its slot (loop.h) and pushes ended busy periods to the slot's
 * ring; the thread's slot pointer (elmon_tls_loop) is registry.c's.
 * Threads: the loop thread alone, inside each wrapped wait.
 * May not: break the contract above, write a "watchdog" field, or wait for
 * the ring (a full ring counts n_spans_dropped).
 */
#ifndef ELMON_TURN_H
#define ELMON_TURN_H

#include "clock.h"
#include "loop.h"
#include "loopid.h"
#include "registry.h"

extern __thread struct elmon_loop *elmon_tls_loop __attribute__((tls_model("initial-exec")));
/* 1 once this thread failed to register (table full): stay a plain call. */
extern __thread int elmon_tls_untracked __attribute__((tls_model("initial-exec")));

/* Hand a finished busy period to the watchdog (single producer: the loop
 * thread). */
static inline __attribute__((always_inline)) void elmon_span_push(struct elmon_loop *l, uint64_t since,
                                                                   uint64_t busy_ns, uint64_t lag_ns, int end)
{
    if (l->ring_head - __atomic_load_n(&l->ring_tail, __ATOMIC_ACQUIRE) < ELMON_SPAN_RING) {
        struct elmon_span *s = &l->ring[l->ring_head & (ELMON_SPAN_RING - 1)];
        s->turn = l->turn;
        s->start_ticks = since;
        s->busy_ns = busy_ns;
        s->lag_ns = lag_ns;
        s->end = end;
        __atomic_store_n(&l->ring_head, l->ring_head + 1, __ATOMIC_RELEASE);
    } else {
        ELMON_STORE(&l->n_spans_dropped, l->n_spans_dropped + 1);
    }
}

/* Returns the thread's loop when this wait is a turn boundary, NULL when the
 * call is to be passed through untouched (a nested or non-loop wait).  fd:
 * the epoll instance (-1 for poll/select); key: the address of a
 * poll/select's descriptor array; sp and site: the wrapper's frame address
 * (how deep in the stack the wait is made) and return address (where it is
 * called from). */
static inline __attribute__((always_inline)) struct elmon_loop *elmon_turn_begin(int poller, int fd, uintptr_t key, int n_fds,
                                                                                 int64_t timeout_ns, uintptr_t sp,
                                                                                 uintptr_t site)
{
    if (__builtin_expect(!ELMON_LOAD(&elmon_active), 0))
        return 0;
    struct elmon_loop *l = elmon_tls_loop;
    int epoll = elmon_poller_is_epoll(poller);
    /* A wait on one descriptor (CPython's socket timeouts) is a blocking
     * call made by whatever code runs: never a loop of its own. */
    if (!epoll && n_fds <= 1)
        return 0;
    if (__builtin_expect(!l, 0)) {
        if (elmon_tls_untracked)
            return 0;
        l = elmon_register(poller);
        if (!l)
            return 0;
    }
    uint64_t w = ELMON_LOAD(&l->loop_word);
    int same = epoll ? w == elmon_loop_word(ELMON_LOOP_EPOLL, fd)
                     : elmon_word_kind(w) == ELMON_LOOP_POLL && (key == l->loop_key || sp >= l->loop_sp);
    if (__builtin_expect(!same, 0)) {
        if (!elmon_loop_enter(l, poller, fd, key, sp, site))
            return 0;
    }
    uint64_t now = elmon_ticks();
    uint64_t since = l->busy_since;
    if (since && since != ELMON_LOAD(&l->outside_since)) {
        uint64_t busy_ticks = now - since;
        uint64_t busy_ns = elmon_ticks_to_ns(busy_ticks);
        uint64_t lag_ns = busy_ns + ELMON_LOAD(&l->overshoot_ns);
        elmon_hist_record(&l->lag, lag_ns);
        ELMON_STORE(&l->busy_ns, l->busy_ns + busy_ns);
        ELMON_STORE(&l->n_turns, l->n_turns + 1);
        if (lag_ns > ELMON_LOAD(&l->window_max_lag_ns))
            ELMON_STORE(&l->window_max_lag_ns, lag_ns);
        if (__builtin_expect(busy_ns >= elmon_block_ns, 0)) {
            elmon_span_push(l, since, busy_ns, lag_ns, ELMON_END_WAIT);
            if (busy_ns >= elmon_critical_ns)
                ELMON_STORE(&l->n_critical, l->n_critical + 1);
            else
                ELMON_STORE(&l->n_warning, l->n_warning + 1);
        }
    }
    l->wait_enter = now;
    l->wait_timeout_ns = timeout_ns;
    if (!epoll)
        ELMON_STORE(&l->n_fds, n_fds);
    ELMON_STORE(&l->busy_since, 0);
    return l;
}

static inline __attribute__((always_inline)) void elmon_turn_end(struct elmon_loop *l, int ret)
{
    uint64_t now = elmon_ticks();
    uint64_t idle_ns = elmon_ticks_to_ns(now - l->wait_enter);
    ELMON_STORE(&l->idle_ns, l->idle_ns + idle_ns);
    if (ret > 0)
        ELMON_STORE(&l->n_events, l->n_events + (uint64_t)ret);
    uint64_t over = 0;
    if (ret == 0 && l->wait_timeout_ns >= 0 && idle_ns > (uint64_t)l->wait_timeout_ns)
        over = idle_ns - (uint64_t)l->wait_timeout_ns;
    ELMON_STORE(&l->overshoot_ns, over);
    ELMON_STORE(&l->turn, l->turn + 1);
    /* busy_since is what the watchdog polls: store it last, with release, so
     * a watchdog that sees the new turn start also sees the new turn id. */
    __atomic_store_n(&l->busy_since, now ? now : 1, __ATOMIC_RELEASE);
}

#endif
