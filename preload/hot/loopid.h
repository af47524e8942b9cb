/*
 * HOT PATH (slow branch): which loop a wait belongs to, and the end of a
 * loop.  The rule (README "What libelmon measures"):
 *   - a thread's loop is what it waits on at its outermost level: an epoll
 *     instance, or, for a thread whose outermost waits are poll/select over
 *     more than one descriptor, those calls;
 *   - while a turn of an epoll loop runs, any poll/select, and a wait on
 *     another epoll instance, are nested blocking waits (Node's execSync, a
 *     selector inside an asyncio callback, a C callback's private epoll):
 *     busy time of the turn.  The one exception is a wait on another
 *     instance from the loop's own call site, no deeper in the stack: the
 *     loop code itself now runs another loop (a loop left open, a new one
 *     run from the same place), so the thread starts a new loop there;
 *   - while a turn of a poll loop runs, a poll/select is the loop's next
 *     wait when it polls the same array (select: the same sets) or is no
 *     deeper in the stack than the wait that began the loop, and nested
 *     otherwise
 *     (subprocess.communicate in a callback); an epoll wait starts a new
 *     loop (a poll loop is often incidental: multiprocessing's or
 *     subprocess's poll on a thread that runs asyncio later);
 *   - while no turn runs (before the first wait, after the loop ended,
 *     in a busy period the watchdog found outside a running loop), any such
 *     wait starts a loop;
 *   - a loop ends when its epoll descriptor is closed (or replaced by
 *     dup2/dup3); the busy period then open is no turn.
 *
 * Owns: no state of its own: the rule, and the slot's loop identity it
 * writes (loop_word, loop_sp, loop_site, loop_key, n_loops, closed_ticks)
 * with the instance's loop in the descriptor table (fdtable.h).
 * Threads: the loop thread (elmon_loop_enter, from elmon_turn_begin's
 * slow branch), or (elmon_loop_closed) whichever thread closed the
 * descriptor, possibly in a signal handler.
 * May not: break turn.h's contract (no allocation, lock, stdio or system
 * call but the clock; errno untouched), or end any loop but the one whose
 * descriptor was closed (one compare-and-swap on its loop_word).
 */
#ifndef ELMON_LOOPID_H
#define ELMON_LOOPID_H

#include <stdint.h>
#include "loop.h"

/* The thread waits on something other than its loop's next wait: 0 when
 * the wait is nested (pass it through), 1 when it begins a new loop of the
 * thread (the caller then starts the wait as a turn boundary).  fd: the
 * epoll instance; key: a poll/select's array; sp and site: the wrapper's
 * frame and return addresses. */
int elmon_loop_enter(struct elmon_loop *l, int poller, int fd, uintptr_t key, uintptr_t sp, uintptr_t site);
/* epfd, the loop of l, is being closed with n_fds descriptors in its set
 * (fdtable.c); the summary keeps that count. */
void elmon_loop_closed(struct elmon_loop *l, int epfd, int n_fds);

#endif
