/*
 * A preload that only starts one idle thread: the baseline that separates
 * libelmon's own per-call cost from what any second thread costs a
 * single-threaded process (glibc's cancellable syscalls take a slower path
 * once a process has more than one thread).
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

__attribute__((constructor)) static void start(void)
{
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_create(&t, NULL, idle, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
