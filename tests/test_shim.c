/*
 * The core shim end to end: real programs run under LD_PRELOAD=libelmon.so,
 * their events files read back.  Durations are checked within tolerances
 * that hold on a loaded 2-core machine: a spin of N ms is N ms of wall time
 * by construction, so the lower bound is tight and the upper bound loose.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "support.h"

#define LOOPFIX ELMON_BIN_DIR "/loopfix"
#define SLACK_MS 250.0   /* scheduling delay a loaded 2-core machine may add */

static char *dir;
static char events_env[600], log_env[600], events_pattern[512];

static void setup(void)
{
    dir = make_tmpdir("shim");
    ck_assert_ptr_nonnull(dir);
    snprintf(events_pattern, sizeof events_pattern, "%s/ev.%%p.jsonl", dir);
    snprintf(events_env, sizeof events_env, "ELMON_EVENTS=%s", events_pattern);
    snprintf(log_env, sizeof log_env, "ELMON_LOG=%s/log.%%p.txt", dir);
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

/* All lines of all events files, and how many files there were; the span
 * records in them complete (every block_begin closed by one block). */
static char **all_events(int *n_files)
{
    char **ev = lines_of(dir, "ev.", n_files);
    const char *why = span_records_complete(ev);
    ck_assert_msg(!why, "%s", why);
    return ev;
}

static void run_ok(char *const argv[], char *const env[], struct run *r)
{
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, r), 0);
    ck_assert_msg(!r->timed_out, "%s timed out", argv[0]);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                  "%s failed (status %d): %s", argv[0], r->status, r->err);
}

static const char *const pollers[] = {
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect",
};

/* Every poller: 40 waits, a 120 ms spin after waits 15 and 30: exactly two
 * spans of 120 ms, 39 turns, two descriptors, the right poller. */
START_TEST(each_poller_counts_blocks_exactly)
{
    const char *p = pollers[_i];
    char *argv[] = {LOOPFIX, "-p", (char *)p, "-n", "40", "-b", "120", "-e", "15", NULL};
    char *env[] = {events_env, log_env, NULL};
    struct run r;
    run_ok(argv, env, &r);
    int nf;
    char **ev = all_events(&nf);
    ck_assert_int_eq(nf, 1);
    ck_assert_int_eq(count_type(ev, "block"), 2);
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    for (int i = 0; ev[i]; i++) {
        ck_assert_msg(json_is(ev[i], "poller", p), "poller of %s", ev[i]);
        if (json_is(ev[i], "type", "block")) {
            double d = json_num(ev[i], "duration_ms");
            ck_assert_msg(d >= 119.9 && d < 120 + SLACK_MS, "%s: span of %.3f ms", p, d);
            ck_assert(json_is(ev[i], "severity", "warning"));
            ck_assert(json_num(ev[i], "lag_ms") >= d);
            ck_assert(json_num(ev[i], "start_unix_ns") > 1.6e18);
        }
        if (json_is(ev[i], "type", "summary")) {
            ck_assert_int_eq((int)json_num(ev[i], "turns"), 39);
            ck_assert_int_eq((int)json_num(ev[i], "blocks_warning"), 2);
            ck_assert_int_eq((int)json_num(ev[i], "blocks_critical"), 0);
            ck_assert_int_eq((int)json_num(ev[i], "fds"), 2);
            ck_assert_int_eq((int)json_num(ev[i], "events"), 0);
            double busy = json_num(ev[i], "busy_s");
            ck_assert_msg(busy >= 0.2398 && busy < 0.24 + 2 * SLACK_MS / 1e3, "busy %.4f s", busy);
            double lmax = json_num(ev[i], "lag_max_ms");
            ck_assert(lmax >= 119.9);
            ck_assert(json_num(ev[i], "lag_p50_ms") < 20);
            ck_assert(json_is(ev[i], "exited", "false"));
            ck_assert(json_is(ev[i], "status", "degraded"));
        }
    }
    /* The human log has a line per ended span, naming pid and poller. */
    char logp[600];
    snprintf(logp, sizeof logp, "%s/log.%d.txt", dir, (int)json_num(ev[0], "pid"));
    int nl;
    char **log = read_lines(logp, &nl);
    int ended = 0;
    for (int i = 0; log && log[i]; i++)
        ended += strstr(log[i], "loop blocked 1") && strstr(log[i], p) && strstr(log[i], "[warning");
    ck_assert_int_eq(ended, 2);
    free_lines(log);
    free_lines(ev);
    run_free(&r);
}
END_TEST

START_TEST(events_counted_and_critical_severity)
{
    char *argv[] = {LOOPFIX, "-r", "-n", "30", "-b", "520", "-e", "20", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_str_eq(r.err, "");
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "block"), 1);
    for (int i = 0; ev[i]; i++) {
        if (json_is(ev[i], "type", "block")) {
            ck_assert(json_is(ev[i], "severity", "critical"));
            ck_assert(json_num(ev[i], "duration_ms") >= 519.9);
        }
        if (json_is(ev[i], "type", "summary")) {
            ck_assert_int_eq((int)json_num(ev[i], "events"), 30);
            ck_assert_int_eq((int)json_num(ev[i], "blocks_critical"), 1);
            ck_assert(json_is(ev[i], "status", "critical"));
        }
    }
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* Thresholds from the environment: 30 ms spins are spans at 20 ms and
 * critical at 25 ms; nothing at the default 50 ms. */
START_TEST(thresholds_from_env)
{
    char *argv[] = {LOOPFIX, "-n", "40", "-b", "30", "-e", "10", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", "ELMON_BLOCK_MS=20", "ELMON_CRITICAL_MS=25", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    /* Spins after waits 10, 20, 30 and 40: the last one never ends in a
     * wait, so three turns end; the fourth span, begun by the watchdog, is
     * closed when the fixture closes its epoll descriptor (its loop ends). */
    ck_assert_int_eq(count_blocks_ended(ev, "wait"), 3);
    ck_assert_int_le(count_blocks_ended(ev, "loop_closed"), 1);
    ck_assert_int_eq(count_type(ev, "block"), 3 + count_blocks_ended(ev, "loop_closed"));
    const char *why = span_records_complete(ev);
    ck_assert_msg(!why, "%s", why);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "block"))
            ck_assert(json_is(ev[i], "severity", "critical"));
    free_lines(ev);
    run_free(&r);

    char *env2[] = {events_env, "ELMON_LOG=off", NULL};
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -f %s/ev.*", dir);
    ck_assert_int_eq(system(cmd), 0);
    run_ok(argv, env2, &r);
    ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "block"), 0);
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* A loop stuck for ever is reported while it is stuck, within the
 * threshold plus the watchdog's tick (a scheduling slack on top). */
START_TEST(stuck_loop_reported_while_stuck)
{
    char *argv[] = {LOOPFIX, "-n", "100", "-b", "10", "-s", NULL};
    char *env[] = {events_env, log_env, NULL};
    pid_t pid = spawn_prog(argv, env, 1, NULL);
    ck_assert_int_gt(pid, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/ev.%d.jsonl", dir, (int)pid);
    char **lines = NULL;
    double t0 = mono_ms();
    while (mono_ms() - t0 < 10000) {
        lines = read_lines(path, NULL);
        if (lines && count_type(lines, "block_begin") == 1)
            break;
        free_lines(lines);
        lines = NULL;
        usleep(10000);
    }
    struct timespec seen;
    clock_gettime(CLOCK_REALTIME, &seen);
    ck_assert_msg(lines, "no block_begin record while the loop is stuck");
    ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), 0);   /* still stuck */
    double d = json_num(lines[0], "duration_ms");
    ck_assert_msg(d >= 50 && d <= 50 + 20 + 60, "reported %.1f ms into the span", d);
    /* And on the wall clock: the record (written after the stack capture)
     * was in the file within threshold + 20 ms, plus 60 ms of slack for a
     * loaded machine and this loop's 10 ms polling. */
    double late_ms = seen.tv_sec * 1e3 + seen.tv_nsec / 1e6 - json_num(lines[0], "start_unix_ns") / 1e6;
    ck_assert_msg(late_ms <= 50 + 20 + 60 + 10, "block_begin in the file %.1f ms after the span began", late_ms);
    ck_assert_int_eq(count_type(lines, "block"), 0);
    free_lines(lines);
    char logp[600];
    snprintf(logp, sizeof logp, "%s/log.%d.txt", dir, (int)pid);
    lines = read_lines(logp, NULL);
    ck_assert_ptr_nonnull(lines);
    ck_assert_ptr_nonnull(strstr(lines[0], "still blocked"));
    free_lines(lines);
    stop_prog(pid, 2000);
}
END_TEST

START_TEST(fork_parent_and_child_files)
{
    char *argv[] = {LOOPFIX, "-f", "-n", "30", "-b", "80", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    int nf;
    char **files = list_files(dir, "ev.", &nf);
    ck_assert_int_eq(nf, 2);
    int pids[2];
    for (int f = 0; f < 2; f++) {
        char **lines = read_lines(files[f], NULL);
        ck_assert_int_eq(count_type(lines, "block"), 1);
        ck_assert_int_eq(count_type(lines, "summary"), 1);
        pids[f] = (int)json_num(lines[0], "pid");
        char want[64];
        snprintf(want, sizeof want, "/ev.%d.jsonl", pids[f]);
        ck_assert_msg(strstr(files[f], want), "%s holds pid %d", files[f], pids[f]);
        for (int i = 0; lines[i]; i++)
            ck_assert_int_eq((int)json_num(lines[i], "pid"), pids[f]);
        for (int i = 0; lines[i]; i++)
            if (json_is(lines[i], "type", "summary"))
                ck_assert_int_eq((int)json_num(lines[i], "turns"), 29);
        free_lines(lines);
    }
    ck_assert_int_ne(pids[0], pids[1]);
    free_lines(files);
    run_free(&r);
}
END_TEST

/* Several loop threads in one process: one summary each, own tid and name,
 * each with its own block. */
START_TEST(threads_each_their_own_loop)
{
    char *argv[] = {LOOPFIX, "-t", "4", "-n", "30", "-b", "70", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "summary"), 4);
    ck_assert_int_eq(count_type(ev, "block"), 4);
    int tids[4], n = 0;
    for (int i = 0; ev[i]; i++) {
        if (!json_is(ev[i], "type", "summary"))
            continue;
        tids[n] = (int)json_num(ev[i], "tid");
        ck_assert(strncmp(json_get(ev[i], "thread"), "loop-", 5) == 0);
        ck_assert(json_is(ev[i], "exited", "true"));
        ck_assert_int_eq((int)json_num(ev[i], "blocks_warning"), 1);
        for (int k = 0; k < n; k++)
            ck_assert_int_ne(tids[k], tids[n]);
        n++;
    }
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* A process that never runs a loop (single-descriptor waits only) starts
 * no thread and writes no file. */
START_TEST(no_loop_no_thread_no_file)
{
    char *argv[] = {ELMON_BIN_DIR "/nopoll", NULL};
    char *env[] = {events_env, log_env, "ELMON_BLOCK_MS=abc", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_str_eq(r.out, "threads 1\n");
    ck_assert_str_eq(r.err, "");
    int nf;
    free_lines(list_files(dir, "", &nf));
    ck_assert_int_eq(nf, 0);
    run_free(&r);
    char *argv2[] = {"/bin/true", NULL};
    run_ok(argv2, env, &r);
    free_lines(list_files(dir, "", &nf));
    ck_assert_int_eq(nf, 0);
    run_free(&r);
}
END_TEST

/* Return values and errno of every wrapped call are those of the real
 * call, EINTR included, with and without FORTIFY. */
START_TEST(results_and_errno_unchanged)
{
    const char *bins[] = {ELMON_BIN_DIR "/errnos", ELMON_BIN_DIR "/errnos_fortify"};
    /* The second setting makes the first wait's registration fail to open
     * its log (ENOENT, one warning): that errno must not reach the host's
     * successful wait. */
    const char *logs[] = {"ELMON_LOG=off", "ELMON_LOG=/nonexistent-elmon-dir/log"};
    for (int b = 0; b < 4; b++) {
        char *argv[] = {(char *)bins[b % 2], NULL};
        char *env[] = {events_env, (char *)logs[b / 2], NULL};
        struct run bare, pre;
        ck_assert_int_eq(run_prog(argv, env, 0, 30000, &bare), 0);
        ck_assert_int_eq(run_prog(argv, env, 1, 30000, &pre), 0);
        ck_assert_int_eq(bare.status, pre.status);
        ck_assert_str_eq(bare.out, pre.out);
        ck_assert_ptr_nonnull(strstr(pre.out, "eintr"));
        run_free(&bare);
        run_free(&pre);
    }
}
END_TEST

/* FORTIFY builds call __poll_chk/__ppoll_chk: they are loop turns too. */
START_TEST(fortify_entries_are_interposed)
{
    char *argv[] = {ELMON_BIN_DIR "/errnos_fortify", "chk", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "block"), 1);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary")) {
            ck_assert_int_eq((int)json_num(ev[i], "turns"), 19);
            ck_assert_int_eq((int)json_num(ev[i], "events"), 40);
        }
    free_lines(ev);
    run_free(&r);
}
END_TEST

START_TEST(bad_env_one_warning_and_defaults)
{
    char *argv[] = {LOOPFIX, "-n", "30", "-b", "80", NULL};
    char *env[] = {events_env, "ELMON_BLOCK_MS=abc", "ELMON_CRITICAL_MS=-3", "ELMON_VERBOSE=maybe",
                   "ELMON_CLOCK=sundial", NULL};
    struct run r, bare;
    run_ok(argv, env, &r);
    ck_assert_int_eq(run_prog(argv, env, 0, 30000, &bare), 0);
    ck_assert_ptr_nonnull(strstr(r.out, " done\n"));
    ck_assert_ptr_nonnull(strstr(bare.out, " done\n"));
    const char *want[] = {"ELMON_BLOCK_MS='abc'", "ELMON_CRITICAL_MS='-3'", "ELMON_VERBOSE='maybe'",
                          "ELMON_CLOCK='sundial'"};
    for (int i = 0; i < 4; i++) {
        char *p = strstr(r.err, want[i]);
        ck_assert_msg(p, "no warning for %s in: %s", want[i], r.err);
        ck_assert_msg(!strstr(p + 1, want[i]), "two warnings for %s", want[i]);
    }
    ck_assert_ptr_nonnull(strstr(r.err, "using 50"));
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "block"), 1);   /* the default 50 ms applies */
    free_lines(ev);
    run_free(&r);
    run_free(&bare);
}
END_TEST

START_TEST(unwritable_paths_warn_and_host_runs)
{
    char *argv[] = {LOOPFIX, "-n", "30", "-b", "60", NULL};
    char *env[] = {"ELMON_EVENTS=/nonexistent/dir/ev.jsonl", "ELMON_LOG=/proc/version", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_ptr_nonnull(strstr(r.err, "ELMON_LOG='/proc/version' cannot be opened"));
    ck_assert_ptr_nonnull(strstr(r.err, "ELMON_EVENTS='/nonexistent/dir/ev.jsonl' cannot be created"));
    ck_assert_int_ge(log_spans_min_ms(r.err, 60), 1);   /* fell back to stderr */
    ck_assert_ptr_nonnull(strstr(r.out, "done"));
    run_free(&r);
}
END_TEST

START_TEST(disable_makes_inert)
{
    char *argv[] = {LOOPFIX, "-n", "30", "-b", "80", NULL};
    char *env[] = {events_env, "ELMON_DISABLE=1", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_str_eq(r.err, "");
    int nf;
    free_lines(list_files(dir, "", &nf));
    ck_assert_int_eq(nf, 0);
    run_free(&r);
}
END_TEST

/* Every field of every record type is in docs/EVENTS.md and every field
 * the table lists appears in real records. */
START_TEST(events_match_schema_table)
{
    char *argv[] = {LOOPFIX, "-n", "30", "-b", "80", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    char **doc = read_lines(ELMON_SRC_DIR "/docs/EVENTS.md", NULL);
    ck_assert_ptr_nonnull(doc);
    char table[64][64];
    int nt = 0;
    for (int i = 0; doc[i]; i++) {
        char name[64];
        if (sscanf(doc[i], "| `%63[a-z0-9_]` |", name) == 1)
            snprintf(table[nt++], sizeof table[0], "%s", name);
    }
    ck_assert_int_gt(nt, 20);
    int seen[64] = {0};
    for (int i = 0; ev[i]; i++) {
        /* top-level keys: "key": at depth 1 */
        int depth = 0;
        for (const char *p = ev[i]; *p; p++) {
            if (*p == '"') {
                const char *q = strchr(p + 1, '"');
                if (depth == 1 && q && q[1] == ':') {
                    char key[64];
                    snprintf(key, sizeof key, "%.*s", (int)(q - p - 1), p + 1);
                    int found = 0;
                    for (int k = 0; k < nt; k++)
                        if (strcmp(table[k], key) == 0)
                            found = seen[k] = 1;
                    ck_assert_msg(found, "field %s is not in docs/EVENTS.md", key);
                }
                while (q && q[-1] == '\\')
                    q = strchr(q + 1, '"');
                p = q ? q : p + strlen(p) - 1;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                depth--;
            }
        }
    }
    for (int k = 0; k < nt; k++)
        if (strcmp(table[k], "culprit") != 0)   /* only with a capture module */
            ck_assert_msg(seen[k], "docs/EVENTS.md lists %s but no record has it", table[k]);
    free_lines(doc);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* A wait on one descriptor inside a turn (CPython's socket timeouts) is
 * busy time of that turn, on any kind of loop. */
START_TEST(nested_single_fd_waits_are_busy)
{
    static const char *const combos[][2] = {
        {"epoll_wait", "poll1"}, {"epoll_wait", "select1"}, {"poll", "poll1"}, {"select", "select1"},
    };
    char *argv[] = {LOOPFIX, "-p", (char *)combos[_i][0], "-k", (char *)combos[_i][1],
                    "-n", "40", "-b", "120", "-e", "15", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "block"), 2);
    for (int i = 0; ev[i]; i++) {
        ck_assert(json_is(ev[i], "poller", combos[_i][0]));
        if (json_is(ev[i], "type", "block"))
            ck_assert(json_num(ev[i], "duration_ms") >= 119.9);
        if (json_is(ev[i], "type", "summary"))
            ck_assert_int_eq((int)json_num(ev[i], "turns"), 39);
    }
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* A wait that times out late adds its overshoot to the next turn's lag,
 * without being a busy span.  The loop asks the kernel for 100 ms of timer
 * slack, so its 1 ms timeouts fire up to 100 ms late while its turns stay
 * microseconds long.  (A stop signal would not do: it makes epoll_wait fail
 * with EINTR.) */
START_TEST(timer_overshoot_is_lag)
{
    char *argv[] = {LOOPFIX, "-S", "100", "-n", "40", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary")) {
            double busy_ms = json_num(ev[i], "busy_s") * 1e3, lag_max = json_num(ev[i], "lag_max_ms");
            /* lag = busy + overshoot: a lag sample above all the busy time
             * there was can only come from an overshoot.  On an idle CPU
             * the slack makes it tens of ms; on a busy one the scheduler
             * tick expires the timer within a few ms, so the margin is
             * small and 40 waits make sure one of them overshoots it. */
            ck_assert_msg(lag_max >= 2 && lag_max > busy_ms + 1.5, "lag max %.1f ms, busy %.1f ms in all",
                          lag_max, busy_ms);
            ck_assert_int_eq((int)json_num(ev[i], "blocks_warning"), 0);
        }
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* posix_spawn and vfork+exec children of a loop work under libelmon, and
 * the programs they run, which run no loop, write nothing. */
START_TEST(spawn_and_vfork_children_work)
{
    char *argv[] = {LOOPFIX, "-x", "-n", "40", "-b", "60", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    run_ok(argv, env, &r);
    ck_assert_ptr_nonnull(strstr(r.out, "spawned 16\n"));
    int nf;
    char **ev = all_events(&nf);
    ck_assert_int_eq(nf, 1);
    ck_assert_int_eq(count_type(ev, "block"), 1);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* Another preloaded library's constructor waits before (or after) ours has
 * run: real results either way. */
START_TEST(early_constructor_waits)
{
    char *argv[] = {"/bin/true", NULL};
    char pre1[1024], pre2[1024], pre0[1024];
    snprintf(pre0, sizeof pre0, "LD_PRELOAD=%s/libearlyctor.so", ELMON_BIN_DIR);
    snprintf(pre1, sizeof pre1, "LD_PRELOAD=%s:%s/libearlyctor.so", ELMON_SO, ELMON_BIN_DIR);
    snprintf(pre2, sizeof pre2, "LD_PRELOAD=%s/libearlyctor.so:%s", ELMON_BIN_DIR, ELMON_SO);
    char *pres[] = {pre0, pre1, pre2};
    for (int i = 0; i < 3; i++) {
        char *env[] = {pres[i], "ELMON_LOG=off", NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, env, 0, 20000, &r), 0);
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: status %d", pres[i], r.status);
        ck_assert_str_eq(r.err, "early: poll=2 epoll=2\n");
        run_free(&r);
    }
}
END_TEST

/* The host's stderr is a pipe nobody reads: the watchdog's log writes
 * block, yet the process exits promptly and its summary is written. */
START_TEST(exit_not_held_by_stuck_stderr)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    char outp[600];
    snprintf(outp, sizeof outp, "%s/out.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(pipefd[1], 2);
        setenv("LD_PRELOAD", ELMON_SO, 1);
        setenv("ELMON_EVENTS", events_pattern, 1);
        setenv("ELMON_BLOCK_MS", "1", 1);
        execl(LOOPFIX, LOOPFIX, "-n", "1500", "-b", "2", "-e", "1", NULL);
        _exit(127);
    }
    close(pipefd[1]);
    double t_done = 0;
    int st = 0;
    double t0 = mono_ms();
    while (mono_ms() - t0 < 60000) {
        if (!t_done) {
            char **out = read_lines(outp, NULL);
            if (out && out[0] && strstr(out[0], "done"))
                t_done = mono_ms();
            free_lines(out);
        }
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        usleep(2000);
    }
    double t_exit = mono_ms();
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    ck_assert_msg(t_done > 0, "never printed done");
    ck_assert_msg(t_exit - t_done < 600, "exit took %.0f ms after main returned", t_exit - t_done);
    char **ev = all_events(NULL);
    ck_assert_int_eq(count_type(ev, "summary"), 1);
    free_lines(ev);
    close(pipefd[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shim");
    TCase *tc = tcase_create("shim");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, each_poller_counts_blocks_exactly, 0, sizeof pollers / sizeof pollers[0]);
    tcase_add_test(tc, events_counted_and_critical_severity);
    tcase_add_test(tc, thresholds_from_env);
    tcase_add_test(tc, stuck_loop_reported_while_stuck);
    tcase_add_test(tc, fork_parent_and_child_files);
    tcase_add_test(tc, threads_each_their_own_loop);
    tcase_add_test(tc, no_loop_no_thread_no_file);
    tcase_add_test(tc, results_and_errno_unchanged);
    tcase_add_test(tc, fortify_entries_are_interposed);
    tcase_add_test(tc, bad_env_one_warning_and_defaults);
    tcase_add_test(tc, unwritable_paths_warn_and_host_runs);
    tcase_add_test(tc, disable_makes_inert);
    tcase_add_test(tc, events_match_schema_table);
    tcase_add_loop_test(tc, nested_single_fd_waits_are_busy, 0, 4);
    tcase_add_test(tc, timer_overshoot_is_lag);
    tcase_add_test(tc, spawn_and_vfork_children_work);
    tcase_add_test(tc, early_constructor_waits);
    tcase_add_test(tc, exit_not_held_by_stuck_stderr);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
