/*
 * The human log (ELMON_LOG).  Any thread but the hot path; one mutex keeps
 * lines whole.  Opened when the first loop thread registers, so a process
 * that never runs a loop writes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "buf.h"
#include "config.h"
#include "log.h"
#include "outfile.h"
#include "ownfd.h"
#include "real.h"
#include <time.h>

int elmon_exiting;

/* A line waits this long for another writer, then is dropped; at exit it
 * waits this long more for the descriptor to take it. */
#define LOG_LOCK_WAIT_NS 50000000
#define LOG_EXIT_WRITE_MS 20

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;          /* -1: off */
static int log_owned;           /* log_fd is our file, not stderr */
static int log_reopen;
static int log_lost_warned;
static int log_stuck;           /* a lock wait timed out: another writer is stuck */          /* forked child: open its own %p file on first use */

/* Points log_fd at ELMON_LOG's choice; a file that cannot be opened is
 * left as stderr and its error returned (0 otherwise), for the caller to
 * warn about outside the lock. */
static int log_open_quiet(void)
{
    const char *v = elmon_env_str("ELMON_LOG");
    log_fd = 2;
    log_owned = 0;
    if (!v || strcmp(v, "stderr") == 0)
        return 0;
    if (strcmp(v, "off") == 0) {
        log_fd = -1;
        return 0;
    }
    char path[4096];
    int fd = elmon_open_out(v, path, sizeof path);
    if (fd < 0)
        return fd;
    log_fd = fd;
    log_owned = 1;
    return 0;
}

static void warn_unopened(int rc)
{
    char mem[512];
    struct elmon_buf b;
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_puts(&b, "ELMON_LOG=");
    elmon_buf_quote_value(&b, elmon_env_str("ELMON_LOG"), 200);
    elmon_buf_printf(&b, " cannot be opened (%s); using stderr", elmon_open_out_why(rc));
    elmon_warn("%s", mem);
}

void elmon_log_open(void)
{
    int rc = log_open_quiet();
    if (rc < 0)
        warn_unopened(rc);
}

int elmon_log_enabled(void)
{
    return log_fd >= 0;
}

void elmon_log_line(const char *s, size_t n)
{
    char mem[8192];
    if (__atomic_exchange_n(&log_reopen, 0, __ATOMIC_ACQ_REL))
        elmon_log_open();
    if (log_fd < 0)
        return;
    if (n > sizeof mem - 1)
        n = sizeof mem - 1;
    memcpy(mem, s, n);
    mem[n++] = '\n';
    int saved = errno;
    /* Bounded everywhere: a writer stuck on a full pipe holds the lock, and
     * nobody else may wait on it for long, least of all an exiting host. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += LOG_LOCK_WAIT_NS;
    dl.tv_sec += dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    if (__atomic_load_n(&log_stuck, __ATOMIC_RELAXED) && __atomic_load_n(&elmon_exiting, __ATOMIC_RELAXED)) {
        errno = saved;
        return;
    }
    if (pthread_mutex_timedlock(&log_lock, &dl) != 0) {
        /* Someone is stuck writing: at exit, do not pay 50 ms per line. */
        __atomic_store_n(&log_stuck, 1, __ATOMIC_RELAXED);
        errno = saved;
        return;
    }
    /* A file of ours the host took (dup2 onto it, or a raw close and an
     * open of its own): reopen it, and say so once, after the lock. */
    int lost = 0, reopen_rc = 0;
    if (log_owned && !elmon_own_ok(log_fd)) {
        elmon_own_release(log_fd);
        reopen_rc = log_open_quiet();
        lost = !log_lost_warned;
        log_lost_warned = 1;
    }
    /* At exit, a line that cannot be written within 20 ms is dropped
     * rather than hold the host's exit. */
    struct pollfd pfd = {log_fd, POLLOUT, 0};
    if (log_fd >= 0 && (!__atomic_load_n(&elmon_exiting, __ATOMIC_RELAXED) ||
                        (elmon_real.poll && elmon_real.poll(&pfd, 1, LOG_EXIT_WRITE_MS) == 1)))
        elmon_write_all(log_fd, mem, n);
    pthread_mutex_unlock(&log_lock);
    if (lost)
        elmon_warn("the host took ELMON_LOG's descriptor (a dup2 onto it, or a close libelmon could not see); "
                   "reopening the file");
    if (reopen_rc < 0)
        warn_unopened(reopen_rc);
    errno = saved;
}

static void vlogf(const char *prefix, const char *fmt, va_list ap)
{
    char mem[4096];
    int k = snprintf(mem, sizeof mem, "%s", prefix);
    int m = vsnprintf(mem + k, sizeof mem - (size_t)k, fmt, ap);
    if (m < 0)
        return;
    size_t n = (size_t)k + (size_t)m;
    elmon_log_line(mem, n < sizeof mem ? n : sizeof mem - 1);
}

void elmon_logf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlogf("elmon: ", fmt, ap);
    va_end(ap);
}

void elmon_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlogf("elmon: warning: ", fmt, ap);
    va_end(ap);
}

void elmon_log_atfork_child(void)
{
    pthread_mutex_init(&log_lock, NULL);
    /* A %p log path names the parent; the child opens its own. */
    if (log_owned) {
        const char *v = elmon_env_str("ELMON_LOG");
        if (v && strstr(v, "%p")) {
            elmon_own_release(log_fd);
            log_fd = 2;
            log_owned = 0;
            log_reopen = 1;   /* lazily: a child that only execs makes no file */
        }
    }
}
