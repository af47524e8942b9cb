/*
 * Resolution of the host's real wait functions (see real.h).  Runs in the
 * constructor, or on whichever thread reaches a wrapper first when another
 * library's constructor waits before ours has run.  dlsym does not wait on
 * anything libelmon wraps, so resolution cannot recurse.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "real.h"

struct elmon_real_fns elmon_real;
long (*elmon_real_syscall)(long, ...);

#define RESOLVE(field, name)                                                     \
    do {                                                                         \
        void *p_ = dlsym(RTLD_NEXT, name);                                       \
        if (p_)                                                                  \
            __atomic_store_n((void **)&elmon_real.field, p_, __ATOMIC_RELEASE);  \
    } while (0)

int elmon_resolve_real(void)
{
    RESOLVE(epoll_wait, "epoll_wait");
    RESOLVE(epoll_pwait, "epoll_pwait");
    RESOLVE(epoll_pwait2, "epoll_pwait2");
    RESOLVE(poll, "poll");
    RESOLVE(poll_chk, "__poll_chk");
    RESOLVE(ppoll, "ppoll");
    RESOLVE(ppoll_chk, "__ppoll_chk");
    RESOLVE(select, "select");
    RESOLVE(pselect, "pselect");
    RESOLVE(epoll_ctl, "epoll_ctl");
    RESOLVE(epoll_create, "epoll_create");
    RESOLVE(epoll_create1, "epoll_create1");
    RESOLVE(close, "close");
    RESOLVE(close_range, "close_range");
    RESOLVE(closefrom, "closefrom");
    RESOLVE(dup2, "dup2");
    RESOLVE(dup3, "dup3");
    RESOLVE(exit_now, "_exit");
    RESOLVE(prctl, "prctl");
    RESOLVE(nanosleep, "nanosleep");
    RESOLVE(clock_nanosleep, "clock_nanosleep");
    void *sc = dlsym(RTLD_NEXT, "syscall");
    if (sc)
        __atomic_store_n((void **)&elmon_real_syscall, sc, __ATOMIC_RELEASE);
    return elmon_real.poll && elmon_real.epoll_wait ? 0 : -1;
}

