/* A host for scripts/bench-serve: THREADS threads (default 4), each an
 * epoll loop waking every 10 ms with nothing to do, for SECONDS seconds
 * (default 60).  Prints "ready PID" once every loop has turned.  Not a
 * test. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static double seconds = 60;
static pthread_barrier_t started;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loop(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, 10);
    pthread_barrier_wait(&started);
    for (double end = now_s() + seconds; now_s() < end;)
        epoll_wait(ep, &ev, 1, 10);
    close(ep);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        seconds = atof(argv[2]);
    if (threads < 1 || threads > 64)
        return 2;
    pthread_t t[64];
    pthread_barrier_init(&started, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, loop, NULL);
    pthread_barrier_wait(&started);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
