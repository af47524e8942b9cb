/*
 * Cost of one epoll_wait on a ready eventfd, and of one
 * clock_gettime(CLOCK_MONOTONIC), measured in the same process.
 *
 *   waitcost [CALLS] [ROUNDS]
 *
 * Prints "epoll_ns=X clock_ns=Y": the fastest round of each (the least
 * disturbed by the rest of the machine), ns per call.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    int ep = epoll_create1(0), efd = eventfd(1, 0);
    struct epoll_event ev = {.events = EPOLLIN}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    double best_epoll = 1e18, best_clock = 1e18;
    volatile long sink = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (long i = 0; i < calls; i++)
            sink += epoll_wait(ep, out, 4, 0);
        double t1 = now_ns();
        for (long i = 0; i < calls; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            sink += ts.tv_nsec;
        }
        double t2 = now_ns();
        if ((t1 - t0) / calls < best_epoll)
            best_epoll = (t1 - t0) / calls;
        if ((t2 - t1) / calls < best_clock)
            best_clock = (t2 - t1) / calls;
    }
    printf("epoll_ns=%.2f clock_ns=%.2f\n", best_epoll, best_clock);
    return sink == 42;
}
