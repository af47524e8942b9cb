/*
 * HOT PATH (slow branch): which loop a wait belongs to, and the end of a
 * loop.  The rule (README "What libelmon measures"):
 *   - a thread's loop is what it waits on at its outermost level: an epoll
 *     instance, or, for a thread whose outermost waits are poll/select over
 *     more than one descriptor, those calls;
 *   - while a turn of that loop runs, a wait on another epoll instance, or
 *     a poll/select, made deeper in the stack than the loop's own waits is
 *     a nested blocking wait (Node's execSync, a selector inside an asyncio
 *     callback): busy time of the turn;
 *   - the same wait made no deeper than the loop's own waits means the old
 *     loop is no longer running: the thread starts a new loop there, and
 *     the open busy period was no turn;
 *   - a loop ends when its epoll descriptor is closed (or replaced by
 *     dup2/dup3); the open busy period is then no turn.
 * Contract: that of turn.h; runs on the loop thread, or (elmon_loop_closed)
 * on whichever thread closed the descriptor, possibly in a signal handler.
 */
#ifndef ELMON_LOOPID_H
#define ELMON_LOOPID_H

#include <stdint.h>
#include "loop.h"

/* The thread waits on something other than its loop: 0 when the wait is
 * nested (pass it through), 1 when it begins a new loop of the thread (the
 * caller then starts the wait as a turn boundary). */
int elmon_loop_enter(struct elmon_loop *l, int poller, int fd, uintptr_t sp);
/* epfd, the loop of l, is being closed with n_fds descriptors in its set
 * (fdtable.c); the summary keeps that count. */
void elmon_loop_closed(struct elmon_loop *l, int epfd, int n_fds);

#endif
