/*
 * Why a thread is blocked, from /proc/self/task/TID alone (no signal): its
 * scheduler state, the system call it sits in with that call's arguments
 * and user registers, its CPU time and its blocked-signal mask; and the
 * restart rules of signal(7) that decide whether signalling it would be
 * visible to the host.
 *
 * Threads: the watchdog.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <unistd.h>
#include "cause.h"
#include "outfile.h"
#include "unittest.h"


/* stat: the state letter after the command's closing parenthesis (the
 * command itself may hold ") "). */
UNITTEST void task_parse_stat(const char *buf, struct elmon_task *t)
{
    const char *p = strrchr(buf, ')');
    if (p && p[1] == ' ')
        t->state = p[2];
}

/* syscall: "running", or "NR ARG1..ARG6 SP PC" (hex but NR), or "-1 SP PC"
 * for a thread in the kernel outside a call. */
UNITTEST void task_parse_syscall(const char *buf, struct elmon_task *t)
{
    if (strncmp(buf, "running", 7) == 0) {
        t->nr = -1;
        return;
    }
    const char *s = buf;
    char *e;
    t->nr = strtol(s, &e, 10);
    s = e;
    if (t->nr >= 0) {
        for (int i = 0; i < 6; i++) {
            t->args[i] = strtoull(s, &e, 16);
            s = e;
        }
    }
    t->sp = strtoull(s, &e, 16);
    s = e;
    t->pc = strtoull(s, &e, 16);
    if (t->nr < 0)
        t->nr = -2;   /* in the kernel, not in a system call */
}

UNITTEST void task_parse_status(const char *buf, struct elmon_task *t)
{
    const char *s = strstr(buf, "SigBlk:");
    if (s)
        t->sigblk = strtoull(s + 7, NULL, 16);
}

char elmon_task_state(int tid)
{
    char path[64], buf[1024];
    struct elmon_task t = {0};
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    if (elmon_read_small(path, buf, sizeof buf) < 0)
        return 0;
    task_parse_stat(buf, &t);
    return t.state;
}

int elmon_task_read(int tid, struct elmon_task *t)
{
    char path[64], buf[1024];
    memset(t, 0, sizeof *t);
    t->nr = -2;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    if (elmon_read_small(path, buf, sizeof buf) < 0)
        return -ESRCH;
    task_parse_stat(buf, t);
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    if (elmon_read_small(path, buf, sizeof buf) > 0)
        task_parse_syscall(buf, t);
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    if (elmon_read_small(path, buf, sizeof buf) > 0)
        t->run_ns = strtoull(buf, NULL, 10);
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    if (elmon_read_small(path, buf, sizeof buf) > 0)
        task_parse_status(buf, t);
    return 0;
}

/* Names of the x86-64 system calls a blocked loop is seen in. */
static const struct {
    short nr;
    char cls;          /* s sleep, i io, l lock, d disk, c other */
    const char *name;
} syscalls[] = {
    {0, 'i', "read"}, {1, 'i', "write"}, {2, 'd', "open"}, {3, 'i', "close"},
    {4, 'd', "stat"}, {5, 'd', "fstat"}, {6, 'd', "lstat"}, {7, 'i', "poll"},
    {9, 'c', "mmap"}, {10, 'c', "mprotect"}, {11, 'c', "munmap"}, {16, 'i', "ioctl"},
    {17, 'd', "pread64"}, {18, 'd', "pwrite64"}, {19, 'i', "readv"}, {20, 'i', "writev"},
    {23, 'i', "select"}, {24, 'c', "sched_yield"}, {26, 'd', "msync"}, {28, 'c', "madvise"},
    {34, 's', "pause"}, {35, 's', "nanosleep"}, {40, 'i', "sendfile"}, {42, 'i', "connect"},
    {43, 'i', "accept"}, {44, 'i', "sendto"}, {45, 'i', "recvfrom"}, {46, 'i', "sendmsg"},
    {47, 'i', "recvmsg"}, {56, 'c', "clone"}, {59, 'c', "execve"}, {61, 'l', "wait4"},
    {65, 'l', "semop"}, {69, 'i', "msgsnd"}, {70, 'i', "msgrcv"}, {72, 'l', "fcntl"},
    {73, 'l', "flock"}, {74, 'd', "fsync"}, {75, 'd', "fdatasync"}, {76, 'd', "truncate"},
    {77, 'd', "ftruncate"}, {82, 'd', "rename"}, {83, 'd', "mkdir"}, {87, 'd', "unlink"},
    {128, 's', "rt_sigtimedwait"}, {130, 's', "rt_sigsuspend"}, {162, 'd', "sync"},
    {202, 'l', "futex"}, {208, 'i', "io_getevents"}, {217, 'd', "getdents64"},
    {220, 'l', "semtimedop"}, {230, 's', "clock_nanosleep"}, {232, 'i', "epoll_wait"},
    {242, 'i', "mq_timedsend"}, {243, 'i', "mq_timedreceive"}, {247, 'l', "waitid"},
    {257, 'd', "openat"}, {262, 'd', "newfstatat"}, {270, 'i', "pselect6"}, {271, 'i', "ppoll"},
    {275, 'i', "splice"}, {277, 'd', "sync_file_range"}, {281, 'i', "epoll_pwait"},
    {285, 'd', "fallocate"}, {288, 'i', "accept4"}, {295, 'd', "preadv"}, {296, 'd', "pwritev"},
    {299, 'i', "recvmmsg"}, {306, 'd', "syncfs"}, {307, 'i', "sendmmsg"}, {318, 'c', "getrandom"},
    {326, 'd', "copy_file_range"}, {332, 'd', "statx"}, {426, 'i', "io_uring_enter"},
    {441, 'i', "epoll_pwait2"},
};

static int syscall_index(long nr)
{
    for (size_t i = 0; i < sizeof syscalls / sizeof syscalls[0]; i++)
        if (syscalls[i].nr == nr)
            return (int)i;
    return -1;
}

const char *elmon_syscall_name(long nr)
{
    int i = syscall_index(nr);
    return i >= 0 ? syscalls[i].name : NULL;
}

static int fd_is_stream(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) ||
                                              S_ISCHR(st.st_mode));
}

/* A socket whose SO_RCVTIMEO or SO_SNDTIMEO is set fails with EINTR. */
static int socket_has_timeout(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    struct timeval tv;
    socklen_t n = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &n) == 0 && (tv.tv_sec || tv.tv_usec))
        return 1;
    n = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &n) == 0 && (tv.tv_sec || tv.tv_usec))
        return 1;
    return 0;
}

int elmon_syscall_eintr(const struct elmon_task *t)
{
    switch (t->nr) {
    case -1:
        return 0;
    case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_pause: case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait: case SYS_poll: case SYS_ppoll: case SYS_select: case SYS_pselect6:
    case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_io_getevents:
    case SYS_semop: case SYS_semtimedop: case SYS_msgrcv: case SYS_msgsnd:
    case SYS_mq_timedreceive: case SYS_mq_timedsend: case SYS_io_uring_enter:
        return 1;
    case SYS_futex: {
        /* A wait with a timeout returns EINTR; one without is restarted. */
        int op = (int)(t->args[1] & FUTEX_CMD_MASK);
        return (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET || op == FUTEX_LOCK_PI ||
                op == FUTEX_WAIT_REQUEUE_PI) && t->args[3] != 0;
    }
    case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect:
        return socket_has_timeout((int)t->args[0]);
    case SYS_write: case SYS_writev: case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
    case SYS_sendfile: case SYS_splice:
        /* A write that made progress returns a short count when a handler
         * runs, SA_RESTART or not. */
        return fd_is_stream((int)t->args[0]);
    case -2:
        /* In the kernel outside a call, or unreadable: do not guess. */
        return 1;
    default:
        return 0;
    }
}

static void set_cls(struct elmon_span_cause *c, const char *cls)
{
    snprintf(c->cls, sizeof c->cls, "%s", cls);
}

/* A select or poll given no descriptor is a sleep: CPython up to 3.10
 * implements time.sleep as select(0, NULL, NULL, NULL, &timeout), and C
 * programs use both as portable sub-second sleeps. */
static int waits_on_nothing(const struct elmon_task *t)
{
    switch (t->nr) {
    case SYS_select: case SYS_pselect6:
        return t->args[0] == 0 || (t->args[1] == 0 && t->args[2] == 0 && t->args[3] == 0);
    case SYS_poll: case SYS_ppoll:
        return t->args[1] == 0;
    default:
        return 0;
    }
}

void elmon_cause_fill(struct elmon_span_cause *c, const struct elmon_task *t, double cpu_share, double span_ms)
{
    memset(c, 0, sizeof *c);
    c->state = t->state;
    c->nr = t->nr;
    c->cpu_ms = cpu_share >= 0 ? cpu_share * span_ms : -1;
    const char *name = t->nr >= 0 ? elmon_syscall_name(t->nr) : NULL;
    if (name)
        snprintf(c->syscall, sizeof c->syscall, "%s", name);
    else if (t->nr >= 0)
        snprintf(c->syscall, sizeof c->syscall, "syscall_%ld", t->nr);
    if (t->state == 'D') {
        set_cls(c, "disk");
        return;
    }
    /* Running, or sleeping briefly while mostly on the CPU. */
    if (t->state == 'R' || t->nr == -1 || cpu_share >= 0.5) {
        set_cls(c, "cpu");
        return;
    }
    if (waits_on_nothing(t)) {
        set_cls(c, "sleep");
        return;
    }
    int i = t->nr >= 0 ? syscall_index(t->nr) : -1;
    switch (i >= 0 ? syscalls[i].cls : 0) {
    case 's': set_cls(c, "sleep"); break;
    case 'l': set_cls(c, "lock"); break;
    case 'd': set_cls(c, "disk"); break;
    case 'i': set_cls(c, "io"); break;
    default: set_cls(c, "unknown"); break;
    }
}
