/*
 * Loading libelmon's own libraries (libunwind, libdw, the exporter), always
 * from libelmon's threads and never on the hot path.
 *
 * Every such dlopen holds dl_lock, and a fork waits for a load in progress:
 * a child must never inherit a library its parent had mapped but not yet
 * relocated (its watchdog jumped to unrelocated addresses:
 * tests/test_faults.c, fork_during_export).  The wait is bounded: glibc holds
 * its atfork lock while it runs the prepare handler, so a library
 * constructor registering fork handlers of its own would wait on us; after
 * 200 ms the fork goes ahead and that child loads nothing (elmon_dl_torn).
 *
 * A loaded library's first initialisation is a load too (elmon_dl_init):
 * curl_global_init initialises OpenSSL, holding OpenSSL's and libcurl's own
 * locks.  A host thread that forked meanwhile left its child those locks
 * held by a thread the child does not have: the child's exit() hung in
 * OpenSSL's atexit cleanup, its watchdog spun in curl_global_init
 * (tests/test_faults.c, fork_during_export: 3 of 26 runs while CI loaded
 * the machine).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#include "dl.h"

static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;
static int dl_locked_for_fork;
int elmon_dl_torn;

void *elmon_dlopen(const char *name, int flags)
{
    if (__atomic_load_n(&elmon_dl_torn, __ATOMIC_RELAXED))
        return NULL;
    pthread_mutex_lock(&dl_lock);
    void *h = dlopen(name, flags);
    pthread_mutex_unlock(&dl_lock);
    return h;
}

int elmon_dl_init(int (*init)(void *arg), void *arg)
{
    if (__atomic_load_n(&elmon_dl_torn, __ATOMIC_RELAXED))
        return -1;
    pthread_mutex_lock(&dl_lock);
    int rc = init(arg);
    pthread_mutex_unlock(&dl_lock);
    return rc;
}

void elmon_dl_atfork_prepare(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 200000000;
    dl.tv_sec += dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    dl_locked_for_fork = pthread_mutex_timedlock(&dl_lock, &dl) == 0;
}

void elmon_dl_atfork_parent(void)
{
    if (dl_locked_for_fork)
        pthread_mutex_unlock(&dl_lock);
}

void elmon_dl_atfork_child(void)
{
    /* The child's only thread is the one that took the lock in prepare;
     * when prepare gave up, the holder is a thread the child does not
     * have, so the lock is made anew and nothing more is loaded. */
    if (dl_locked_for_fork) {
        pthread_mutex_unlock(&dl_lock);
    } else {
        elmon_dl_torn = 1;
        pthread_mutex_init(&dl_lock, NULL);
    }
}
