/*
 * The watchdog (preload/process/watchdog.c), driven in-process through
 * elmon_core, with no LD_PRELOAD: a loop slot registered by the test thread
 * (or a helper thread) after elmon_registry_init(elmon_watchdog_ensure),
 * turns begun and ended with turn.h's functions around a real epoll_wait,
 * as the wrappers in hot/wrap.c do, and the events file read back.
 *
 * Properties: a busy period past ELMON_BLOCK_MS that never ends is noticed
 * while it runs (block_begin); its end at the next wait gives exactly one
 * block; a short turn writes nothing; closing the loop's epoll descriptor
 * closes an open span (loop_closed); the exit's shutdown closes a span
 * still open (exit), writes the summaries, and returns within its bounds
 * even when the writer lock is held by a stuck writer (and then writes
 * nothing); a dead thread's slot gets its summary (exited) and is freed
 * for reuse, and a span it left open ends with thread_exit.  And the
 * capture (record/capture.c), with the test thread as the watchdog: a
 * signal that lands after the loop's descriptor was closed, in the same
 * busy period, takes no stack.
 *
 * Each case runs in a child of its own (CK_FORK, forced in main): the
 * watchdog and the settings are per process.  Settings are read from the
 * environment at the first registration (hot/registry.c: first_loop_init;
 * no elmon_env_snapshot here), so each case sets its own before that.
 * ELMON_STACKS=off (no capture signal; the capture case turns it on),
 * ELMON_STATS=0, OTEL_* unset.
 * Timing is tolerant: bounds are generous upper limits (a loaded 2-core
 * machine), never exact figures.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "capture.h"
#include "fdtable.h"
#include "loopid.h"
#include "loop.h"
#include "pipeline.h"
#include "registry.h"
#include "turn.h"
#include "watchdog.h"
#include "support.h"

extern char **environ;

/* Made by main (the parent), removed by main after the run: a child's
 * exit work may still write into it after its case returned. */
static char *tmpdir;
static char events_path[1024];

/* Generous: a record the watchdog owes shows up well within this. */
#define NOTICE_MS 1000.0
/* How long to keep looking for a record before giving up on it. */
#define LOOK_MS 3000.0

static int gettid_(void)
{
    return (int)syscall(SYS_gettid);
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The case's settings, then the table's init as the constructor does it.
 * Nothing is read until the first registration. */
static void start(const char *name, unsigned block_ms)
{
    char v[1200];
    snprintf(events_path, sizeof events_path, "%s/%s.jsonl", tmpdir, name);
    setenv("ELMON_EVENTS", events_path, 1);
    snprintf(v, sizeof v, "%s/%s.log", tmpdir, name);
    setenv("ELMON_LOG", v, 1);
    snprintf(v, sizeof v, "%u", block_ms);
    setenv("ELMON_BLOCK_MS", v, 1);
    setenv("ELMON_CRITICAL_MS", "60000", 1);
    elmon_registry_init(elmon_watchdog_ensure);
    elmon_active = 1;
}

/* --- a loop, as wrap.c's epoll_wait drives it ------------------------- */

/* Distinct fake frame/return addresses: every wait here is the loop's
 * outermost one (loopid.h). */
#define FAKE_SP 1000
#define FAKE_SITE 2000

static int new_epoll(void)
{
    int fd = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    elmon_fd_epoll_created(fd);   /* wrap.c's epoll_create1 */
    return fd;
}

/* One wait of the loop: turn_begin, the real epoll_wait, turn_end.  The
 * previous busy period (if any) ends here; the next begins on return. */
static struct elmon_loop *loop_wait(int epfd, int timeout_ms)
{
    struct epoll_event ev;
    struct elmon_loop *l =
        elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, epfd, 0, 0, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000,
                         FAKE_SP, FAKE_SITE);
    int ret = epoll_wait(epfd, &ev, 1, timeout_ms);
    if (l)
        elmon_turn_end(l, ret);
    return l;
}

/* wrap.c's close(): the bookkeeping, then the real close. */
static void loop_close(int fd)
{
    if (elmon_fd_known(fd) && ELMON_LOAD(&elmon_active) && (!elmon_fd_is_epoll(fd) || elmon_same_process()))
        elmon_fd_closing(fd);
    close(fd);
}

/* --- the events file --------------------------------------------------- */

static char **records(int *n)
{
    int k = 0;
    char **lines = read_lines(events_path, &k);
    if (n)
        *n = lines ? k : 0;
    return lines;
}

static int is_record(const char *line, const char *type, int tid, long turn)
{
    if (!json_is(line, "type", type))
        return 0;
    if (tid && json_num(line, "tid") != tid)
        return 0;
    if (turn >= 0 && json_num(line, "turn") != (double)turn)
        return 0;
    return 1;
}

static int count_records(const char *type, int tid, long turn)
{
    int n, c = 0;
    char **lines = records(&n);
    for (int i = 0; i < n; i++)
        c += is_record(lines[i], type, tid, turn);
    free_lines(lines);
    return c;
}

/* The first record of type (tid, turn: 0 and -1 for any) within
 * timeout_ms; a malloc'd copy, or NULL.  *after_ms: when it was seen,
 * from t0. */
static char *wait_record(const char *type, int tid, long turn, double t0, double timeout_ms, double *after_ms)
{
    for (;;) {
        int n;
        char **lines = records(&n);
        char *hit = NULL;
        for (int i = 0; i < n && !hit; i++)
            if (is_record(lines[i], type, tid, turn))
                hit = strdup(lines[i]);
        free_lines(lines);
        double now = mono_ms();
        if (hit || now - t0 > timeout_ms) {
            if (after_ms)
                *after_ms = now - t0;
            return hit;
        }
        sleep_ms(2);
    }
}

/* The events file so far, for a failure message: each record cut to its
 * first 200 characters, 2000 in all (Check refuses longer messages). */
static const char *all_records(void)
{
    static char out[2048];
    int n;
    char **lines = records(&n);
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < n && k < sizeof out - 1; i++)
        k += (size_t)snprintf(out + k, sizeof out - k, "%.200s%s\n", lines[i], strlen(lines[i]) > 200 ? "..." : "");
    free_lines(lines);
    if (k >= sizeof out - 1)
        snprintf(out + sizeof out - 5, 5, "...");
    return n ? out : "(none)";
}

/* The loop of the calling thread in its first busy period past the
 * threshold, with its block_begin seen (1 and 2, 4, 5). */
struct busy {
    int epfd, tid;
    long turn;
    struct elmon_loop *l;
    double t0;             /* the busy period's start (just after turn_end) */
    double seen_ms;        /* block_begin seen, from t0 */
    double begin_ms;       /* its duration_ms */
    char *begin;
};

static void busy_begun(struct busy *b)
{
    memset(b, 0, sizeof *b);
    b->epfd = new_epoll();
    b->tid = gettid_();
    b->l = loop_wait(b->epfd, 0);   /* the first wait: registers, starts the watchdog */
    b->t0 = mono_ms();
    ck_assert_ptr_nonnull(b->l);
    ck_assert_ptr_eq(b->l, elmon_tls_loop);
    b->turn = (long)ELMON_LOAD(&b->l->turn);
    /* The loop thread now works and never waits: only the watchdog can
     * notice. */
    b->begin = wait_record("block_begin", b->tid, b->turn, b->t0, LOOK_MS, &b->seen_ms);
    ck_assert_msg(b->begin, "no block_begin within %.0f ms of a busy period past ELMON_BLOCK_MS; records: %s",
                  LOOK_MS, all_records());
    b->begin_ms = json_num(b->begin, "duration_ms");
}

/* --- 1 ---------------------------------------------------------------- */

START_TEST(busy_period_is_noticed_while_it_runs)
{
    start("begin", 20);
    struct busy b;
    busy_begun(&b);
    ck_assert_msg(b.seen_ms < NOTICE_MS, "block_begin seen %.0f ms into the busy period (threshold 20 ms)", b.seen_ms);
    ck_assert_msg(b.begin_ms >= 20.0, "block_begin duration_ms %.3f, below the threshold of 20", b.begin_ms);
    ck_assert_msg(b.begin_ms <= b.seen_ms + 20.0, "block_begin duration_ms %.3f, but seen at %.0f ms", b.begin_ms,
                  b.seen_ms);
    ck_assert_str_eq(json_get(b.begin, "poller"), "epoll_wait");
    /* Still running: no block yet, and one block_begin only. */
    sleep_ms(100);
    ck_assert_int_eq(count_records("block", 0, -1), 0);
    ck_assert_int_eq(count_records("block_begin", 0, -1), 1);
    free(b.begin);
}
END_TEST

/* --- 2 ---------------------------------------------------------------- */

START_TEST(turn_end_gives_one_block)
{
    start("end", 20);
    struct busy b;
    busy_begun(&b);
    sleep_ms(30);
    loop_wait(b.epfd, 0);           /* the next wait ends the turn */
    double t1 = mono_ms();
    double after;
    char *blk = wait_record("block", b.tid, b.turn, t1, LOOK_MS, &after);
    ck_assert_msg(blk, "no block for turn %ld within %.0f ms of its end; records: %s", b.turn, LOOK_MS,
                  all_records());
    ck_assert_msg(after < NOTICE_MS, "the block came %.0f ms after the turn ended", after);
    ck_assert_str_eq(json_get(blk, "end"), "wait");
    double d = json_num(blk, "duration_ms");
    ck_assert_msg(d >= b.begin_ms, "block duration_ms %.3f, shorter than its block_begin's %.3f", d, b.begin_ms);
    ck_assert_msg(d <= t1 - b.t0 + 20.0, "block duration_ms %.3f, but the turn lasted %.1f ms", d, t1 - b.t0);
    /* Short turns and ticks after it: still exactly one block for it. */
    for (int i = 0; i < 5; i++)
        loop_wait(b.epfd, 10);
    elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, b.epfd, 0, 0, -1, FAKE_SP, FAKE_SITE);   /* inside a wait */
    sleep_ms(150);
    /* (Other turns may have spans of their own on a loaded machine: only
     * this one's records are counted.) */
    ck_assert_msg(count_records("block", b.tid, b.turn) == 1 && count_records("block_begin", b.tid, b.turn) == 1,
                  "records of turn %ld: %s", b.turn, all_records());
    free(blk);
    free(b.begin);
}
END_TEST

/* --- 3 ---------------------------------------------------------------- */

START_TEST(short_turns_write_nothing)
{
    /* 5 ms turns under a 100 ms threshold.  A loaded machine can stretch
     * one past it (a turn is wall time): each turn's length is measured
     * here, and a record is a failure only for a turn measured well short
     * of the threshold. */
    enum { N = 40, BLOCK_MS = 100 };
    start("short", BLOCK_MS);
    int epfd = new_epoll();
    struct elmon_loop *l = loop_wait(epfd, 0);
    ck_assert_ptr_nonnull(l);
    static double busy_ms[N + 2];    /* by turn id */
    int n_short = 0;
    for (int i = 0; i < N; i++) {
        long turn = (long)ELMON_LOAD(&l->turn);
        ck_assert_int_eq(turn, i + 1);
        double t = mono_ms();
        sleep_ms(5);                 /* the turn's work */
        busy_ms[turn] = mono_ms() - t;
        n_short += busy_ms[turn] < BLOCK_MS / 2;
        loop_wait(epfd, 1);
    }
    elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, epfd, 0, 0, -1, FAKE_SP, FAKE_SITE);   /* inside a wait */
    sleep_ms(300);
    ck_assert_uint_eq(ELMON_LOAD(&l->n_turns), N + 1);   /* the last wait's entry ended turn N + 1 */
    ck_assert_msg(n_short >= N / 2, "only %d of %d turns of 5 ms took under %d ms: too loaded to tell", n_short, N,
                  BLOCK_MS / 2);
    int n;
    char **lines = records(&n);
    for (int i = 0; i < n; i++) {
        double turn = json_num(lines[i], "turn");
        if (isnan(turn))
            continue;                /* no turn: not a span record */
        double b = turn >= 1 && turn <= N ? busy_ms[(int)turn] : 0;
        ck_assert_msg(b >= BLOCK_MS / 2, "a turn of %.1f ms (threshold %d) wrote: %s", b, BLOCK_MS, all_records());
    }
    free_lines(lines);
}
END_TEST

/* --- 4 ---------------------------------------------------------------- */

START_TEST(closing_the_loop_closes_its_span)
{
    start("closed", 20);
    struct busy b;
    busy_begun(&b);
    sleep_ms(20);
    double tc = mono_ms();
    loop_close(b.epfd);              /* on the loop thread, in its busy period */
    double after;
    /* Closed by the watchdog while the thread still works. */
    char *blk = wait_record("block", b.tid, b.turn, tc, LOOK_MS, &after);
    ck_assert_msg(blk, "no block for turn %ld within %.0f ms of its loop's close; records: %s", b.turn, LOOK_MS,
                  all_records());
    ck_assert_msg(after < NOTICE_MS, "the block came %.0f ms after the close", after);
    ck_assert_str_eq(json_get(blk, "end"), "loop_closed");
    double d = json_num(blk, "duration_ms");
    ck_assert_msg(d >= b.begin_ms, "block duration_ms %.3f, shorter than its block_begin's %.3f", d, b.begin_ms);
    ck_assert_msg(d <= tc - b.t0 + 50.0, "block duration_ms %.3f, but the loop was closed %.1f ms in", d, tc - b.t0);
    /* The thread's next wait, on a new loop, pushes the same end: it is
     * not written twice. */
    sleep_ms(50);
    int epfd2 = new_epoll();
    loop_wait(epfd2, 20);
    loop_wait(epfd2, 20);
    elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, epfd2, 0, 0, -1, FAKE_SP, FAKE_SITE);
    sleep_ms(150);
    ck_assert_msg(count_records("block", b.tid, b.turn) == 1 && count_records("block_begin", b.tid, b.turn) == 1,
                  "records of turn %ld: %s", b.turn, all_records());
    ck_assert_uint_eq(ELMON_LOAD(&b.l->n_loops), 2);
    free(blk);
    free(b.begin);
}
END_TEST

/* --- 5 ---------------------------------------------------------------- */

#define STOP_MS 200
#define LOCK_MS 200
#define SHUTDOWN_SLACK_MS 600.0
#define RUNNABLE_MS 3000

START_TEST(shutdown_closes_open_span_and_writes_summary)
{
    start("exit", 20);
    struct busy b;
    busy_begun(&b);
    sleep_ms(20);
    /* As exit.c does: wrappers plain from here on; the atexit exit work at
     * this child's exit then does nothing more. */
    __atomic_store_n(&elmon_active, 0, __ATOMIC_RELEASE);
    double t = mono_ms();
    elmon_watchdog_shutdown(STOP_MS, LOCK_MS, RUNNABLE_MS, 0);
    double took = mono_ms() - t;
    ck_assert_msg(took < STOP_MS + LOCK_MS + SHUTDOWN_SLACK_MS, "shutdown took %.0f ms", took);
    /* Written by the time it returns. */
    ck_assert_msg(count_records("block", b.tid, b.turn) == 1, "blocks of turn %ld: %s", b.turn, all_records());
    char *blk = wait_record("block", b.tid, b.turn, mono_ms(), 0, NULL);
    ck_assert_str_eq(json_get(blk, "end"), "exit");
    double d = json_num(blk, "duration_ms");
    ck_assert_msg(d >= b.begin_ms, "block duration_ms %.3f, shorter than its block_begin's %.3f", d, b.begin_ms);
    ck_assert_msg(d <= mono_ms() - b.t0 + 20.0, "block duration_ms %.3f, longer than the busy period", d);
    char *sum = wait_record("summary", b.tid, -1, mono_ms(), 0, NULL);
    ck_assert_msg(sum, "no summary for the loop thread; records: %s", all_records());
    ck_assert_str_eq(json_get(sum, "exited"), "false");
    ck_assert_msg(json_num(sum, "blocks_warning") == 1, "summary: %s", sum);
    ck_assert_int_eq(count_records("summary", 0, -1), 1);
    free(sum);
    free(blk);
    free(b.begin);
}
END_TEST

/* A writer stuck inside the lock (a hung events file): here a thread that
 * holds the writer lock, so the watchdog blocks at its block_begin and
 * never stops. */
static int held, let_go;

static void *hold_writer_lock(void *arg)
{
    (void)arg;
    if (elmon_pipeline_lock_timed(5000, 0) != 0)
        return NULL;
    __atomic_store_n(&held, 1, __ATOMIC_RELEASE);
    double t0 = mono_ms();
    while (!__atomic_load_n(&let_go, __ATOMIC_ACQUIRE) && mono_ms() - t0 < 3000)
        usleep(1000);
    elmon_pipeline_unlock();
    return NULL;
}

START_TEST(shutdown_is_bounded_when_the_writer_is_stuck)
{
    start("stuck", 20);
    pthread_t h;
    ck_assert_int_eq(pthread_create(&h, NULL, hold_writer_lock, NULL), 0);
    double w0 = mono_ms();
    while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE)) {
        ck_assert_msg(mono_ms() - w0 < 5000, "the writer lock was not taken");
        usleep(1000);
    }
    int epfd = new_epoll();
    struct elmon_loop *l = loop_wait(epfd, 0);
    ck_assert_ptr_nonnull(l);
    /* Well past the threshold: the watchdog is inside the write by now,
     * waiting for the lock, and nothing came out. */
    sleep_ms(300);
    ck_assert_msg(count_records("block_begin", 0, -1) == 0, "written under a held lock: %s", all_records());
    __atomic_store_n(&elmon_active, 0, __ATOMIC_RELEASE);
    double t = mono_ms();
    elmon_watchdog_shutdown(STOP_MS, LOCK_MS, RUNNABLE_MS, 0);
    double took = mono_ms() - t;
    int n_after = count_records("block", 0, -1) + count_records("block_begin", 0, -1) +
                  count_records("summary", 0, -1);
    __atomic_store_n(&let_go, 1, __ATOMIC_RELEASE);
    pthread_join(h, NULL);
    ck_assert_msg(took < STOP_MS + LOCK_MS + SHUTDOWN_SLACK_MS, "shutdown beside a stuck writer took %.0f ms (bounds %d + %d)",
                  took, STOP_MS, LOCK_MS);
    ck_assert_msg(n_after == 0, "shutdown wrote without the writer lock: %s", all_records());
}
END_TEST

/* A writer that is slow, not stuck: a thread that holds the writer lock
 * and stays runnable (it spins) well past STOP_MS + LOCK_MS, as a watchdog
 * preempted inside its write on a loaded machine does.  The exit waits for
 * it and writes the open span's block and the summary. */
#define SPIN_MS (STOP_MS + LOCK_MS + 400)
static int spin_held;

static void *spin_in_writer_lock(void *arg)
{
    (void)arg;
    if (elmon_pipeline_lock_timed(5000, 0) != 0)
        return NULL;
    __atomic_store_n(&spin_held, 1, __ATOMIC_RELEASE);
    double t0 = mono_ms();
    while (mono_ms() - t0 < SPIN_MS)
        ;
    elmon_pipeline_unlock();
    return NULL;
}

START_TEST(shutdown_waits_for_a_runnable_writer)
{
    start("slow", 20);
    int epfd = new_epoll();
    struct elmon_loop *l = loop_wait(epfd, 0);
    ck_assert_ptr_nonnull(l);
    int tid = gettid_();
    sleep_ms(60);   /* past the threshold: the span is open */
    pthread_t h;
    ck_assert_int_eq(pthread_create(&h, NULL, spin_in_writer_lock, NULL), 0);
    double w0 = mono_ms();
    while (!__atomic_load_n(&spin_held, __ATOMIC_ACQUIRE)) {
        ck_assert_msg(mono_ms() - w0 < 5000, "the writer lock was not taken");
        usleep(1000);
    }
    __atomic_store_n(&elmon_active, 0, __ATOMIC_RELEASE);
    double t = mono_ms();
    elmon_watchdog_shutdown(STOP_MS, LOCK_MS, RUNNABLE_MS, 0);
    double took = mono_ms() - t;
    pthread_join(h, NULL);
    ck_assert_msg(count_records("summary", tid, -1) == 1,
                  "the exit gave up on a runnable writer after %.0f ms (bounds %d + %d): %s", took, STOP_MS, LOCK_MS,
                  all_records());
    char *blk = wait_record("block", tid, -1, mono_ms(), 0, NULL);
    ck_assert_msg(blk, "no block for the open span: %s", all_records());
    ck_assert_str_eq(json_get(blk, "end"), "exit");
    ck_assert_msg(took < SPIN_MS + SHUTDOWN_SLACK_MS, "shutdown took %.0f ms beside a %d ms writer", took, SPIN_MS);
    free(blk);
}
END_TEST

/* --- 6 ---------------------------------------------------------------- */

struct lt {
    const char *name;
    int busy_ms;                 /* of the last busy period, before exiting */
    int tid;
    struct elmon_loop *l;
    long turn;
    uint32_t generation;
    pthread_t thread;
};

/* A loop thread: three turns, a last busy period of busy_ms, exit. */
static void *lt_main(void *arg)
{
    struct lt *t = arg;
    pthread_setname_np(pthread_self(), t->name);
    t->tid = gettid_();
    int epfd = new_epoll();
    t->l = loop_wait(epfd, 0);
    for (int i = 0; i < 3 && t->l; i++) {
        sleep_ms(1);
        loop_wait(epfd, 1);
    }
    if (t->l) {
        t->turn = (long)ELMON_LOAD(&t->l->turn);
        t->generation = t->l->generation;
    }
    sleep_ms(t->busy_ms);
    return NULL;
}

static void lt_run(struct lt *t)
{
    ck_assert_int_eq(pthread_create(&t->thread, NULL, lt_main, t), 0);
    pthread_join(t->thread, NULL);
    ck_assert_ptr_nonnull(t->l);
}

static void wait_freed(struct elmon_loop *l)
{
    double t0 = mono_ms();
    while (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) != ELMON_SLOT_FREE) {
        ck_assert_msg(mono_ms() - t0 < LOOK_MS, "a dead thread's slot was not freed within %.0f ms (state %d)",
                      LOOK_MS, __atomic_load_n(&l->state, __ATOMIC_ACQUIRE));
        usleep(2000);
    }
}

START_TEST(dead_thread_gets_summary_and_slot_is_reused)
{
    start("dead", 20);
    struct lt a = {.name = "elmon-t-a", .busy_ms = 1};
    lt_run(&a);
    wait_freed(a.l);
    /* The summary is written before the slot is freed. */
    char *sum = wait_record("summary", a.tid, -1, mono_ms(), 0, NULL);
    ck_assert_msg(sum, "no summary for the dead thread %d; records: %s", a.tid, all_records());
    ck_assert_str_eq(json_get(sum, "exited"), "true");
    ck_assert_str_eq(json_get(sum, "thread"), "elmon-t-a");
    ck_assert_msg(json_num(sum, "turns") == 3, "summary: %s", sum);
    ck_assert_int_eq(count_records("summary", 0, -1), 1);
    free(sum);
    /* The freed slot is the next thread's, afresh. */
    struct lt b = {.name = "elmon-t-b", .busy_ms = 1};
    lt_run(&b);
    ck_assert_ptr_eq(b.l, a.l);
    ck_assert_uint_eq(b.generation, a.generation + 1);
    wait_freed(b.l);
    sum = wait_record("summary", b.tid, -1, mono_ms(), 0, NULL);
    ck_assert_msg(sum, "no summary for the second dead thread; records: %s", all_records());
    ck_assert_str_eq(json_get(sum, "thread"), "elmon-t-b");
    ck_assert_msg(json_num(sum, "turns") == 3, "the reused slot's summary: %s", sum);
    free(sum);
}
END_TEST

START_TEST(dead_thread_open_span_ends_thread_exit)
{
    start("thread_exit", 20);
    struct lt a = {.name = "elmon-t-x", .busy_ms = 150};
    double t0 = mono_ms();
    lt_run(&a);
    double lived = mono_ms() - t0;
    wait_freed(a.l);
    ck_assert_msg(count_records("block_begin", a.tid, a.turn) == 1, "records: %s", all_records());
    ck_assert_msg(count_records("block", a.tid, a.turn) == 1, "blocks of turn %ld: %s", a.turn, all_records());
    char *blk = wait_record("block", a.tid, a.turn, mono_ms(), 0, NULL);
    ck_assert_str_eq(json_get(blk, "end"), "thread_exit");
    double d = json_num(blk, "duration_ms");
    /* Up to the thread's exit, not to when the watchdog got to it. */
    ck_assert_msg(d >= 140 && d <= lived + 1.0, "block duration_ms %.3f for a last busy period of 150 ms (thread lived %.0f ms)",
                  d, lived);
    char *sum = wait_record("summary", a.tid, -1, mono_ms(), 0, NULL);
    ck_assert_msg(sum, "no summary; records: %s", all_records());
    ck_assert_str_eq(json_get(sum, "exited"), "true");
    /* Its spans (this one, and any a loaded machine made of its short
     * turns) are counted in its summary. */
    ck_assert_msg(json_num(sum, "blocks_warning") == count_records("block", a.tid, -1), "summary: %s; records: %s",
                  sum, all_records());
    free(sum);
    free(blk);
}
END_TEST

/* --- 7: the capture at a crossing ------------------------------------ */

/* The loop thread's two phases of one busy period: before and after it
 * closes its loop's epoll descriptor (loop.close(), then other work, as an
 * asyncio program's main thread does).  The test thread plays the watchdog
 * and captures in each phase. */
static int closer_phase;          /* 1: in the turn, 2: the loop closed (atomic) */
static int closer_go;             /* 1: close now, 2: stop (atomic) */

__attribute__((noinline)) static void closer_in_the_turn(void)
{
    while (__atomic_load_n(&closer_go, __ATOMIC_ACQUIRE) == 0)
        __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void closer_after_the_loop(void)
{
    while (__atomic_load_n(&closer_go, __ATOMIC_ACQUIRE) == 1)
        __asm__ volatile("" ::: "memory");
}

static void *closer_main(void *arg)
{
    struct elmon_loop **out = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    elmon_fd_epoll_created(epfd);
    *out = loop_wait(epfd, 0);
    __atomic_store_n(&closer_phase, 1, __ATOMIC_RELEASE);
    closer_in_the_turn();
    loop_close(epfd);
    __atomic_store_n(&closer_phase, 2, __ATOMIC_RELEASE);
    closer_after_the_loop();
    return NULL;
}

static void wait_phase(int phase)
{
    double t0 = mono_ms();
    while (__atomic_load_n(&closer_phase, __ATOMIC_ACQUIRE) < phase) {
        ck_assert_msg(mono_ms() - t0 < LOOK_MS, "the loop thread never reached phase %d", phase);
        usleep(1000);
    }
}

/* One capture of the span now open on l, as the watchdog takes it at a
 * crossing; *n_addrs and note: what it kept. */
static void capture_now(struct elmon_loop *l, int *n_addrs, char *note, size_t note_n)
{
    uint64_t turn = ELMON_LOAD(&l->turn);
    elmon_capture_on_cross(l, turn);
    struct elmon_capture *c = elmon_capture_lock_span(l, turn, 1);
    ck_assert_ptr_nonnull(c);
    *n_addrs = c->n_addrs;
    snprintf(note, note_n, "%s (how %s)", c->note, c->how);
    elmon_capture_unlock(c);
}

/* A signal that lands after the loop's descriptor was closed, in the same
 * busy period, takes no stack: what runs then is outside any loop (CI saw
 * Thread.join's Python frames, from after loop.close(), on a span).  The
 * first capture, before the close, shows the same harness does take one. */
START_TEST(capture_after_the_loop_closed_takes_nothing)
{
    setenv("ELMON_STACKS", "native", 1);
    setenv("ELMON_CAPTURE_WAIT_MS", "1000", 1);
    snprintf(events_path, sizeof events_path, "%s/capture.jsonl", tmpdir);
    setenv("ELMON_EVENTS", events_path, 1);
    setenv("ELMON_BLOCK_MS", "20", 1);
    /* No watchdog: the test thread is the only one capturing. */
    elmon_registry_init(NULL);
    elmon_active = 1;
    struct elmon_loop *l = NULL;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, closer_main, &l), 0);
    wait_phase(1);
    ck_assert_ptr_nonnull(l);
    sleep_ms(30);                    /* past the threshold */
    int n;
    char note[256];
    capture_now(l, &n, note, sizeof note);
    ck_assert_msg(n > 0, "no stack of a loop thread inside its turn: %s", note);

    __atomic_store_n(&closer_go, 1, __ATOMIC_RELEASE);
    wait_phase(2);
    ck_assert_uint_ne(ELMON_LOAD(&l->busy_since), 0);   /* the busy period goes on */
    ck_assert_int_eq(elmon_word_kind(ELMON_LOAD(&l->loop_word)), ELMON_LOOP_NONE);
    capture_now(l, &n, note, sizeof note);
    ck_assert_msg(n == 0, "a stack of %d frames taken after the loop was closed: %s", n, note);
    ck_assert_msg(strstr(note, "after the span ended"), "note: %s", note);

    __atomic_store_n(&closer_go, 2, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    /* Nothing the watchdog would do outside the test: no capture signal,
     * no live stats file, no exporter. */
    setenv("ELMON_STACKS", "off", 1);
    setenv("ELMON_STATS", "0", 1);
    unsetenv("ELMON_FOLDED");
    unsetenv("ELMON_VERBOSE");
    unset_prefix("OTEL_");
    /* Each case needs a process of its own (the watchdog starts once). */
    setenv("CK_FORK", "yes", 1);
    tmpdir = make_tmpdir("test-watchdog");
    if (!tmpdir) {
        perror("make_tmpdir");
        return 1;
    }

    Suite *s = suite_create("watchdog");
    TCase *tc = tcase(s, "span");
    tcase_add_test(tc, busy_period_is_noticed_while_it_runs);
    tcase_add_test(tc, turn_end_gives_one_block);
    tcase_add_test(tc, short_turns_write_nothing);
    tcase_add_test(tc, closing_the_loop_closes_its_span);
    tc = tcase(s, "shutdown");
    tcase_add_test(tc, shutdown_closes_open_span_and_writes_summary);
    tcase_add_test(tc, shutdown_is_bounded_when_the_writer_is_stuck);
    tcase_add_test(tc, shutdown_waits_for_a_runnable_writer);
    tc = tcase(s, "dead");
    tcase_add_test(tc, dead_thread_gets_summary_and_slot_is_reused);
    tcase_add_test(tc, dead_thread_open_span_ends_thread_exit);
    tc = tcase(s, "capture");
    tcase_add_test(tc, capture_after_the_loop_closed_takes_nothing);
    int rc = run_suite(s);
    if (!getenv("ELMON_TEST_KEEP"))
        remove_tree(tmpdir);
    else
        fprintf(stderr, "kept %s\n", tmpdir);
    free(tmpdir);
    return rc;
}
