/*
 * HOT PATH (slow branch): loop identity and a loop's end (rule and contract
 * in loopid.h).  Taken only when a thread waits on something other than its
 * loop, and when an epoll instance that is some thread's loop is closed.
 */
#include "fdtable.h"
#include "loopid.h"
#include "turn.h"

/* The busy period open on l ends without being a turn (its loop ended at
 * end_ticks).  The watchdog reports it only if it had begun a span for it,
 * to close that span; it never adds to the turn figures. */
static void busy_cut(struct elmon_loop *l, uint64_t end_ticks)
{
    uint64_t since = l->busy_since;
    if (!since)
        return;
    if (since != ELMON_LOAD(&l->outside_since) && end_ticks > since) {
        uint64_t busy_ns = elmon_ticks_to_ns(end_ticks - since);
        if (busy_ns >= elmon_block_ns)
            elmon_span_push(l, since, busy_ns, busy_ns + ELMON_LOAD(&l->overshoot_ns), ELMON_END_LOOP_CLOSED);
    }
    ELMON_STORE(&l->busy_since, 0);
}

int elmon_loop_enter(struct elmon_loop *l, int poller, int fd, uintptr_t key, uintptr_t sp, uintptr_t site)
{
    uint64_t w = __atomic_load_n(&l->loop_word, __ATOMIC_ACQUIRE);
    int kind = elmon_word_kind(w);
    int epoll = elmon_poller_is_epoll(poller);
    uint64_t since = l->busy_since;
    if (since && kind != ELMON_LOOP_NONE && since != ELMON_LOAD(&l->outside_since)) {
        if (kind == ELMON_LOOP_EPOLL && !(epoll && site == l->loop_site && sp >= l->loop_sp))
            return 0;
        if (kind == ELMON_LOOP_POLL && !epoll)
            return 0;   /* deeper, another array (turn.h) */
    }
    /* A loop closed (on any thread) ends its busy period when it was
     * closed; one the thread left ends now. */
    uint64_t closed = __atomic_load_n(&l->closed_ticks, __ATOMIC_ACQUIRE);
    busy_cut(l, kind == ELMON_LOOP_NONE && closed ? closed : elmon_ticks());
    if (kind == ELMON_LOOP_EPOLL)
        elmon_fd_loop_clear(elmon_word_fd(w), l);
    ELMON_STORE(&l->closed_ticks, 0);
    l->loop_key = epoll ? 0 : key;
    l->loop_sp = sp;
    ELMON_STORE(&l->loop_site, site);
    ELMON_STORE(&l->poller, poller);
    ELMON_STORE(&l->n_loops, l->n_loops + 1);
    if (epoll)
        elmon_fd_loop_set(fd, l);
    __atomic_store_n(&l->loop_word, elmon_loop_word(epoll ? ELMON_LOOP_EPOLL : ELMON_LOOP_POLL, fd),
                     __ATOMIC_RELEASE);
    return 1;
}

void elmon_loop_closed(struct elmon_loop *l, int epfd, int n_fds)
{
    if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) != ELMON_SLOT_ACTIVE)
        return;
    /* The closer only says so, whatever thread it is (the loop thread
     * itself, another thread, a signal handler in the middle of the loop
     * thread's own accounting): the loop thread cuts its busy period at its
     * next wait, the watchdog closes a span it had begun. */
    uint64_t w = elmon_loop_word(ELMON_LOOP_EPOLL, epfd);
    if (__atomic_load_n(&l->loop_word, __ATOMIC_ACQUIRE) != w)
        return;
    ELMON_STORE(&l->n_fds, n_fds);
    __atomic_store_n(&l->closed_ticks, elmon_ticks(), __ATOMIC_RELEASE);
    __atomic_compare_exchange_n(&l->loop_word, &w, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}
