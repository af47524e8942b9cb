/*
 * The host's real wait functions, and the other calls the wrappers pass on
 * (epoll_create/epoll_ctl, the close family, the sleeps, prctl, _exit,
 * syscall), resolved with dlsym(RTLD_NEXT).
 *
 * Owns: elmon_real and elmon_real_syscall, the pointers to them.
 * Threads: written by elmon_resolve_real() in the constructor, or on
 * whichever thread reaches a wrapper first (idempotent: every writer
 * stores the same pointers); read on every thread, the hot path and
 * signal handlers included.
 * May not: call anything libelmon wraps while resolving (dlsym waits on
 * nothing it wraps, so resolution cannot recurse), or store a pointer but
 * dlsym's own answer.
 */
#ifndef ELMON_REAL_H
#define ELMON_REAL_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

struct elmon_real_fns {
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*poll_chk)(struct pollfd *, nfds_t, int, size_t);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*close)(int);
    int (*close_range)(unsigned int, unsigned int, int);
    void (*closefrom)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    void (*exit_now)(int) __attribute__((noreturn));   /* _exit */
    int (*prctl)(int, unsigned long, unsigned long, unsigned long, unsigned long);
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
};

extern struct elmon_real_fns elmon_real;
/* The C library's syscall(), apart: wrap.c's assembly entry reads it. */
extern long (*elmon_real_syscall)(long, ...);

/* 0 when every function the C library has is resolved, -1 otherwise. */
int elmon_resolve_real(void);

#endif
