/*
 * libelmon's process-wide life: the constructor that decides whether the
 * library is active, the resolution of the real wait functions, fork and
 * exit.
 *
 * Runs on: the loader's thread (constructor, destructor), the forking
 * thread (atfork), any thread that reaches a wrapper first (resolution).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include "config.h"
#include "elmon.h"
#include "log.h"
#include "real.h"
#include "report.h"
#include "turn.h"
#include "watchdog.h"

struct elmon_real_fns elmon_real;

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
    return elmon_real.poll && elmon_real.epoll_wait ? 0 : -1;
}

void elmon_exporter_atfork_child(void) __attribute__((weak));
void elmon_capture_atfork_child(void) __attribute__((weak));
void elmon_stats_atfork_child(void) __attribute__((weak));
void elmon_exporter_shutdown(void) __attribute__((weak));
void elmon_stats_shutdown(void) __attribute__((weak));

static void atfork_child(void)
{
    elmon_registry_atfork_child();
    elmon_watchdog_atfork_child();
    elmon_log_atfork_child();
    elmon_report_atfork_child();
    if (elmon_capture_atfork_child)
        elmon_capture_atfork_child();
    if (elmon_stats_atfork_child)
        elmon_stats_atfork_child();
    if (elmon_exporter_atfork_child)
        elmon_exporter_atfork_child();
}

/* ELMON_DISABLE and AT_SECURE are the only settings read for every
 * process: they decide whether the library does anything at all. */
__attribute__((constructor)) static void elmon_init(void)
{
    elmon_resolve_real();
    if (getauxval(AT_SECURE))
        return;
    const char *d = getenv("ELMON_DISABLE");
    int disable = 0;
    if (d && *d && elmon_parse_bool(d, &disable) < 0)
        disable = 0;   /* warned about at the first loop, if one runs */
    if (disable)
        return;
    elmon_registry_init();
    pthread_atfork(NULL, NULL, atfork_child);
    __atomic_store_n(&elmon_active, 1, __ATOMIC_RELEASE);
}

__attribute__((destructor)) static void elmon_fini(void)
{
    if (!elmon_active)
        return;
    /* Loop threads still running see a plain wrapper from here on. */
    __atomic_store_n(&elmon_active, 0, __ATOMIC_RELEASE);
    elmon_watchdog_shutdown();
    if (elmon_stats_shutdown)
        elmon_stats_shutdown();
    if (elmon_exporter_shutdown)
        elmon_exporter_shutdown();
}
