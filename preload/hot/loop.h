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
 *
 * A slot is a loop *thread*; the loop itself is what the thread waits on at
 * its outermost level (loop_word, loop_sp, loop_site, loop_key; loopid.h
 * has the rule).
 * A thread may run many loops one after another (pytest-asyncio makes one
 * per test): its figures add them up, and n_loops counts them.
 *
 * Owns: the layout of a slot (struct elmon_loop), of its ring of ended
 * spans and of the poller, slot state and span end names; the table
 * itself (elmon_loops[]) is defined and claimed by registry.c.
 * Threads: each field's one writer as above (the slot's loop thread, or
 * the watchdog); readers on the watchdog, the exporter, the stats writer
 * and the exiting thread.
 * May not: gain a field without saying which side writes it, or have a
 * loop thread's field written by anyone else but through the atomics
 * named at the field (loop_word's CAS, ring_tail).
 */
#ifndef ELMON_LOOP_H
#define ELMON_LOOP_H

#include <pthread.h>
#include <stdint.h>
#include "hist.h"
#include "snapshot.h"   /* ELMON_MAX_LOOPS */
#include "thresholds.h"

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

/* What a thread's loop is: nothing (no loop running), an epoll instance,
 * or the thread's outermost poll/select calls.  Kept with the epoll fd in
 * one word (loop_word), so that a closer on another thread can end exactly
 * the loop it closed with one compare-and-swap. */
enum elmon_loop_kind { ELMON_LOOP_NONE = 0, ELMON_LOOP_EPOLL, ELMON_LOOP_POLL };

static inline uint64_t elmon_loop_word(int kind, int fd)
{
    return kind == ELMON_LOOP_NONE ? 0 : (uint64_t)kind << 32 | (uint32_t)fd;
}

static inline int elmon_word_kind(uint64_t w)
{
    return (int)(w >> 32);
}

static inline int elmon_word_fd(uint64_t w)
{
    return elmon_word_kind(w) == ELMON_LOOP_EPOLL ? (int)(uint32_t)w : -1;
}

/* How a span ended: the loop waited again, its epoll descriptor was
 * closed (or the thread left it for another loop), the thread exited, the
 * process exited.  Index into elmon_end_name(). */
enum elmon_span_end { ELMON_END_WAIT = 0, ELMON_END_LOOP_CLOSED, ELMON_END_THREAD_EXIT, ELMON_END_EXIT };
const char *elmon_end_name(int end);

/* A finished busy period, pushed by the loop thread, popped by the
 * watchdog.  end WAIT: a turn of at least ELMON_BLOCK_MS; LOOP_CLOSED: the
 * busy period its loop's end cut short, which is no turn and is reported
 * only to close a span the watchdog had already begun. */
struct elmon_span {
    uint64_t turn;
    uint64_t start_ticks;
    uint64_t busy_ns;
    uint64_t lag_ns;
    int end;
};

#define ELMON_SPAN_RING 64          /* power of two */

struct elmon_capture;               /* record/capture.h */
struct elmon_span_cache;            /* interpret/report.h */

struct elmon_loop {
    int state;                      /* enum elmon_slot_state, atomic */
    int tid;
    uintptr_t pthread_id;           /* pthread_self() of the thread (CPython 3.8-3.10 keys thread states by it) */
    int poller;                     /* the call the current (or last) loop waits with, atomic */
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
    uint64_t loop_word;             /* elmon_loop_word(kind, epoll fd); atomic: a closer on any thread CASes it to 0 */
    uintptr_t loop_sp;              /* stack address of the wait that began the loop */
    uintptr_t loop_site;            /* return address of that wait: the loop's call site */
    uintptr_t loop_key;             /* poll loop: the address of the array it polls */
    uint64_t n_loops;               /* loops begun on this thread */
    uint64_t closed_ticks;          /* when the loop's descriptor was closed (atomic; by the closer, before loop_word) */
    uint64_t exit_ticks;            /* when the thread exited */
    int n_fds;                      /* poll/select descriptors of the last wait */
    uint32_t sig_hits;              /* capture signals handled on this thread (its handler counts) */
    uint32_t ring_head;             /* spans pushed */
    struct elmon_span ring[ELMON_SPAN_RING];
    struct elmon_hist lag;

    /* --- watchdog (outside_since: written by the watchdog, read by the
     * loop thread) --- */
    uint64_t outside_since;         /* busy_since of a busy period found outside a running loop */
    uint32_t ring_tail;             /* spans popped */
    uint64_t wd_crossed_turn;       /* turn + 1 whose crossing was looked at */
    uint64_t wd_outside_turn;       /* turn + 1 found outside a running loop: not a span */
    int wd_open;                    /* a block_begin was written and its block not yet */
    uint64_t wd_open_turn, wd_open_since;
    uint64_t wd_closed_warning, wd_closed_critical;  /* spans closed by a loop's end, thread or process exit */
    uint64_t wd_crossed_unix_ns;
    uint64_t recent_max_ns[ELMON_STATUS_WINDOW_S];  /* per-second maxima, for status */
    unsigned recent_pos;
    uint64_t wd_export_max_ns;      /* max since the exporter last took it (atomic) */
    char wd_thread_name[64];        /* kept for when the thread is gone */
    struct elmon_capture *capture;  /* owned by record/capture.c, NULL until used */
    struct elmon_span_cache *report; /* owned by interpret/report.c, NULL until used */

    /* Held while the thread is being signalled and while it exits, so a
     * signal never reaches a thread id that is gone. */
    pthread_mutex_t sig_lock;
};

extern struct elmon_loop elmon_loops[ELMON_MAX_LOOPS];

/* Settings the hot path reads; written once before the first loop thread. */
extern int elmon_active;            /* 0: every wrapper is a plain call */
extern uint64_t elmon_block_ns, elmon_critical_ns;

#endif
