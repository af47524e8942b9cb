/*
 * The loop table (preload/hot/registry.c) and the snapshot every reader
 * takes of a slot: claiming a slot for the calling thread, what the
 * first registration sets up (settings, the watchdog thread), errno, a
 * full table, the snapshot of a fresh slot and of one that ran turns,
 * a dead thread's slot, reuse of a harvested slot, elmon_loops_foreach,
 * elmon_loop_index, the status thresholds, thread names, fork.
 *
 * Registering starts the watchdog thread (elmon_watchdog_ensure); each
 * case runs in a child of its own (CK_FORK), whose exit ends it.  The
 * suite turns off what the watchdog would otherwise create (the live stats
 * file, the exporter) and sets a threshold no turn here reaches, so it
 * never begins a span (nor captures a stack).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "registry.h"
#include "fdtable.h"
#include "loop.h"
#include "snapshot.h"
#include "turn.h"
#include "watchdog.h"
#include "support.h"

extern char **environ;

static int gettid_(void)
{
    return (int)syscall(SYS_gettid);
}

static void setup(void)
{
    elmon_registry_init(elmon_watchdog_ensure);
    elmon_active = 1;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* fd 2 to a fresh file; returns its path (static). */
static const char *stderr_to_file(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/elmon-test-registry-%d.err", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    return path;
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* A thread of this process named name, from /proc/self/task. */
static int have_thread_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)) && !found) {
        if (e->d_name[0] == '.')
            continue;
        char comm[64];
        if (elmon_read_comm(atoi(e->d_name), comm, sizeof comm) == 0 && strcmp(comm, name) == 0)
            found = 1;
    }
    if (d)
        closedir(d);
    return found;
}

static int count_slots(struct elmon_loop *l, void *arg)
{
    (void)l;
    (*(int *)arg)++;
    return 0;
}

static int slots_visited(void)
{
    int n = 0;
    elmon_loops_foreach(count_slots, &n);
    return n;
}

/* --- loop threads that register, then wait to be let go ------------- */

struct lt {
    const char *name;            /* set before registering, if any */
    int poller;
    int turns;                   /* turns to run through turn.h before holding */
    struct elmon_loop *l;
    int tid;
    int ready;                   /* registered (atomic) */
    int go;                      /* main lets it exit (atomic) */
    pthread_t thread;
};

static void run_turns(struct elmon_loop *l, int fd, int n)
{
    (void)l;
    for (int i = 0; i < n; i++) {
        struct elmon_loop *t = elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, fd, 0, 0, -1, 1000, 2000);
        if (!t)
            return;
        elmon_turn_end(t, 1);
    }
}

static void *lt_main(void *arg)
{
    struct lt *t = arg;
    if (t->name)
        pthread_setname_np(pthread_self(), t->name);
    t->tid = gettid_();
    t->l = elmon_register(t->poller);
    if (t->l && t->turns)
        run_turns(t->l, 700, t->turns);
    __atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
        usleep(1000);
    return NULL;
}

static void lt_start(struct lt *t)
{
    ck_assert_int_eq(pthread_create(&t->thread, NULL, lt_main, t), 0);
    double t0 = mono_ms();
    while (!__atomic_load_n(&t->ready, __ATOMIC_ACQUIRE)) {
        ck_assert_msg(mono_ms() - t0 < 10000, "a loop thread did not register within 10 s");
        usleep(1000);
    }
}

static void lt_stop(struct lt *t)
{
    __atomic_store_n(&t->go, 1, __ATOMIC_RELEASE);
    pthread_join(t->thread, NULL);
}

/* --- claim ------------------------------------------------------------ */

START_TEST(register_claims_a_slot_for_the_thread)
{
    setenv("ELMON_BLOCK_MS", "20", 1);
    setenv("ELMON_CRITICAL_MS", "200", 1);
    /* Inactive (ELMON_DISABLE, or before the constructor): nothing. */
    elmon_active = 0;
    ck_assert_ptr_null(elmon_register(ELMON_POLLER_POLL));
    ck_assert_ptr_null(elmon_tls_loop);
    ck_assert_int_eq(slots_visited(), 0);
    ck_assert(!have_thread_named("elmon-watchdog"));

    elmon_active = 1;
    uint64_t t0 = elmon_ticks();
    struct elmon_loop *l = elmon_register(ELMON_POLLER_EPOLL_PWAIT);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_eq(elmon_tls_loop, l);
    ck_assert_int_eq(__atomic_load_n(&l->state, __ATOMIC_ACQUIRE), ELMON_SLOT_ACTIVE);
    ck_assert_int_eq(l->tid, gettid_());
    ck_assert_int_eq(l->poller, ELMON_POLLER_EPOLL_PWAIT);
    ck_assert_uint_eq(l->generation, 1);
    ck_assert_uint_ge(l->start_ticks, t0);
    ck_assert_uint_le(l->start_ticks, elmon_ticks());
    int i = elmon_loop_index(l);
    ck_assert_int_ge(i, 0);
    ck_assert_int_lt(i, ELMON_MAX_LOOPS);
    ck_assert_ptr_eq(&elmon_loops[i], l);
    ck_assert_int_eq(slots_visited(), 1);
    /* The first loop's set-up read the settings... */
    ck_assert_uint_eq(elmon_block_ns, 20000000);
    ck_assert_uint_eq(elmon_critical_ns, 200000000);
    /* ...and the watchdog runs. */
    double w0 = mono_ms();
    while (!have_thread_named("elmon-watchdog")) {
        ck_assert_msg(mono_ms() - w0 < 5000, "no elmon-watchdog thread after registering");
        usleep(1000);
    }
}
END_TEST

START_TEST(threads_get_distinct_slots)
{
    enum { N = 8 };
    struct lt t[N];
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        t[i].poller = i % 2 ? ELMON_POLLER_POLL : ELMON_POLLER_EPOLL_WAIT;
        ck_assert_int_eq(pthread_create(&t[i].thread, NULL, lt_main, &t[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        double t0 = mono_ms();
        while (!__atomic_load_n(&t[i].ready, __ATOMIC_ACQUIRE)) {
            ck_assert(mono_ms() - t0 < 10000);
            usleep(1000);
        }
    }
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_nonnull(t[i].l);
        ck_assert_int_eq(t[i].l->tid, t[i].tid);
        ck_assert_int_eq(t[i].l->poller, t[i].poller);
        ck_assert_ptr_eq(&elmon_loops[elmon_loop_index(t[i].l)], t[i].l);
        for (int j = 0; j < i; j++)
            ck_assert_msg(t[i].l != t[j].l, "threads %d and %d share slot %d", i, j, elmon_loop_index(t[i].l));
    }
    ck_assert_int_eq(slots_visited(), N);
    for (int i = 0; i < N; i++)
        lt_stop(&t[i]);
}
END_TEST

START_TEST(register_leaves_errno_alone)
{
    /* The first loop's set-up fails here (ELMON_LOG cannot be opened: a
     * warning, errno ENOENT inside); the host's errno is as it was. */
    const char *err = stderr_to_file();
    setenv("ELMON_LOG", "/nonexistent-elmon-dir/x.log", 1);
    errno = 4321;
    struct elmon_loop *l = elmon_register(ELMON_POLLER_EPOLL_WAIT);
    int e = errno;
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(e, 4321);
    ck_assert_ptr_nonnull(strstr(slurp(err), "cannot be opened"));
    unlink(err);
}
END_TEST

START_TEST(full_table_warns_once)
{
    const char *err = stderr_to_file();
    /* Every slot taken (CLAIMING: neither the watchdog nor foreach looks at
     * those). */
    for (int i = 0; i < ELMON_MAX_LOOPS; i++)
        __atomic_store_n(&elmon_loops[i].state, ELMON_SLOT_CLAIMING, __ATOMIC_RELEASE);
    ck_assert_ptr_null(elmon_register(ELMON_POLLER_EPOLL_WAIT));
    ck_assert_int_eq(elmon_tls_untracked, 1);
    ck_assert_ptr_null(elmon_tls_loop);
    struct lt t = {0};
    lt_start(&t);
    ck_assert_ptr_null(t.l);
    lt_stop(&t);
    const char *s = slurp(err);
    ck_assert_msg(count_lines(s, "more than 512 loop threads") == 1, "warnings: '%s'", s);
    /* A slot freed is claimed again. */
    __atomic_store_n(&elmon_loops[37].state, ELMON_SLOT_FREE, __ATOMIC_RELEASE);
    struct lt u = {0};
    lt_start(&u);
    ck_assert_ptr_eq(u.l, &elmon_loops[37]);
    lt_stop(&u);
    unlink(err);
}
END_TEST

/* --- snapshot -------------------------------------------------------- */

START_TEST(fresh_slot_snapshot)
{
    pthread_setname_np(pthread_self(), "elmon-t-fresh");
    uint64_t rt0 = realtime_ns();
    struct elmon_loop *l = elmon_register(ELMON_POLLER_PPOLL);
    ck_assert_ptr_nonnull(l);
    struct elmon_loop_snapshot s;
    memset(&s, 0xa5, sizeof s);
    elmon_loop_snapshot(l, &s);
    ck_assert_int_eq(s.pid, getpid());
    ck_assert_int_eq(s.tid, gettid_());
    ck_assert_str_eq(s.thread, "elmon-t-fresh");
    ck_assert_int_eq(s.poller, ELMON_POLLER_PPOLL);
    ck_assert_uint_eq(s.generation, 1);
    ck_assert_int_eq(s.dead, 0);
    ck_assert_msg(s.start_unix_ns + 50000000 >= rt0 && s.start_unix_ns <= realtime_ns() + 50000000,
                  "start %lu, registered at about %lu", s.start_unix_ns, rt0);
    ck_assert_uint_eq(s.n_loops, 0);
    ck_assert_uint_eq(s.n_turns, 0);
    ck_assert_uint_eq(s.busy_ns, 0);
    ck_assert_uint_eq(s.idle_ns, 0);
    ck_assert_uint_eq(s.n_events, 0);
    ck_assert_uint_eq(s.n_warning, 0);
    ck_assert_uint_eq(s.n_critical, 0);
    ck_assert_uint_eq(s.n_spans_dropped, 0);
    ck_assert_uint_eq(s.n_fds, 0);
    ck_assert_uint_eq(s.ongoing_busy_ns, 0);
    ck_assert_uint_eq(s.recent_max_lag_ns, 0);
    ck_assert_uint_eq(s.lag.n, 0);
}
END_TEST

START_TEST(snapshot_follows_turns)
{
    enum { EPFD = 900 };
    struct elmon_loop *l = elmon_register(ELMON_POLLER_EPOLL_WAIT);
    ck_assert_ptr_nonnull(l);
    /* Three descriptors in the loop's epoll set (fdtable.c). */
    elmon_fd_epoll_created(EPFD);
    for (int fd = 901; fd <= 903; fd++)
        elmon_fd_epoll_ctl(EPFD, EPOLL_CTL_ADD, fd);
    /* Two turns of about 20 ms of work each, 3 and 4 events. */
    struct elmon_loop *t = elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, EPFD, 0, 0, -1, 1000, 2000);
    ck_assert_ptr_eq(t, l);
    sleep_ms(5);
    elmon_turn_end(t, 3);
    sleep_ms(20);
    struct elmon_loop_snapshot s;
    elmon_loop_snapshot(l, &s);
    ck_assert_msg(s.ongoing_busy_ns >= 15000000 && s.ongoing_busy_ns < 5000000000ull,
                  "ongoing busy %lu ns in a turn of 20 ms", s.ongoing_busy_ns);
    ck_assert_uint_ge(s.recent_max_lag_ns, s.ongoing_busy_ns);
    ck_assert_uint_eq(s.n_turns, 0);
    ck_assert_uint_eq(elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, EPFD, 0, 0, -1, 1000, 2000) == t, 1);
    elmon_turn_end(t, 4);
    sleep_ms(20);
    elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, EPFD, 0, 0, -1, 1000, 2000);
    elmon_loop_snapshot(l, &s);
    ck_assert_uint_eq(s.n_loops, 1);
    ck_assert_uint_eq(s.n_turns, 2);
    ck_assert_uint_eq(s.n_events, 7);
    ck_assert_uint_eq(s.lag.n, 2);
    ck_assert_msg(s.busy_ns >= 30000000 && s.busy_ns < 10000000000ull, "busy %lu ns for two turns of 20 ms",
                  s.busy_ns);
    ck_assert_msg(s.idle_ns >= 4000000, "idle %lu ns after a wait of 5 ms", s.idle_ns);
    ck_assert_uint_eq(s.ongoing_busy_ns, 0);   /* inside a wait now */
    ck_assert_uint_eq(s.n_fds, 3);
    ck_assert_int_eq(s.poller, ELMON_POLLER_EPOLL_WAIT);
    ck_assert_uint_eq(s.n_warning + s.n_critical, 0);   /* below ELMON_BLOCK_MS */
}
END_TEST

START_TEST(dead_thread_slot)
{
    /* The watchdog frees a dead thread's slot within a tick; stop it first
     * so the slot stays DEAD to be looked at. */
    struct elmon_loop *me = elmon_register(ELMON_POLLER_EPOLL_WAIT);
    ck_assert_ptr_nonnull(me);
    elmon_watchdog_shutdown(2000, 2000, 0, 0);
    struct lt t = {.name = "elmon-t-dead", .poller = ELMON_POLLER_POLL, .turns = 0};
    lt_start(&t);
    ck_assert_ptr_nonnull(t.l);
    /* Renamed after registering: a live snapshot has the current name. */
    pthread_setname_np(t.thread, "elmon-t-renamed");
    struct elmon_loop_snapshot s;
    elmon_loop_snapshot(t.l, &s);
    ck_assert_str_eq(s.thread, "elmon-t-renamed");
    ck_assert_int_eq(s.dead, 0);
    lt_stop(&t);
    ck_assert_int_eq(__atomic_load_n(&t.l->state, __ATOMIC_ACQUIRE), ELMON_SLOT_DEAD);
    ck_assert_int_eq(slots_visited(), 2);   /* foreach visits DEAD slots too */
    elmon_loop_snapshot(t.l, &s);
    ck_assert_int_eq(s.dead, 1);
    ck_assert_int_eq(s.tid, t.tid);
    /* Gone from /proc: the name it had when it registered. */
    ck_assert_str_eq(s.thread, "elmon-t-dead");
    ck_assert_uint_ne(t.l->exit_ticks, 0);
    /* Its tid taken by a live thread (here: as if the main thread had
     * it): the dead slot still does not borrow that thread's name. */
    pthread_setname_np(pthread_self(), "elmon-t-main");
    t.l->tid = gettid_();
    elmon_loop_snapshot(t.l, &s);
    ck_assert_str_eq(s.thread, "elmon-t-dead");
}
END_TEST

START_TEST(harvested_slot_is_reused_fresh)
{
    struct lt a = {.name = "elmon-t-a", .poller = ELMON_POLLER_EPOLL_WAIT, .turns = 5};
    lt_start(&a);
    struct elmon_loop *l = a.l;
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(ELMON_LOAD(&l->n_turns), 4);
    ck_assert_uint_eq(l->generation, 1);
    lt_stop(&a);
    /* The watchdog writes the dead thread's summary and frees the slot. */
    double t0 = mono_ms();
    while (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) != ELMON_SLOT_FREE) {
        ck_assert_msg(mono_ms() - t0 < 10000, "the watchdog did not free a dead thread's slot in 10 s");
        usleep(2000);
    }
    ck_assert_int_eq(slots_visited(), 0);
    struct lt b = {.name = "elmon-t-b", .poller = ELMON_POLLER_POLL};
    lt_start(&b);
    ck_assert_ptr_eq(b.l, l);
    ck_assert_uint_eq(l->generation, 2);
    struct elmon_loop_snapshot s;
    elmon_loop_snapshot(l, &s);
    ck_assert_int_eq(s.tid, b.tid);
    ck_assert_str_eq(s.thread, "elmon-t-b");
    ck_assert_int_eq(s.poller, ELMON_POLLER_POLL);
    ck_assert_uint_eq(s.generation, 2);
    ck_assert_uint_eq(s.n_turns, 0);
    ck_assert_uint_eq(s.n_events, 0);
    ck_assert_uint_eq(s.n_loops, 0);
    ck_assert_uint_eq(s.lag.n, 0);
    lt_stop(&b);
}
END_TEST

/* The snapshot's ongoing_busy_ns was elmon_ticks() - busy_since with no
 * guard, and RDTSC
 * (not ordered with loads) can execute before the load of a busy_since the
 * loop thread has just stored completes: now < since, and the difference
 * wraps to ~7.1e18 ns (222 years), which reaches the live stats file and
 * the exporter's lag gauges.  Measured: 8% of snapshots taken beside a loop
 * thread turning nonstop on another CPU; none with ELMON_CLOCK=monotonic
 * (the vDSO orders its RDTSC) or with an LFENCE before the RDTSC.  A turn
 * whose start reads later than now is one just begun: 0 so far. */
static int race_stop;
static struct elmon_loop *race_loop;

static void *race_turns(void *arg)
{
    (void)arg;
    struct elmon_loop *l = elmon_register(ELMON_POLLER_EPOLL_WAIT);
    __atomic_store_n(&race_loop, l, __ATOMIC_RELEASE);
    while (l && !__atomic_load_n(&race_stop, __ATOMIC_ACQUIRE)) {
        struct elmon_loop *t = elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, 800, 0, 0, -1, 1000, 2000);
        if (t)
            elmon_turn_end(t, 0);
    }
    return NULL;
}

START_TEST(snapshot_ongoing_busy_never_wraps)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, race_turns, NULL), 0);
    while (!__atomic_load_n(&race_loop, __ATOMIC_ACQUIRE))
        usleep(1000);
    static struct elmon_loop_snapshot s;
    long n = 0, bad = 0;
    uint64_t worst = 0;
    double t0 = mono_ms();
    while (mono_ms() - t0 < 2000) {
        elmon_loop_snapshot(race_loop, &s);
        n++;
        if (s.ongoing_busy_ns > 60000000000ull) {
            bad++;
            worst = s.ongoing_busy_ns;
        }
    }
    __atomic_store_n(&race_stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert_msg(bad == 0, "%ld of %ld snapshots of a turning loop had an ongoing turn of over a minute (%lu ns)",
                  bad, n, worst);
}
END_TEST

/* --- foreach, index --------------------------------------------------- */

struct visit {
    struct elmon_loop *seen[ELMON_MAX_LOOPS];
    int n, stop_at, rc;
};

static int visit_one(struct elmon_loop *l, void *arg)
{
    struct visit *v = arg;
    v->seen[v->n++] = l;
    return v->n == v->stop_at ? v->rc : 0;
}

START_TEST(foreach_visits_active_slots)
{
    struct visit v = {.n = 0};
    ck_assert_int_eq(elmon_loops_foreach(visit_one, &v), 0);
    ck_assert_int_eq(v.n, 0);
    enum { N = 3 };
    struct lt t[N];
    memset(t, 0, sizeof t);
    struct elmon_loop *me = elmon_register(ELMON_POLLER_SELECT);
    for (int i = 0; i < N; i++)
        lt_start(&t[i]);
    /* A slot being claimed is nobody's yet.  Stored atomically: the
     * watchdog started by the first registration reads every slot's state
     * (TSan reported the plain store against its scan). */
    __atomic_store_n(&elmon_loops[ELMON_MAX_LOOPS - 1].state, ELMON_SLOT_CLAIMING, __ATOMIC_RELEASE);
    struct elmon_loop *want[N + 1] = {me, t[0].l, t[1].l, t[2].l};
    memset(&v, 0, sizeof v);
    ck_assert_int_eq(elmon_loops_foreach(visit_one, &v), 0);
    ck_assert_int_eq(v.n, N + 1);
    for (int k = 0; k <= N; k++) {
        int hits = 0;
        for (int j = 0; j < v.n; j++)
            hits += v.seen[j] == want[k];
        ck_assert_msg(hits == 1, "slot %d visited %d times", elmon_loop_index(want[k]), hits);
    }
    /* In table order, and a non-zero return stops the walk. */
    for (int j = 1; j < v.n; j++)
        ck_assert_int_lt(elmon_loop_index(v.seen[j - 1]), elmon_loop_index(v.seen[j]));
    memset(&v, 0, sizeof v);
    v.stop_at = 2;
    v.rc = 7;
    ck_assert_int_eq(elmon_loops_foreach(visit_one, &v), 7);
    ck_assert_int_eq(v.n, 2);
    for (int i = 0; i < N; i++)
        lt_stop(&t[i]);
}
END_TEST

START_TEST(loop_index_is_the_slot)
{
    for (int i = 0; i < ELMON_MAX_LOOPS; i++)
        ck_assert_int_eq(elmon_loop_index(&elmon_loops[i]), i);
}
END_TEST

START_TEST(take_window_max)
{
    /* A slot outside the table: the watchdog does not touch it. */
    static struct elmon_loop l;
    l.window_max_lag_ns = 5;
    l.wd_export_max_ns = 9;
    ck_assert_uint_eq(elmon_loop_take_window_max(&l), 9);
    ck_assert_uint_eq(l.wd_export_max_ns, 0);
    ck_assert_uint_eq(elmon_loop_take_window_max(&l), 5);
    l.window_max_lag_ns = 12;
    l.wd_export_max_ns = 3;
    ck_assert_uint_eq(elmon_loop_take_window_max(&l), 12);
}
END_TEST

/* --- names ------------------------------------------------------------ */

START_TEST(status_thresholds)
{
    static const struct {
        uint64_t ns;
        const char *name;
    } t[] = {
        {0, "healthy"}, {9999999, "healthy"},
        {10000000, "ok"}, {49999999, "ok"},
        {50000000, "degraded"}, {499999999, "degraded"},
        {500000000, "critical"}, {UINT64_MAX, "critical"},
    };
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(strcmp(elmon_status_name(t[i].ns), t[i].name) == 0, "%lu ns: %s, want %s", t[i].ns,
                      elmon_status_name(t[i].ns), t[i].name);
}
END_TEST

START_TEST(poller_and_end_names)
{
    static const char *const p[] = {"none", "epoll_wait", "epoll_pwait", "epoll_pwait2",
                                    "poll", "ppoll", "select", "pselect"};
    for (int i = 0; i < ELMON_POLLER_COUNT; i++)
        ck_assert_str_eq(elmon_poller_name(i), p[i]);
    ck_assert_str_eq(elmon_poller_name(-1), "none");
    ck_assert_str_eq(elmon_poller_name(ELMON_POLLER_COUNT), "none");
    ck_assert_str_eq(elmon_end_name(ELMON_END_WAIT), "wait");
    ck_assert_str_eq(elmon_end_name(ELMON_END_LOOP_CLOSED), "loop_closed");
    ck_assert_str_eq(elmon_end_name(ELMON_END_THREAD_EXIT), "thread_exit");
    ck_assert_str_eq(elmon_end_name(ELMON_END_EXIT), "exit");
    ck_assert_str_eq(elmon_end_name(4), "wait");
    ck_assert_str_eq(elmon_end_name(-1), "wait");
}
END_TEST

START_TEST(read_comm_of_current_thread)
{
    char out[64];
    static const char *const names[] = {"elmon-t-comm", "abcdefghijklmno", "x"};
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(pthread_setname_np(pthread_self(), names[i]), 0);
        memset(out, 'z', sizeof out);
        ck_assert_int_eq(elmon_read_comm(gettid_(), out, sizeof out), 0);
        ck_assert_str_eq(out, names[i]);
    }
    /* Another thread's name, by its tid. */
    struct lt t = {.name = "elmon-t-other"};
    lt_start(&t);
    ck_assert_int_eq(elmon_read_comm(t.tid, out, sizeof out), 0);
    ck_assert_str_eq(out, "elmon-t-other");
    lt_stop(&t);
    /* A small buffer is filled and terminated, never overrun. */
    char small[8];
    memset(small, 'z', sizeof small);
    ck_assert_int_eq(elmon_read_comm(gettid_(), small, 4), 0);
    ck_assert_uint_le(strlen(small), 3);
    ck_assert_int_eq(small[4], 'z');
    /* No such thread: -1 and an empty name. */
    strcpy(out, "junk");
    ck_assert_int_eq(elmon_read_comm(-5, out, sizeof out), -1);
    ck_assert_str_eq(out, "");
}
END_TEST

/* --- fork ------------------------------------------------------------- */

START_TEST(fork_child_starts_afresh)
{
    struct lt t = {.poller = ELMON_POLLER_POLL};
    lt_start(&t);
    struct elmon_loop *me = elmon_register(ELMON_POLLER_EPOLL_WAIT);
    ck_assert_ptr_nonnull(me);
    int idx = elmon_loop_index(me);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child's checks, as its exit status. */
        elmon_registry_atfork_child();
        if (slots_visited() != 0)
            _exit(10);
        if (elmon_tls_loop != NULL || elmon_tls_untracked)
            _exit(11);
        struct elmon_loop *l = elmon_register(ELMON_POLLER_POLL);
        if (!l)
            _exit(12);
        if (l->tid != gettid_() || l->generation < 2 || elmon_loop_index(l) > idx)
            _exit(13);
        if (slots_visited() != 1)
            _exit(14);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d (see the checks' codes)",
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    /* The parent's table is its own. */
    ck_assert_int_eq(slots_visited(), 2);
    lt_stop(&t);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, NULL);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    /* Nothing the watchdog would write outside the test: no live stats
     * file, no exporter; and no turn here is long enough to be a span. */
    setenv("ELMON_STATS", "0", 1);
    setenv("ELMON_BLOCK_MS", "10000", 1);
    setenv("ELMON_CRITICAL_MS", "20000", 1);
    unsetenv("ELMON_LOG");
    unsetenv("ELMON_EVENTS");
    unset_prefix("OTEL_");

    Suite *s = suite_create("registry");
    TCase *tc = tcase(s, "claim");
    tcase_add_test(tc, register_claims_a_slot_for_the_thread);
    tcase_add_test(tc, threads_get_distinct_slots);
    tcase_add_test(tc, register_leaves_errno_alone);
    tcase_add_test(tc, full_table_warns_once);
    tc = tcase(s, "snapshot");
    tcase_add_test(tc, fresh_slot_snapshot);
    tcase_add_test(tc, snapshot_follows_turns);
    tcase_add_test(tc, dead_thread_slot);
    tcase_add_test(tc, harvested_slot_is_reused_fresh);
    tc = tcase(s, "table");
    tcase_add_test(tc, foreach_visits_active_slots);
    tcase_add_test(tc, loop_index_is_the_slot);
    tcase_add_test(tc, take_window_max);
    tc = tcase(s, "names");
    tcase_add_test(tc, status_thresholds);
    tcase_add_test(tc, poller_and_end_names);
    tcase_add_test(tc, read_comm_of_current_thread);
    tc = tcase(s, "fork");
    tcase_add_test(tc, fork_child_starts_afresh);
    tc = tcase(s, "race");
    tcase_add_test(tc, snapshot_ongoing_busy_never_wraps);
    return run_suite(s);
}
