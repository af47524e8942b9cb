/*
 * The loop model (README "What libelmon measures"): a loop is what a
 * thread waits on at its outermost level, time outside a running loop is
 * never a span, a wait on a private loop inside a turn is the turn's busy
 * time, every block_begin is closed by a block whatever way the span ends,
 * and the descriptor count follows closes.  Real programs under LD_PRELOAD:
 * CPython (Debian's and every pyenv build present), pytest with
 * pytest-asyncio, Node, and C fixtures.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "support.h"

#define SLACK_MS 250.0
#define LOOPFIX ELMON_BIN_DIR "/loopfix"
#define FDCOUNT ELMON_BIN_DIR "/fdcount"
#define LOOPS_PY ELMON_SRC_DIR "/tests/fixtures/loops.py"

static char *dir;
static char events_env[600];

static void setup(void)
{
    dir = make_tmpdir("loops");
    ck_assert_ptr_nonnull(dir);
    snprintf(events_env, sizeof events_env, "ELMON_EVENTS=%s/ev.%%p.jsonl", dir);
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

static void clear_events(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -f %s/ev.*", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Every events file of the run: records complete (support.c). */
static char **events(void)
{
    char **ev = lines_of(dir, "ev.", NULL);
    const char *why = span_records_complete(ev);
    ck_assert_msg(!why, "%s", why);
    return ev;
}

static void run_ok(char *const argv[], char *const env[], struct run *r)
{
    ck_assert_int_eq(run_prog(argv, env, 1, 120000, r), 0);
    ck_assert_msg(!r->timed_out, "%s timed out", argv[0]);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "%s failed (%d): %.1500s", argv[0],
                  r->status, r->err);
}

/* The one block of ev, checked to last ms (within SLACK_MS) and to have
 * ended at a wait. */
static void one_span(char **ev, double ms, const char *what)
{
    ck_assert_msg(count_type(ev, "block") == 1, "%s: %d spans", what, count_type(ev, "block"));
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "block")) {
            double d = json_num(ev[i], "duration_ms");
            ck_assert_msg(d >= ms - 0.5 && d < ms + SLACK_MS, "%s: span %.1f ms, not %.0f", what, d, ms);
            ck_assert_msg(json_is(ev[i], "end", "wait"), "%s: ended %s", what, json_get(ev[i], "end"));
        }
}

/* argv under libelmon: exactly one span of ms, its records complete. */
static void one_span_of(char *const argv[], double ms, const char *what)
{
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = events();
    one_span(ev, ms, what);
    free_lines(ev);
    run_free(&r);
}

/* ---- Pythons: Debian's, then every pyenv build ---- */

struct python {
    char path[700];
    char version[32];
    int frames;          /* 3.8 on: libelmon reads its Python frames */
};

static int pythons(struct python *out, int max)
{
    struct cpython found[32];
    int n = cpythons(found, max < 32 ? max : 32);
    for (int i = 0; i < n; i++) {
        snprintf(out[i].path, sizeof out[i].path, "%.599s", found[i].path);
        if (found[i].minor >= 0)
            snprintf(out[i].version, sizeof out[i].version, "3.%d", found[i].minor);
        else
            out[i].version[0] = 0;
        out[i].frames = found[i].minor >= 8;
    }
    return n;
}

static int at_least(const char *version, int major, int minor)
{
    int a = 0, b = 0;
    return sscanf(version, "%d.%d", &a, &b) == 2 && (a > major || (a == major && b >= minor));
}

/* MODE of loops.py on python: no span, no block_begin, nothing on stderr
 * (the human lines go to stderr by default).  rule 0: with the CPython
 * rule off, so that the loops' ends alone must do it. */
/* ELMON_BLOCK_MS for loops.py's "pool": under the 300 ms each job spins
 * (loops.py job), well over the parent's own turns that fork workers. */
enum { POOL_BLOCK_MS = 250 };

static void no_span_at(const struct python *py, const char *mode, int rule, int block_ms)
{
    char *argv[] = {(char *)py->path, LOOPS_PY, (char *)mode, NULL};
    char block[64];
    snprintf(block, sizeof block, "ELMON_BLOCK_MS=%d", block_ms);
    char *env[] = {events_env, block, rule ? NULL : "ELMON_PY_LOOP_CHECK=0", NULL};
    struct run r;
    clear_events();
    run_ok(argv, env, &r);
    ck_assert_msg(strcmp(r.out, "done\n") == 0, "%s %s: stdout %s", py->version, mode, r.out);
    ck_assert_msg(r.err[0] == 0, "%s %s wrote to stderr:\n%.1500s", py->version, mode, r.err);
    char **ev = events();
    ck_assert_msg(count_type(ev, "block") == 0 && count_type(ev, "block_begin") == 0,
                  "%s %s: %d blocks, %d block_begin", py->version, mode, count_type(ev, "block"),
                  count_type(ev, "block_begin"));
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary"))
            ck_assert_msg(json_num(ev[i], "lag_max_ms") < block_ms, "%s %s: a turn of %.1f ms", py->version, mode,
                          json_num(ev[i], "lag_max_ms"));
    free_lines(ev);
    run_free(&r);
}

static void no_span_on(const struct python *py, const char *mode, int rule)
{
    no_span_at(py, mode, rule, 50);
}

/* Loops that end by closing (asyncio.run, ProcessPoolExecutor jobs from a
 * loop): every Python with asyncio.run, by the loops' ends alone (the
 * CPython rule off). */
START_TEST(python_time_between_loops_is_no_span)
{
    struct python py[32];
    int n = pythons(py, 32), ran = 0;
    for (int i = 0; i < n; i++) {
        if (!at_least(py[i].version, 3, 7)) {
            fprintf(stderr, "skipped %s (%s): no asyncio.run before 3.7\n", py[i].path, py[i].version);
            continue;
        }
        no_span_on(&py[i], "run_twice", 0);
        /* The parent's own turns start the pool's thread and fork its
         * workers: real turns, some 50 ms on a loaded machine.  Each job
         * spins 300 ms outside any loop, so 250 ms still tells a worker's
         * job counted as a turn from the parent's real ones. */
        no_span_at(&py[i], "pool", 0, POOL_BLOCK_MS);
        ran++;
    }
    fprintf(stderr, "run_twice and pool: %d Pythons\n", ran);
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* A loop left open and not running, atexit work and interpreter shutdown:
 * the CPython rule (no run method on the stack at the crossing).  It
 * needs Python frames, which libelmon reads on 3.8 and later. */
START_TEST(python_loop_left_open_is_no_span)
{
    struct python py[32];
    int n = pythons(py, 32), ran = 0;
    for (int i = 0; i < n; i++) {
        if (!py[i].frames) {
            fprintf(stderr, "skipped %s (%s): libelmon reads Python frames from 3.8 on\n", py[i].path, py[i].version);
            continue;
        }
        no_span_on(&py[i], "left_open", 1);
        no_span_on(&py[i], "atexit", 1);
        ran++;
    }
    fprintf(stderr, "left_open and atexit: %d Pythons\n", ran);
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* uvloop's loops end when libuv closes them, through syscall(SYS_close):
 * the time after is no span (the CPython rule does not judge uvloop,
 * whose loop is native code). */
START_TEST(uvloop_closed_loop_ends)
{
    if (system("/usr/bin/python3 -c 'import uvloop' 2>/dev/null") != 0)
        ck_abort_msg("python3-uvloop is not installed (scripts/install-deps installs it)");
    struct python deb = {.path = "/usr/bin/python3", .version = "debian", .frames = 1};
    no_span_on(&deb, "uvloop_twice", 0);
}
END_TEST

/* tornado's IOLoop, closed and made anew: no span between. */
START_TEST(tornado_closed_loop_ends)
{
    if (system("/usr/bin/python3 -c 'import tornado' 2>/dev/null") != 0)
        ck_abort_msg("python3-tornado is not installed (scripts/install-deps installs it)");
    struct python deb = {.path = "/usr/bin/python3", .version = "debian", .frames = 1};
    no_span_on(&deb, "tornado_twice", 0);
}
END_TEST

/* A loop that waits through native code (here ctypes) is not judged by the
 * CPython rule: its 100 ms block is a span though no run method libelmon
 * knows is on the stack. */
START_TEST(python_native_wait_loop_is_not_judged)
{
    char *argv[] = {"/usr/bin/python3", LOOPS_PY, "ctypes_loop", NULL};
    one_span_of(argv, 100, "a ctypes epoll_wait loop");
}
END_TEST

/* The rule is what keeps those quiet: without it, the sync work after the
 * loop was left open is a span. */
START_TEST(python_loop_rule_off_reports)
{
    char *argv[] = {"/usr/bin/python3", LOOPS_PY, "left_open", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", "ELMON_PY_LOOP_CHECK=0", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = events();
    ck_assert_int_ge(count_type(ev, "block"), 1);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* pytest with pytest-asyncio: slow sync tests, async tests each on a loop
 * of their own; only the async test that blocks its loop is a span, and
 * elmon run's verdict follows it both ways. */
START_TEST(pytest_reports_only_the_blocked_loop)
{
    char *argv[] = {"/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    ELMON_SRC_DIR "/tests/fixtures/pytest_loops/test_suite.py", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_msg(strstr(r.out, "5 passed"), "pytest: %s", r.out);
    char **ev = events();
    one_span(ev, 120, "pytest");
    ck_assert_int_eq(count_type(ev, "block_begin"), 1);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "block")) {
            const char *c = json_get(ev[i], "culprit");
            ck_assert_msg(c && strstr(c, "test_async_blocks_loop"), "culprit %s", c ? c : "null");
        }
    free_lines(ev);
    run_free(&r);

    char out[700];
    snprintf(out, sizeof out, "%s/run.json", dir);
    struct run e;
    char *over[] = {ELMON_CLI, "run", "--quiet", "--fail-over", "100", "--out", out, "--", argv[0], argv[1], argv[2],
                    argv[3], argv[4], argv[5], argv[6], NULL};
    ck_assert_int_eq(run_prog(over, NULL, 0, 120000, &e), 0);
    ck_assert_msg(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 123, "--fail-over 100: status %d\n%s%s",
                  e.status, e.out, e.err);
    run_free(&e);
    over[4] = "200";
    ck_assert_int_eq(run_prog(over, NULL, 0, 120000, &e), 0);
    ck_assert_msg(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0, "--fail-over 200: status %d\n%s%s",
                  e.status, e.out, e.err);
    run_free(&e);
}
END_TEST

/* subprocess.run from a running loop: CPython's vfork child closes every
 * descriptor before its exec, in the parent's memory; the parent's loop
 * and its descriptor count must not notice. */
START_TEST(python_vfork_child_leaves_the_loop_alone)
{
    char *argv[] = {"/usr/bin/python3", LOOPS_PY, "subprocess_in_loop", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = events();
    one_span(ev, 100, "a block after subprocess.run");
    int summaries = 0;
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary") && json_num(ev[i], "pid") == json_num(ev[0], "pid")) {
            summaries++;
            /* Had the children's close_range been taken for the parent's,
             * its loop would have ended and a second one begun. */
            ck_assert_msg((int)json_num(ev[i], "loops") == 1, "%d loops", (int)json_num(ev[i], "loops"));
        }
    ck_assert_int_eq(summaries, 1);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- nested private loops ---- */

START_TEST(c_private_epoll_inside_a_turn)
{
    /* A poll loop takes an epoll wait for a new loop of its own (loopid.h),
     * so epoll2 runs in epoll loops only. */
    const char *pollers[] = {"epoll_wait", "poll", "select"};
    const char *kinds[] = {"epoll2", "poll2"};
    for (int p = 0; p < 3; p++)
        for (int k = p ? 1 : 0; k < 2; k++) {
            char *argv[] = {LOOPFIX, "-p", (char *)pollers[p], "-n", "30", "-b", "300", "-k", (char *)kinds[k], NULL};
            char *env[] = {events_env, "ELMON_LOG=off", NULL};
            struct run r;
            clear_events();
            run_ok(argv, env, &r);
            char **ev = events();
            char what[64];
            snprintf(what, sizeof what, "%s in a %s loop", kinds[k], pollers[p]);
            one_span(ev, 300, what);
            for (int i = 0; ev[i]; i++)
                if (json_is(ev[i], "type", "summary")) {
                    ck_assert_int_eq((int)json_num(ev[i], "loops"), 1);
                    ck_assert_msg(json_is(ev[i], "poller", pollers[p]), "%s: poller %s", what,
                                  json_get(ev[i], "poller"));
                }
            free_lines(ev);
            run_free(&r);
        }
}
END_TEST

START_TEST(python_selector_inside_a_callback)
{
    char *argv[] = {"/usr/bin/python3", LOOPS_PY, "selector_nested", NULL};
    one_span_of(argv, 300, "selector.select(0.3) in a callback");
}
END_TEST

START_TEST(node_execsync)
{
    if (!have_prog("node"))
        ck_abort_msg("node is not installed (scripts/install-deps installs nodejs)");
    char *argv[] = {"node", ELMON_SRC_DIR "/tests/fixtures/node_execsync.js", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_str_eq(r.out, "done\n");
    char **ev = events();
    int main_spans = 0;
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "block")) {
            double d = json_num(ev[i], "duration_ms");
            ck_assert_msg(d >= 299.5 && d < 300 + SLACK_MS, "execSync span %.1f ms", d);
            main_spans++;
        }
    ck_assert_int_eq(main_spans, 1);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- loops one after another ---- */

START_TEST(c_time_between_loops_is_no_span)
{
    char *argv[] = {LOOPFIX, "-n", "20", "-g", "200", NULL};
    char *env[] = {events_env, NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_msg(r.err[0] == 0, "stderr: %.1500s", r.err);
    char **ev = events();
    ck_assert_int_eq(count_type(ev, "block"), 0);
    ck_assert_int_eq(count_type(ev, "block_begin"), 0);
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary")) {
            ck_assert_int_eq((int)json_num(ev[i], "loops"), 2);
            ck_assert_int_ge((int)json_num(ev[i], "turns"), 36);
            ck_assert(json_num(ev[i], "lag_max_ms") < 50);
        }
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- complete records ---- */

static int pids_with(char **ev, const char *type, const char *end)
{
    int pids[1024], n = 0;
    for (int i = 0; ev[i]; i++) {
        if (!json_is(ev[i], "type", type) || (end && !json_is(ev[i], "end", end)))
            continue;
        int pid = (int)json_num(ev[i], "pid"), seen = 0;
        for (int k = 0; k < n; k++)
            seen |= pids[k] == pid;
        if (!seen && n < 1024)
            pids[n++] = pid;
    }
    return n;
}

/* Children that block their own loop and leave through _exit at once:
 * each has its block and its summary. */
START_TEST(forked_children_keep_their_records)
{
    struct {
        const char *mode, *n, *end;
    } cases[] = {
        {"fork_children", "20", "wait"},
        {"mp_children", "10", "wait"},
        {"fork_children_exit_inside", "10", "exit"},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *argv[] = {"/usr/bin/python3", LOOPS_PY, (char *)cases[c].mode, (char *)cases[c].n, NULL};
        char *env[] = {events_env, "ELMON_LOG=off", NULL};
        struct run r;
        clear_events();
        run_ok(argv, env, &r);
        char **ev = events();
        int want = atoi(cases[c].n);
        int blocks = pids_with(ev, "block", cases[c].end), summaries = pids_with(ev, "summary", NULL);
        fprintf(stderr, "%s: %d of %d children with a block (end %s), %d processes with a summary\n", cases[c].mode,
                blocks, want, cases[c].end, summaries);
        ck_assert_int_eq(blocks, want);
        ck_assert_int_ge(summaries, want);
        for (int i = 0; ev[i]; i++)
            if (json_is(ev[i], "type", "block"))
                ck_assert_msg(json_num(ev[i], "duration_ms") >= (strcmp(cases[c].end, "exit") ? 59.5 : 119.5),
                              "%s: span %.1f ms", cases[c].mode, json_num(ev[i], "duration_ms"));
        free_lines(ev);
        run_free(&r);
    }
}
END_TEST

/* A loop blocked when the process exits (exit, _exit, _Exit from inside
 * the turn): its span is closed with its duration so far. */
START_TEST(span_open_at_exit_is_closed)
{
    const char *calls[] = {"exit", "_exit", "_Exit"};
    for (int c = 0; c < 3; c++) {
        char *argv[] = {LOOPFIX, "-n", "30", "-b", "200", "-X", (char *)calls[c], NULL};
        char *env[] = {events_env, "ELMON_LOG=off", NULL};
        struct run r;
        clear_events();
        run_ok(argv, env, &r);
        char **ev = events();
        ck_assert_int_eq(count_type(ev, "block_begin"), 1);
        ck_assert_int_eq(count_type(ev, "block"), 1);
        ck_assert_int_eq(count_blocks_ended(ev, "exit"), 1);
        ck_assert_int_eq(count_type(ev, "summary"), 1);
        for (int i = 0; ev[i]; i++)
            if (json_is(ev[i], "type", "block"))
                ck_assert_msg(json_num(ev[i], "duration_ms") >= 199.5, "%s: %.1f ms", calls[c],
                              json_num(ev[i], "duration_ms"));
        free_lines(ev);
        run_free(&r);
    }
}
END_TEST

/* Loop threads that end inside a span (pthread_exit from the blocked
 * turn) while the process goes on: each span closed at its thread's exit. */
START_TEST(span_open_at_thread_exit_is_closed)
{
    char *argv[] = {LOOPFIX, "-t", "2", "-n", "30", "-b", "200", "-X", "pthread_exit", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = events();
    ck_assert_int_eq(count_type(ev, "block_begin"), 2);
    ck_assert_int_eq(count_blocks_ended(ev, "thread_exit"), 2);
    ck_assert_int_eq(count_type(ev, "block"), 2);
    int exited = 0;
    for (int i = 0; ev[i]; i++) {
        if (json_is(ev[i], "type", "block"))
            ck_assert_msg(json_num(ev[i], "duration_ms") >= 199.5, "%.1f ms", json_num(ev[i], "duration_ms"));
        if (json_is(ev[i], "type", "summary")) {
            exited += json_is(ev[i], "exited", "true");
            ck_assert_int_eq((int)json_num(ev[i], "blocks_warning"), 1);
        }
    }
    ck_assert_int_eq(exited, 2);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- the descriptor count ---- */

START_TEST(descriptor_count_follows_closes)
{
    char *argv[] = {FDCOUNT, "10000", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run bare, r;
    ck_assert_int_eq(run_prog(argv, env, 0, 60000, &bare), 0);
    run_ok(argv, env, &r);
    ck_assert_str_eq(r.out, bare.out);
    ck_assert_str_eq(r.out, "closed 10000\n");
    char **ev = events();
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary"))
            ck_assert_msg((int)json_num(ev[i], "fds") == 2, "fds %d, not 2", (int)json_num(ev[i], "fds"));
    free_lines(ev);
    run_free(&r);
    run_free(&bare);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loops");
    TCase *py = tcase_create("python");
    tcase_add_checked_fixture(py, setup, teardown);
    tcase_set_timeout(py, 600);
    tcase_add_test(py, python_time_between_loops_is_no_span);
    tcase_add_test(py, python_loop_left_open_is_no_span);
    tcase_add_test(py, python_loop_rule_off_reports);
    tcase_add_test(py, uvloop_closed_loop_ends);
    tcase_add_test(py, tornado_closed_loop_ends);
    tcase_add_test(py, python_native_wait_loop_is_not_judged);
    tcase_add_test(py, pytest_reports_only_the_blocked_loop);
    tcase_add_test(py, python_selector_inside_a_callback);
    tcase_add_test(py, python_vfork_child_leaves_the_loop_alone);
    tcase_add_test(py, forked_children_keep_their_records);
    suite_add_tcase(s, py);
    TCase *c = tcase_create("native");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_set_timeout(c, 300);
    tcase_add_test(c, c_private_epoll_inside_a_turn);
    tcase_add_test(c, c_time_between_loops_is_no_span);
    tcase_add_test(c, span_open_at_exit_is_closed);
    tcase_add_test(c, span_open_at_thread_exit_is_closed);
    tcase_add_test(c, descriptor_count_follows_closes);
    tcase_add_test(c, node_execsync);
    suite_add_tcase(s, c);
    return run_suite(s);
}
