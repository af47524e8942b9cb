/*
 * Start-up cost of LD_PRELOAD=libelmon.so on a program that runs no loop.
 *
 *   startup LIB RUNS PROGRAM [ARGS...]
 *
 * Runs PROGRAM RUNS times bare and RUNS times with LD_PRELOAD=LIB,
 * alternating, and prints the median wall time of each in microseconds and
 * their ratio.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double one(char **argv, char **envp)
{
    double t0 = now_us();
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, envp) != 0)
        exit(2);
    int st;
    waitpid(pid, &st, 0);
    return now_us() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int runs = atoi(argv[2]);
    int n = 0;
    while (environ[n])
        n++;
    char **bare = calloc((size_t)n + 2, sizeof *bare), **pre = calloc((size_t)n + 2, sizeof *pre);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            bare[k] = pre[k] = environ[i], k++;
    char *ld;
    if (asprintf(&ld, "LD_PRELOAD=%s", argv[1]) < 0)
        return 2;
    pre[k] = ld;
    double *a = malloc(sizeof(double) * (size_t)runs), *b = malloc(sizeof(double) * (size_t)runs);
    for (int i = 0; i < 20; i++) {   /* warm the page cache */
        one(argv + 3, bare);
        one(argv + 3, pre);
    }
    for (int i = 0; i < runs; i++) {
        a[i] = one(argv + 3, bare);
        b[i] = one(argv + 3, pre);
    }
    qsort(a, (size_t)runs, sizeof *a, cmp);
    qsort(b, (size_t)runs, sizeof *b, cmp);
    printf("bare_us=%.1f preload_us=%.1f ratio=%.3f\n", a[runs / 2], b[runs / 2], b[runs / 2] / a[runs / 2]);
    return 0;
}
