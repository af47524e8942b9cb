/*
 * One event loop thread as libelmon sees it, and the table of them.
 *
 * A slot is claimed by its loop thread at that thread's first wait
 * (registry.c) and from then on has exactly one writer for each field:
 *   - fields under "loop thread" are written only by the owning thread, with
 *     relaxed atomic stores, and read by the watchdog, the exporter and the
 *     stats file writer with relaxed atomic loads;
 *   - fields under "watchdog" are private to the watchdog thread;
 *   - state moves FREE -> CLAIMING -> ACTIVE (loop thread, CAS) -> EXITING
 *     (thread exit, under sig_lock) -> DEAD (after sig_lock is released)
 *     -> FREE (watchdog, after the summary is written).
 */
#ifndef ELMON_LOOP_H
#define ELMON_LOOP_H

#include <pthread.h>
#include <stdint.h>
#include "hist.h"

enum elmon_poller {
    ELMON_POLLER_NONE = 0,
    ELMON_POLLER_EPOLL_WAIT,
    ELMON_POLLER_EPOLL_PWAIT,
    ELMON_POLLER_EPOLL_PWAIT2,
    ELMON_POLLER_POLL,
    ELMON_POLLER_PPOLL,
    ELMON_POLLER_SELECT,
    ELMON_POLLER_PSELECT,
    ELMON_POLLER_COUNT
};

static inline int elmon_poller_is_epoll(int p)
{
    return p >= ELMON_POLLER_EPOLL_WAIT && p <= ELMON_POLLER_EPOLL_PWAIT2;
}

const char *elmon_poller_name(int poller);

/* EXITING: the thread is running its exit destructor (no more signals);
 * DEAD is stored after it has let go of sig_lock, so the watchdog, which
 * frees DEAD slots for reuse, never frees one whose mutex is still in use. */
enum elmon_slot_state { ELMON_SLOT_FREE = 0, ELMON_SLOT_ACTIVE, ELMON_SLOT_DEAD, ELMON_SLOT_CLAIMING, ELMON_SLOT_EXITING };

/* A finished blocking span, pushed by the loop thread, popped by the
 * watchdog. */
struct elmon_span {
    uint64_t turn;
    uint64_t start_ticks;
    uint64_t busy_ns;
    uint64_t lag_ns;
};

#define ELMON_SPAN_RING 64          /* power of two */
#define ELMON_MAX_LOOPS 512

struct elmon_capture;               /* stack capture, capture.h */

struct elmon_loop {
    int state;                      /* enum elmon_slot_state, atomic */
    int tid;
    int poller;                     /* the call that made this a loop */
    uint32_t generation;            /* bumped at each claim */
    uint64_t start_ticks;           /* registration time */

    /* --- loop thread --- */
    uint64_t busy_since;            /* ticks at the wait's return; 0 inside a wait */
    uint64_t turn;                  /* turns begun */
    uint64_t wait_enter;            /* ticks at the current wait's entry */
    int64_t wait_timeout_ns;        /* requested timeout, -1 for none */
    uint64_t overshoot_ns;          /* timeout overshoot of the last wait (atomic: the watchdog reads it) */
    uint64_t n_turns;               /* turns completed */
    uint64_t busy_ns, idle_ns;
    uint64_t n_events;              /* ready descriptors returned */
    uint64_t n_warning, n_critical; /* blocking spans ended */
    uint64_t n_spans_dropped;       /* ring full */
    uint64_t window_max_lag_ns;     /* reset by the watchdog each second (atomic exchange) */
    int wait_fd;                    /* epoll fd, or -1 */
    int n_fds;                      /* poll/select descriptors of the last wait */
    uint32_t ring_head;             /* spans pushed */
    struct elmon_span ring[ELMON_SPAN_RING];
    struct elmon_hist lag;

    /* --- watchdog --- */
    uint32_t ring_tail;             /* spans popped */
    uint64_t wd_crossed_turn;       /* turn + 1 whose crossing was reported */
    uint64_t wd_crossed_unix_ns;
    uint64_t recent_max_ns[10];     /* per-second maxima, for status */
    unsigned recent_pos;
    uint64_t wd_export_max_ns;      /* max since the exporter last took it (atomic) */
    char wd_thread_name[64];        /* kept for when the thread is gone */
    struct elmon_capture *capture;  /* owned by capture.c, NULL until used */

    /* Held while the thread is being signalled and while it exits, so a
     * signal never reaches a thread id that is gone. */
    pthread_mutex_t sig_lock;
};

extern struct elmon_loop elmon_loops[ELMON_MAX_LOOPS];

/* Settings the hot path reads; written once before the first loop thread. */
extern int elmon_active;            /* 0: every wrapper is a plain call */
extern uint64_t elmon_block_ns, elmon_critical_ns;
extern uint64_t elmon_block_ticks;  /* refined by the watchdog */

/* registry.c */
struct elmon_loop *elmon_register(int poller);  /* slow path */
void elmon_registry_init(void);
int elmon_epoll_fds(int epfd);
void elmon_epoll_fds_reset(int epfd);
void elmon_epoll_fds_add(int epfd, int delta);

#endif
