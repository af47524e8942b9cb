/*
 * `elmon run` end to end: the CI verdict and exit statuses around a loop
 * that blocks 80 ms, the JUnit report checked against tests/junit.xsd with
 * xmllint, the summary checked against the events files, a shell script
 * starting two monitored programs, signal forwarding, the default events
 * directory, and --help.
 *
 * An 80 ms nanosleep is 80 ms plus a wake-up delay: the --fail-over 100
 * case leaves 20 ms for it, which a loaded 2-core machine gives a sleeping
 * thread; the rest of the checks only need a lower bound.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "json.h"
#include "support.h"

#define LOOPFIX ELMON_BIN_DIR "/loopfix"
#define XSD ELMON_SRC_DIR "/tests/junit.xsd"
#define TWO_SH ELMON_SRC_DIR "/tests/fixtures/cli_two.sh"

static char *dir;
static char stats_env[600];

static void setup(void)
{
    dir = make_tmpdir("cli-run");
    ck_assert_ptr_nonnull(dir);
    /* Live stats of the programs run here stay out of the user's directory. */
    snprintf(stats_env, sizeof stats_env, "%s/stats", dir);
    mkdir(stats_env, 0700);
    setenv("ELMON_STATS_DIR", stats_env, 1);
    unsetenv("ELMON_EVENTS");
    unsetenv("ELMON_BLOCK_MS");
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

/* elmon with args (NULL-terminated), its exit status as a shell sees it. */
static int elmon(struct run *r, int timeout_ms, ...)
{
    va_list ap;
    va_start(ap, timeout_ms);
    int rc = run_vargs((char *[]){ELMON_CLI, NULL}, timeout_ms, r, ap);
    va_end(ap);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(!r->timed_out, "elmon timed out; stderr:\n%s", r->err);
    if (WIFSIGNALED(r->status))
        return 128 + WTERMSIG(r->status);
    return WEXITSTATUS(r->status);
}

static struct jval *parse_file(const char *path)
{
    int n;
    char **lines = read_lines(path, &n);
    ck_assert_msg(lines && n == 1, "%s: expected one JSON line", path);
    struct jval *v = jv_parse(lines[0], strlen(lines[0]));
    ck_assert_msg(v != NULL, "%s does not parse: %s", path, lines[0]);
    free_lines(lines);
    return v;
}

static void xmllint_ok(const char *xml)
{
    char *argv[] = {"xmllint", "--noout", "--schema", XSD, (char *)xml, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, NULL, 0, 30000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "xmllint rejects %s:\n%s", xml, r.err);
    run_free(&r);
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *buf = calloc(1, 1 << 20);
    size_t k = fread(buf, 1, (1 << 20) - 1, f);
    buf[k] = 0;
    fclose(f);
    return buf;
}

START_TEST(budget_exit_statuses)
{
    char out[600], junit[600];
    struct run r;
    snprintf(out, sizeof out, "%s/ev0", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--out", out, "--", LOOPFIX, "-n", "40", "-b", "80", "-k", "sleep",
                           NULL), 0);
    ck_assert_msg(strstr(r.err, "loopfix"), "no loopfix row in:\n%s", r.err);
    run_free(&r);

    snprintf(out, sizeof out, "%s/ev50", dir);
    snprintf(junit, sizeof junit, "%s/junit50.xml", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--fail-over", "50", "--junit", junit, "--out", out, "--", LOOPFIX,
                           "-n", "40", "-b", "80", "-k", "sleep", NULL), 123);
    ck_assert_msg(strstr(r.err, "over budget"), "%s", r.err);
    run_free(&r);
    xmllint_ok(junit);
    char *x = slurp(junit);
    ck_assert_int_eq(count_str(x, "<testcase "), 1);
    ck_assert_int_eq(count_str(x, "<failure "), 1);
    ck_assert_msg(strstr(x, "blocked 8"), "no span in the failure text:\n%s", x);
    free(x);

    snprintf(out, sizeof out, "%s/ev100", dir);
    snprintf(junit, sizeof junit, "%s/junit100.xml", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--fail-over", "100", "--junit", junit, "--out", out, "--", LOOPFIX,
                           "-n", "40", "-b", "80", "-k", "sleep", NULL), 0);
    ck_assert_msg(strstr(r.err, "within budget"), "%s", r.err);
    run_free(&r);
    xmllint_ok(junit);
    x = slurp(junit);
    ck_assert_int_eq(count_str(x, "<testcase "), 1);
    ck_assert_int_eq(count_str(x, "<failure"), 0);
    free(x);

    /* Severity budgets: an 80 ms span is a warning, not critical. */
    snprintf(out, sizeof out, "%s/evw", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--quiet", "--fail-on", "warning", "--out", out, "--", LOOPFIX, "-n",
                           "40", "-b", "80", "-k", "sleep", NULL), 123);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--quiet", "--fail-on", "critical", "--out", out, "--", LOOPFIX,
                           "-n", "40", "-b", "80", "-k", "sleep", NULL), 0);
    run_free(&r);
}
END_TEST

START_TEST(command_statuses)
{
    char out[600], noexec[600];
    struct run r;
    snprintf(out, sizeof out, "%s/ev", dir);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--out", out, "--", "sh", "-c", "exit 3", NULL), 3);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--out", out, "--", "sh", "-c", "kill -TERM $$", NULL), 143);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--out", out, "--", "/nonexistent/elmon-test", NULL), 127);
    ck_assert_msg(strstr(r.err, "/nonexistent/elmon-test"), "%s", r.err);
    run_free(&r);
    snprintf(noexec, sizeof noexec, "%s/noexec", dir);
    FILE *f = fopen(noexec, "w");
    fputs("#!/bin/sh\n", f);
    fclose(f);
    chmod(noexec, 0600);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--out", out, "--", noexec, NULL), 126);
    run_free(&r);
    /* Usage errors never run anything. */
    ck_assert_int_eq(elmon(&r, 30000, "run", "--fail-on", "sometimes", "--", "true", NULL), 2);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--block-ms", "200", "--fail-over", "100", "--", "true", NULL), 2);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", NULL), 2);
    run_free(&r);
}
END_TEST

START_TEST(summary_matches_events)
{
    char out[600], json[600];
    struct run r;
    snprintf(out, sizeof out, "%s/ev", dir);
    snprintf(json, sizeof json, "%s/summary.json", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--json", json, "--out", out, "--", LOOPFIX, "-n", "70", "-b", "80",
                           "-e", "20", "-k", "sleep", NULL), 0);
    int n_files;
    char **files = list_files(out, "events.", &n_files);
    ck_assert_int_eq(n_files, 1);
    int n;
    char **lines = read_lines(files[0], &n);
    ck_assert_int_eq(count_type(lines, "summary"), 1);
    ck_assert_int_eq(count_type(lines, "block"), 3);
    const char *summary = NULL;
    double blocked = 0, longest = 0;
    for (int i = 0; i < n; i++) {
        if (json_is(lines[i], "type", "summary"))
            summary = lines[i];
        if (json_is(lines[i], "type", "block")) {
            double d = json_num(lines[i], "duration_ms");
            blocked += d;
            longest = d > longest ? d : longest;
        }
    }
    ck_assert_ptr_nonnull(summary);

    struct jval *s = parse_file(json);
    const struct jval *loops = jv_get(s, "loops");
    ck_assert_msg(loops && loops->type == J_ARR && loops->n == 1, "one loop expected");
    const struct jval *l = loops->items[0];
    ck_assert_double_eq(jv_num(l, "pid", -1), json_num(summary, "pid"));
    ck_assert_double_eq(jv_num(l, "turns", -1), json_num(summary, "turns"));
    ck_assert_double_eq_tol(jv_num(l, "lag_max_ms", -1), json_num(summary, "lag_max_ms"), 0.001);
    ck_assert_double_eq_tol(jv_num(l, "lag_p99_ms", -1), json_num(summary, "lag_p99_ms"), 0.001);
    ck_assert_double_eq_tol(jv_num(l, "utilization", -1), json_num(summary, "utilization"), 0.0001);
    ck_assert_double_eq(jv_num(l, "blocks_warning", -1), 3);
    ck_assert_double_eq(jv_num(s, "exit_status", -1), 0);
    const struct jval *culprits = jv_get(s, "culprits");
    ck_assert_msg(culprits && culprits->n >= 1, "no culprit");
    double total = 0, count = 0;
    for (size_t i = 0; i < culprits->n; i++) {
        total += jv_num(culprits->items[i], "total_ms", 0);
        count += jv_num(culprits->items[i], "count", 0);
    }
    ck_assert_double_eq(count, 3);
    ck_assert_double_eq_tol(total, blocked, 0.01);
    ck_assert_double_eq_tol(jv_num(culprits->items[0], "max_ms", 0), longest, 0.01);
    ck_assert_msg(longest >= 80, "an 80 ms sleep measured %.1f ms", longest);

    /* The printed table shows the same figures. */
    char row[128];
    snprintf(row, sizeof row, "%.2f", json_num(summary, "lag_max_ms"));
    ck_assert_msg(strstr(r.err, row), "max lag %s not in:\n%s", row, r.err);
    snprintf(row, sizeof row, " %.0f ", json_num(summary, "turns"));
    ck_assert_msg(strstr(r.err, row), "turns %s not in:\n%s", row, r.err);
    jv_free(s);
    free_lines(lines);
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    run_free(&r);
}
END_TEST

/* The pids of the loops of a --json summary. */
static int loop_pids(const char *json, int *pids, int max)
{
    struct jval *s = parse_file(json);
    const struct jval *loops = jv_get(s, "loops");
    ck_assert_ptr_nonnull(loops);
    int n = 0;
    for (size_t i = 0; i < loops->n && n < max; i++) {
        ck_assert_str_eq(jv_str(loops->items[i], "process", ""), "loopfix");
        pids[n++] = (int)jv_num(loops->items[i], "pid", -1);
    }
    jv_free(s);
    return n;
}

START_TEST(script_with_two_programs)
{
    char out[600], json[600];
    struct run r;
    snprintf(out, sizeof out, "%s/ev", dir);
    snprintf(json, sizeof json, "%s/two.json", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--json", json, "--out", out, "--", "sh", TWO_SH, LOOPFIX, NULL), 0);
    int pids[8];
    int n = loop_pids(json, pids, 8);
    ck_assert_msg(n == 2 && pids[0] != pids[1], "two programs expected, got %d:\n%s", n, r.err);
    ck_assert_int_eq(count_str(r.err, "\nloopfix "), 2);
    run_free(&r);

    /* --no-children: the shell is measured (it runs no loop), the programs
     * it executes are not. */
    snprintf(out, sizeof out, "%s/ev-nochildren", dir);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--no-children", "--json", json, "--out", out, "--", "sh", TWO_SH,
                           LOOPFIX, NULL), 0);
    ck_assert_int_eq(loop_pids(json, pids, 8), 0);
    run_free(&r);
}
END_TEST

START_TEST(signals_forwarded)
{
    char out[600], outfile[600];
    snprintf(out, sizeof out, "%s/ev", dir);
    snprintf(outfile, sizeof outfile, "%s/elmon.out", dir);
    char *argv[] = {ELMON_CLI, "run", "--out", out, "--", LOOPFIX, "-n", "1000000", NULL};
    pid_t pid = spawn_prog(argv, NULL, 0, outfile);
    ck_assert_int_gt(pid, 0);
    /* Wait until the loop runs (its stats file appears), then signal elmon
     * alone: COMMAND must get it and elmon report it as a shell does. */
    char probe[700];
    int found = 0;
    for (int i = 0; i < 500 && !found; i++) {
        int n;
        char **f = list_files(stats_env, "", &n);
        found = n > 0;
        for (int k = 0; k < n; k++)
            free(f[k]);
        free(f);
        usleep(20000);
    }
    if (!found) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ck_abort_msg("the program never started its loop");
    }
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000 && waitpid(pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (kill(pid, 0) == 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, &st, 0);
        ck_abort_msg("elmon did not end after SIGTERM");
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 143, "status %#x", st);
    snprintf(probe, sizeof probe, "%s", outfile);
    char *text = slurp(probe);
    ck_assert_msg(strstr(text, "killed by signal 15"), "%s", text);
    ck_assert_msg(strstr(text, "loopfix"), "%s", text);
    free(text);
}
END_TEST

START_TEST(default_out_dir_and_help)
{
    ck_assert_int_eq(chdir(dir), 0);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "run", "--", LOOPFIX, "-n", "5", NULL), 0);
    ck_assert_msg(strstr(r.err, "elmon: events in elmon-"), "%s", r.err);
    int n;
    char **d = list_files(dir, "elmon-", &n);
    ck_assert_int_eq(n, 1);
    int nf;
    char **f = list_files(d[0], "events.", &nf);
    ck_assert_int_eq(nf, 1);
    free(f[0]);
    free(f);
    free(d[0]);
    free(d);
    run_free(&r);

    static const char *const subs[] = {"run", "stat", "top", "report"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(elmon(&r, 10000, subs[i], "--help", NULL), 0);
        ck_assert_msg(strstr(r.out, "Usage: elmon ") && strstr(r.out, "Exit status"), "%s --help:\n%s", subs[i],
                      r.out);
        run_free(&r);
    }
    ck_assert_int_eq(elmon(&r, 10000, "--help", NULL), 0);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 10000, "frobnicate", NULL), 2);
    run_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_run");
    TCase *tc = tcase_create("run");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, budget_exit_statuses);
    tcase_add_test(tc, command_statuses);
    tcase_add_test(tc, summary_matches_events);
    tcase_add_test(tc, script_with_two_programs);
    tcase_add_test(tc, signals_forwarded);
    tcase_add_test(tc, default_out_dir_and_help);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
