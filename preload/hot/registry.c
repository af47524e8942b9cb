/*
 * The loop table: claiming a slot at a thread's first loop wait (the slow
 * path the hot path tail-calls), releasing it at thread exit and fork, and
 * the snapshot every reader takes of a slot.
 *
 * Threads: loop threads (registration, once each; thread exit), the forking
 * thread (atfork child), any reader (snapshots).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clock.h"
#include "config.h"
#include "ownfd.h"
#include "registry.h"
#include "thresholds.h"
#include "fdtable.h"
#include "log.h"
#include "outfile.h"
#include "snapshot.h"
#include "turn.h"

struct elmon_loop elmon_loops[ELMON_MAX_LOOPS];
__thread struct elmon_loop *elmon_tls_loop __attribute__((tls_model("initial-exec")));
/* The watchdog's start (process/, given at init: hot/ calls nothing above
 * itself by name). */
static void (*on_first_loop)(void);

__thread int elmon_tls_untracked __attribute__((tls_model("initial-exec")));

int elmon_active;
uint64_t elmon_block_ns = ELMON_DEFAULT_BLOCK_MS * 1000000ull, elmon_critical_ns = ELMON_DEFAULT_CRITICAL_MS * 1000000ull;

static pthread_key_t exit_key;
static int exit_key_ok;
static pthread_once_t first_loop_once = PTHREAD_ONCE_INIT;
static int table_full_warned;

static const char *const poller_names[ELMON_POLLER_COUNT] = {
    "none", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect",
};

const char *elmon_poller_name(int poller)
{
    return poller > 0 && poller < ELMON_POLLER_COUNT ? poller_names[poller] : "none";
}

static const char *const end_names[] = {"wait", "loop_closed", "thread_exit", "exit"};

const char *elmon_end_name(int end)
{
    return end >= 0 && end < (int)(sizeof end_names / sizeof end_names[0]) ? end_names[end] : "wait";
}

/* Thread exit (pthread key destructor): the slot goes DEAD under sig_lock,
 * so the watchdog never signals this tid after it is gone, and the thread
 * never registers again on its way out. */
static void loop_thread_exit(void *p)
{
    struct elmon_loop *l = p;
    ELMON_STORE(&l->exit_ticks, elmon_ticks());
    uint64_t w = ELMON_LOAD(&l->loop_word);
    if (elmon_word_kind(w) == ELMON_LOOP_EPOLL)
        elmon_fd_loop_clear(elmon_word_fd(w), l);
    pthread_mutex_lock(&l->sig_lock);
    __atomic_store_n(&l->state, ELMON_SLOT_EXITING, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&l->sig_lock);
    __atomic_store_n(&l->state, ELMON_SLOT_DEAD, __ATOMIC_RELEASE);
    elmon_tls_loop = NULL;
    elmon_tls_untracked = 1;
}

/* What the whole process needs once it has a loop: settings, the log, the
 * clock.  Warnings about settings therefore come only from processes that
 * run a loop. */
static void first_loop_init(void)
{
    elmon_log_open();
    elmon_config_load();
    elmon_clock_init();
    elmon_block_ns = elmon_opt.block_ms * 1000000;
    elmon_critical_ns = elmon_opt.critical_ms * 1000000;
}


static struct elmon_loop *register_thread(int poller);

/* The host sees errno exactly as the real call leaves it: the first-loop
 * set-up (config, clock calibration reading /sys, the log file) and the
 * watchdog's start may fail harmlessly, and their errno must not leak into
 * a wait that succeeds. */
struct elmon_loop *elmon_register(int poller)
{
    int saved = errno;
    struct elmon_loop *l = register_thread(poller);
    errno = saved;
    return l;
}

static struct elmon_loop *register_thread(int poller)
{
    if (!elmon_active)
        return NULL;
    pthread_once(&first_loop_once, first_loop_init);
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_loop *l = &elmon_loops[i];
        int expect = ELMON_SLOT_FREE;
        if (!__atomic_compare_exchange_n(&l->state, &expect, ELMON_SLOT_CLAIMING, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        uint32_t gen = l->generation + 1;
        struct elmon_capture *cap = l->capture;   /* reused across owners */
        memset((char *)l + offsetof(struct elmon_loop, tid), 0,
               sizeof *l - offsetof(struct elmon_loop, tid));
        pthread_mutex_init(&l->sig_lock, NULL);
        l->capture = cap;
        l->generation = gen;
        l->tid = (int)syscall(SYS_gettid);
        l->pthread_id = (uintptr_t)pthread_self();
        l->poller = poller;
        l->start_ticks = elmon_ticks();
        prctl(PR_GET_NAME, l->wd_thread_name);
        if (exit_key_ok)
            pthread_setspecific(exit_key, l);
        elmon_tls_loop = l;
        __atomic_store_n(&l->state, ELMON_SLOT_ACTIVE, __ATOMIC_RELEASE);
        if (on_first_loop)
            on_first_loop();
        return l;
    }
    elmon_tls_untracked = 1;
    if (!__atomic_exchange_n(&table_full_warned, 1, __ATOMIC_RELAXED))
        elmon_warn("more than %d loop threads at once; further ones are not measured", ELMON_MAX_LOOPS);
    return NULL;
}

/* The process libelmon's state belongs to: a vfork child shares that state
 * (and its memory) with its parent without the atfork handlers having run,
 * and must leave it alone. */
static pid_t own_pid;


/* One getpid system call: for the slow branches of the close family and
 * for _exit only. */
int elmon_same_process(void)
{
    return (pid_t)syscall(SYS_getpid) == __atomic_load_n(&own_pid, __ATOMIC_RELAXED);
}

static void (*on_confine)(const char *how);
static int confined;

void elmon_registry_on_confine(void (*fn)(const char *how))
{
    on_confine = fn;
}

/* Only the process's own threads confine the process's libelmon: a vfork
 * child's filter is its own (and its exec's). */
void elmon_confining(const char *how)
{
    if (on_confine && elmon_same_process() && !__atomic_exchange_n(&confined, 1, __ATOMIC_ACQ_REL))
        on_confine(how);
}

void elmon_registry_init(void (*first_loop)(void))
{
    on_first_loop = first_loop;
    own_pid = (pid_t)syscall(SYS_getpid);
    exit_key_ok = pthread_key_create(&exit_key, loop_thread_exit) == 0;
}

/* fork: the child has one thread, the one that forked.  Every slot of the
 * parent's threads is released (only slots in use are touched, so a fork
 * storm copies no untouched pages), and the forking thread registers anew
 * at its next wait. */
void elmon_registry_atfork_child(void)
{
    own_pid = (pid_t)syscall(SYS_getpid);
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_loop *l = &elmon_loops[i];
        if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) != ELMON_SLOT_FREE)
            __atomic_store_n(&l->state, ELMON_SLOT_FREE, __ATOMIC_RELAXED);
    }
    if (elmon_tls_loop && exit_key_ok)
        pthread_setspecific(exit_key, NULL);
    elmon_tls_loop = NULL;
    elmon_tls_untracked = 0;
}

int elmon_loops_foreach(int (*fn)(struct elmon_loop *l, void *arg), void *arg)
{
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_loop *l = &elmon_loops[i];
        int st = __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
        if (st != ELMON_SLOT_ACTIVE && st != ELMON_SLOT_DEAD)
            continue;
        int rc = fn(l, arg);
        if (rc)
            return rc;
    }
    return 0;
}

const char *elmon_status_name(uint64_t lag_ns)
{
    if (lag_ns < ELMON_STATUS_OK_NS)
        return "healthy";
    if (lag_ns < ELMON_STATUS_DEGRADED_NS)
        return "ok";
    if (lag_ns < ELMON_STATUS_CRITICAL_NS)
        return "degraded";
    return "critical";
}

uint64_t elmon_loop_take_window_max(struct elmon_loop *l)
{
    uint64_t m = __atomic_exchange_n(&l->wd_export_max_ns, 0, __ATOMIC_ACQ_REL);
    uint64_t cur = ELMON_LOAD(&l->window_max_lag_ns);
    return cur > m ? cur : m;
}

int elmon_loop_index(const struct elmon_loop *l)
{
    return (int)(l - elmon_loops);
}

int elmon_read_comm(int tid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    long k = elmon_read_small(path, out, n);
    if (k <= 0) {
        out[0] = 0;
        return -1;
    }
    if (out[k - 1] == '\n')
        out[k - 1] = 0;
    return 0;
}

void elmon_loop_snapshot(struct elmon_loop *l, struct elmon_loop_snapshot *s)
{
    s->pid = getpid();
    s->tid = l->tid;
    s->poller = ELMON_LOAD(&l->poller);
    s->generation = l->generation;
    s->dead = __atomic_load_n(&l->state, __ATOMIC_ACQUIRE) == ELMON_SLOT_DEAD;
    if (s->dead)
        snprintf(s->thread, sizeof s->thread, "%s", l->wd_thread_name);
    else
        elmon_read_comm(l->tid, s->thread, sizeof s->thread);
    if (!s->thread[0])
        snprintf(s->thread, sizeof s->thread, "%s", l->wd_thread_name);
    s->start_unix_ns = elmon_ticks_to_unix_ns(l->start_ticks);
    s->n_turns = ELMON_LOAD(&l->n_turns);
    s->busy_ns = ELMON_LOAD(&l->busy_ns);
    s->idle_ns = ELMON_LOAD(&l->idle_ns);
    s->n_events = ELMON_LOAD(&l->n_events);
    s->n_warning = ELMON_LOAD(&l->n_warning);
    s->n_critical = ELMON_LOAD(&l->n_critical);
    s->n_spans_dropped = ELMON_LOAD(&l->n_spans_dropped);
    uint64_t w = ELMON_LOAD(&l->loop_word);
    int kind = elmon_word_kind(w);
    s->n_loops = ELMON_LOAD(&l->n_loops);
    s->n_warning += ELMON_LOAD(&l->wd_closed_warning);
    s->n_critical += ELMON_LOAD(&l->wd_closed_critical);
    if (kind == ELMON_LOOP_EPOLL)
        s->n_fds = (uint64_t)elmon_epoll_fds(elmon_word_fd(w));
    else   /* a poll loop's last wait, or the last loop's set when it ended */
        s->n_fds = (uint64_t)ELMON_LOAD(&l->n_fds);
    /* No turn runs while no loop does, nor in a busy period the watchdog
     * found outside a running loop. */
    uint64_t since = __atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE);
    int in_turn = since && !s->dead && kind != ELMON_LOOP_NONE && since != ELMON_LOAD(&l->outside_since);
    /* RDTSC is not ordered with the load above: it can read the counter
     * before a busy_since the loop thread has just stored, and now < since
     * then (a turn just begun, 0 so far), never a wrapped difference. */
    uint64_t now = elmon_ticks();
    s->ongoing_busy_ns = in_turn && now > since ? elmon_ticks_to_ns(now - since) : 0;
    uint64_t recent = ELMON_LOAD(&l->window_max_lag_ns);
    for (unsigned i = 0; i < sizeof l->recent_max_ns / sizeof l->recent_max_ns[0]; i++) {
        uint64_t v = ELMON_LOAD(&l->recent_max_ns[i]);
        if (v > recent)
            recent = v;
    }
    if (s->ongoing_busy_ns > recent)
        recent = s->ongoing_busy_ns;
    s->recent_max_lag_ns = recent;
    elmon_hist_snapshot(&l->lag, &s->lag);
}

struct thread_start {
    void *(*fn)(void *);
    void *arg;
};

/* libelmon's own threads wait too (libcurl polls): they must never count
 * as loops of the host. */
static void *thread_trampoline(void *p)
{
    struct thread_start ts = *(struct thread_start *)p;
    free(p);
    elmon_tls_untracked = 1;
    elmon_own_thread = 1;
    return ts.fn(ts.arg);
}

int elmon_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    struct thread_start *ts = malloc(sizeof *ts);
    if (!ts)
        return -ENOMEM;
    ts->fn = fn;
    ts->arg = arg;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(t, &attr, thread_trampoline, ts);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        free(ts);
    if (rc == 0 && name)
        pthread_setname_np(*t, name);
    return -rc;
}
