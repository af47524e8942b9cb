/*
 * HOT PATH: what libelmon knows about the host's descriptors, one word per
 * descriptor number: which epoll set it was added to, and whether it is an
 * epoll instance (and then how many descriptors its set holds and which
 * loop waits on it).
 *
 * The common close, of a descriptor libelmon knows nothing about, costs one
 * relaxed load (elmon_fd_known).  Descriptors numbered ELMON_FD_TABLE and
 * above are not tracked: their epoll counts are not kept.
 *
 * Owns: the descriptor table (elmon_fd_word and the per-instance counts,
 * generations and loops, the overflow table of descriptors in several
 * sets).  Written by the wrappers of epoll_create*, epoll_ctl, close,
 * close_range, closefrom, dup2 and dup3 (wrap.c) and by loopid.c (which
 * loop waits on an instance); read by the snapshot and the watchdog.
 * Threads: any host thread, inside close() and from a signal handler
 * (close is async-signal-safe); the watchdog and the exporter's snapshots
 * (reads).
 * May not: allocate, lock, do stdio or make a system call, or touch errno.
 */
#ifndef ELMON_FDTABLE_H
#define ELMON_FDTABLE_H

#include <stdint.h>
#include "loop.h"

#define ELMON_FD_TABLE 65536

extern uint64_t elmon_fd_word[ELMON_FD_TABLE];

#define ELMON_FD_EPOLL_BIT (1ull << 25)

/* 1 when close(fd) has bookkeeping to do. */
static inline int elmon_fd_known(int fd)
{
    return (unsigned)fd < ELMON_FD_TABLE && __atomic_load_n(&elmon_fd_word[fd], __ATOMIC_RELAXED) != 0;
}

/* 1 when fd is an epoll instance: closing it may end a loop. */
static inline int elmon_fd_is_epoll(int fd)
{
    return (unsigned)fd < ELMON_FD_TABLE && (__atomic_load_n(&elmon_fd_word[fd], __ATOMIC_RELAXED) & ELMON_FD_EPOLL_BIT);
}

/* fd is about to be closed, or was replaced by dup2/dup3: it leaves every
 * epoll set it was in (as the kernel drops a closed descriptor), and when
 * it is an epoll instance its loop ends.  This is also the one place that
 * learns the host closed a descriptor, for checks on libelmon's own. */
void elmon_fd_closing(int fd);
/* close_range(first, last) without CLOSE_RANGE_CLOEXEC, closefrom(first). */
void elmon_fds_closing(unsigned first, unsigned last);

void elmon_fd_epoll_created(int epfd);
/* After a successful epoll_ctl(epfd, op, fd). */
void elmon_fd_epoll_ctl(int epfd, int op, int fd);
/* Descriptors in epfd's set (the loop's "active handles"). */
int elmon_epoll_fds(int epfd);

/* Which loop waits on epfd (loopid.c). */
void elmon_fd_loop_set(int epfd, struct elmon_loop *l);
void elmon_fd_loop_clear(int epfd, struct elmon_loop *l);

/* Overflow entries in use (descriptors in more than one epoll set), and
 * how many registrations could not be counted because it was full. */
unsigned elmon_fd_multi_used(void);
unsigned long elmon_fd_multi_lost(void);

#endif
