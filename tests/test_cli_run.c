/*
 * `elmon run` end to end: the CI verdict and exit statuses around a loop
 * that blocks 80 ms, the JUnit report checked against tests/junit.xsd with
 * xmllint, the summary checked against the events files, a shell script
 * starting two monitored programs, signal forwarding, the default events
 * directory, --help, and the environment `run` hands COMMAND: each
 * libelmon option as its variable, libelmon.so prepended to LD_PRELOAD;
 * escape sequences in the names the summary prints.
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
#include "version.h"

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
    unsetenv("ELMON_STACKS");
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

static int shell_status(const struct run *r)
{
    ck_assert_msg(!r->timed_out, "elmon timed out; stderr:\n%s", r->err);
    if (WIFSIGNALED(r->status))
        return 128 + WTERMSIG(r->status);
    return WEXITSTATUS(r->status);
}

/* elmon with args (NULL-terminated), its exit status as a shell sees it. */
static int elmon(struct run *r, int timeout_ms, ...)
{
    va_list ap;
    va_start(ap, timeout_ms);
    int rc = run_vargs((char *[]){ELMON_CLI, NULL}, timeout_ms, r, ap);
    va_end(ap);
    ck_assert_int_eq(rc, 0);
    return shell_status(r);
}

/* elmon as above, with env ("NAME=value", NULL-terminated; run_prog)
 * added to its own environment. */
static int elmon_env(struct run *r, char *const env[], int timeout_ms, ...)
{
    char *argv[64] = {ELMON_CLI};
    int n = 1;
    char *a;
    va_list ap;
    va_start(ap, timeout_ms);
    while (n < 63 && (a = va_arg(ap, char *)))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    ck_assert_int_eq(run_prog(argv, env, 0, timeout_ms, r), 0);
    return shell_status(r);
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

/* Whether the text of the first <failure> element of a JUnit file lists a
 * stack frame ("    #N FUNCTION ...") of fn. */
static int failure_has_frame(const char *xml, const char *fn)
{
    const char *start = strstr(xml, "<failure ");
    const char *end = start ? strstr(start, "</failure>") : NULL;
    if (!end)
        return 0;
    size_t k = strlen(fn);
    for (const char *p = start; (p = strstr(p, "\n    #")) && p < end; p++) {
        const char *q = p + 6;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == p + 6 || *q != ' ' || strncmp(q + 1, fn, k) != 0)
            continue;
        const char *after = q + 1 + k;   /* "fn (file:line)", "fn (module)" or "fn" alone */
        if (after == end || *after == ' ' || *after == '\n')
            return 1;
    }
    return 0;
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
    /* The span's stack: the fixture's blocking function is one of its frames. */
    ck_assert_msg(failure_has_frame(x, "fixture_sleep"), "no fixture_sleep frame in the failure text:\n%s", x);
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
    /* ... and each says why. */
    ck_assert_int_eq(elmon(&r, 30000, "run", "--block-ms", "0.5", "--", "true", NULL), 2);
    ck_assert_msg(strstr(r.err, "--block-ms: at least 1 ms"), "%s", r.err);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--critical-ms", "0", "--", "true", NULL), 2);
    ck_assert_msg(strstr(r.err, "--critical-ms: at least 1 ms"), "%s", r.err);
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

/* A library that exists, to stand for an LD_PRELOAD set before elmon. */
static const char *some_library(void)
{
    static const char *const candidates[] = {
        "/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/aarch64-linux-gnu/libm.so.6", "/lib64/libm.so.6", "/usr/lib64/libm.so.6", "/usr/lib/libm.so.6",
        "/lib/libm.so.6", NULL};
    for (int i = 0; candidates[i]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    ck_abort_msg("no libm.so.6 found to preload");
    return NULL;
}

/* The line after line, or NULL after the last. */
static const char *next_line(const char *line)
{
    const char *nl = strchr(line, '\n');
    return nl ? nl + 1 : NULL;
}

/* The value of NAME in text of "NAME=value" lines (env's output), up to
 * end (NULL: the end of text); malloc'd, or NULL when absent. */
static char *env_value(const char *text, const char *end, const char *name)
{
    size_t k = strlen(name);
    if (!end)
        end = text + strlen(text);
    for (const char *line = text; line && line < end; line = next_line(line)) {
        if (strncmp(line, name, k) == 0 && line[k] == '=') {
            const char *v = line + k + 1;
            const char *nl = strchr(v, '\n');
            return strndup(v, nl ? (size_t)(nl - v) : strlen(v));
        }
    }
    return NULL;
}

/* The ELMON_*, OTEL_* and LD_PRELOAD lines of env's output, for messages
 * (the rest of the environment is not the test's business); malloc'd. */
static char *env_ours(const char *text, const char *end)
{
    if (!end)
        end = text + strlen(text);
    char *out = calloc(1, (size_t)(end - text) + 1);
    size_t k = 0;
    for (const char *line = text; line && line < end; line = next_line(line)) {
        const char *nl = strchr(line, '\n');
        size_t len = nl && nl < end ? (size_t)(nl - line) + 1 : (size_t)(end - line);
        if (strncmp(line, "ELMON_", 6) == 0 || strncmp(line, "OTEL_", 5) == 0 ||
            strncmp(line, "LD_PRELOAD=", 11) == 0) {
            memcpy(out + k, line, len);
            k += len;
        }
    }
    return out;
}

static void expect_var(const char *text, const char *end, const char *name, const char *want)
{
    char *v = env_value(text, end, name);
    if (!v) {
        char *ours = env_ours(text, end);
        ck_abort_msg("%s not in COMMAND's environment:\n%s", name, ours);
    }
    ck_assert_msg(strcmp(v, want) == 0, "%s=%s, expected %s", name, v, want);
    free(v);
}

/* LD_PRELOAD as `run` must hand it over: libelmon.so first, then the
 * LD_PRELOAD elmon itself had, whose last entry is pre.  (Sanitizer builds
 * put their runtime in front of pre in elmon's own LD_PRELOAD: see
 * ELMON_TEST_PRELOAD_PREFIX in support.c.) */
static void expect_preload(const char *text, const char *end, const char *pre)
{
    char *v = env_value(text, end, "LD_PRELOAD");
    if (!v) {
        char *ours = env_ours(text, end);
        ck_abort_msg("no LD_PRELOAD in COMMAND's environment:\n%s", ours);
    }
    char *colon = strchr(v, ':');
    ck_assert_msg(colon != NULL, "LD_PRELOAD=%s: the earlier LD_PRELOAD is gone", v);
    *colon = 0;
    char first[4096], built[4096];
    ck_assert_msg(realpath(v, first) && realpath(ELMON_SO, built) && strcmp(first, built) == 0,
                  "LD_PRELOAD starts with %s, not libelmon.so (%s)", v, ELMON_SO);
    const char *rest = colon + 1;
    const char *prefix = getenv("ELMON_TEST_PRELOAD_PREFIX");
    if (prefix && *prefix) {
        size_t kr = strlen(rest), kp = strlen(pre);
        ck_assert_msg(kr > kp && rest[kr - kp - 1] == ':' && strcmp(rest + kr - kp, pre) == 0,
                      "LD_PRELOAD after libelmon.so is %s, not ending with %s", rest, pre);
    } else {
        ck_assert_msg(strcmp(rest, pre) == 0, "LD_PRELOAD after libelmon.so is %s, not %s", rest, pre);
    }
    free(v);
}

/* Every libelmon option of docs/CLI.md's table sets its variable in
 * COMMAND's environment (cli/run.c), --out sets ELMON_EVENTS, and an
 * LD_PRELOAD already set stays, after libelmon.so. */
START_TEST(options_become_child_environment)
{
    unsetenv("ELMON_CHILDREN");
    const char *pre = some_library();
    char preload[600], out[600], log[600], events[700];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", pre);
    snprintf(out, sizeof out, "%s/ev", dir);
    snprintf(log, sizeof log, "%s/libelmon-%%p.log", dir);
    snprintf(events, sizeof events, "%s/events.%%p.jsonl", out);
    /* ELMON_LIBRARY empty: elmon finds the library next to itself. */
    char *env[] = {preload, "ELMON_LIBRARY=", NULL};
    struct run r;
    ck_assert_int_eq(elmon_env(&r, env, 30000, "run", "--quiet", "--out", out, "--block-ms", "7", "--critical-ms",
                               "299.6", "--stacks", "native", "--log", log, "--otlp", "http://127.0.0.1:9/otlp",
                               "--service", "elmon test svc", "--clock", "monotonic", "--verbose", "--set",
                               "OTEL_SDK_DISABLED=true", "--set", "ELMON_TEST_SET=a=b c", "--", "/usr/bin/env",
                               NULL), 0);
    expect_var(r.out, NULL, "ELMON_BLOCK_MS", "7");
    expect_var(r.out, NULL, "ELMON_CRITICAL_MS", "300");   /* whole ms, as libelmon reads them */
    expect_var(r.out, NULL, "ELMON_STACKS", "native");
    expect_var(r.out, NULL, "ELMON_LOG", log);
    expect_var(r.out, NULL, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/otlp");
    expect_var(r.out, NULL, "OTEL_SERVICE_NAME", "elmon test svc");
    expect_var(r.out, NULL, "ELMON_CLOCK", "monotonic");
    expect_var(r.out, NULL, "ELMON_VERBOSE", "1");
    expect_var(r.out, NULL, "OTEL_SDK_DISABLED", "true");
    expect_var(r.out, NULL, "ELMON_TEST_SET", "a=b c");
    expect_var(r.out, NULL, "ELMON_EVENTS", events);
    expect_preload(r.out, NULL, pre);
    char *v = env_value(r.out, NULL, "ELMON_CHILDREN");
    ck_assert_msg(v == NULL, "ELMON_CHILDREN=%s without --no-children", v);
    run_free(&r);

    /* --no-children: COMMAND starts with ELMON_CHILDREN=0 and libelmon.so
     * in LD_PRELOAD (its own initial environment, /proc/PID/environ); the
     * programs it executes inherit the earlier LD_PRELOAD alone. */
    ck_assert_int_eq(elmon_env(&r, env, 30000, "run", "--quiet", "--out", out, "--no-children", "--", "sh", "-c",
                               "tr '\\0' '\\n' < /proc/$$/environ; echo ---; env", NULL), 0);
    const char *sep = strstr(r.out, "---\n");
    ck_assert_msg(sep != NULL, "no separator in the output of sh; stderr:\n%s", r.err);
    expect_var(r.out, sep, "ELMON_CHILDREN", "0");
    expect_preload(r.out, sep, pre);
    expect_var(sep + 4, NULL, "ELMON_CHILDREN", "0");
    v = env_value(sep + 4, NULL, "LD_PRELOAD");
    ck_assert_msg(v && strstr(v, "libelmon") == NULL && strlen(v) >= strlen(pre) &&
                      strcmp(v + strlen(v) - strlen(pre), pre) == 0,
                  "a program COMMAND executes has LD_PRELOAD=%s", v ? v : "(unset)");
    free(v);
    run_free(&r);
}
END_TEST

/* --fail-over MS lowers an ELMON_BLOCK_MS above MS to MS and keeps one
 * below it. */
START_TEST(fail_over_lowers_block_ms)
{
    char out[600];
    snprintf(out, sizeof out, "%s/ev", dir);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--fail-over", "20", "--out", out, "--", "/usr/bin/env",
                           NULL), 0);
    expect_var(r.out, NULL, "ELMON_BLOCK_MS", "20");
    run_free(&r);
    ck_assert_int_eq(elmon_env(&r, (char *[]){"ELMON_BLOCK_MS=100", NULL}, 30000, "run", "--quiet", "--fail-over",
                               "20", "--out", out, "--", "/usr/bin/env", NULL), 0);
    expect_var(r.out, NULL, "ELMON_BLOCK_MS", "20");
    run_free(&r);
    ck_assert_int_eq(elmon_env(&r, (char *[]){"ELMON_BLOCK_MS=5", NULL}, 30000, "run", "--quiet", "--fail-over",
                               "20", "--out", out, "--", "/usr/bin/env", NULL), 0);
    expect_var(r.out, NULL, "ELMON_BLOCK_MS", "5");
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "run", "--quiet", "--block-ms", "8", "--fail-over", "20", "--out", out, "--",
                           "/usr/bin/env", NULL), 0);
    expect_var(r.out, NULL, "ELMON_BLOCK_MS", "8");
    run_free(&r);
}
END_TEST


/* COMMAND is a program whose name holds "\e[2J" (a screen clear) and
 * whose loop thread names itself "\e]0;pwned\a\r" (a title change, a
 * carriage return), then blocks 200 ms: the summary on stderr (the name
 * cut to its column on a whole escape) and the JUnit report on stdout
 * carry the names escaped, the report still valid against the schema.
 * (Python code names reach the events file already escaped by libelmon;
 * the thread name comes raw from the kernel.) */
START_TEST(hostile_names_in_summary)
{
    char *prog = strf("%s/py\x1b[2Jthon", dir);
    ck_assert_int_eq(symlink("/usr/bin/python3", prog), 0);
    static const char script[] =
        "import asyncio, ctypes, time\n"
        "ctypes.CDLL(None).prctl(15, b'\\x1b]0;pwned\\x07\\r', 0, 0, 0)\n"
        "def evil():\n"
        "    time.sleep(0.2)\n"
        "async def main():\n"
        "    asyncio.get_running_loop().call_soon(evil)\n"
        "    await asyncio.sleep(0.4)\n"
        "asyncio.run(main())\n";
    char *out = strf("%s/out", dir);
    struct run r;
    /* --log off: libelmon's own log of a span is not elmon's output (and
     * names the thread raw: preload/sinks/human.c). */
    int rc = elmon(&r, 60000, "run", "--log", "off", "--out", out, "--fail-over", "100", "--junit", "-", "--", prog,
                   "-c", script, NULL);
    ck_assert_msg(rc == 123, "status %d, stderr:\n%s", rc, r.err);
    long at = raw_control_at(r.out);
    ck_assert_msg(at < 0, "JUnit: raw control byte 0x%02x at offset %ld:\n%s", at < 0 ? 0 : (unsigned char)r.out[at], at,
                  r.out);
    const char *summary = r.err;
    at = raw_control_at(summary);
    ck_assert_msg(at < 0, "summary: raw control byte 0x%02x at offset %ld:\n%s", at < 0 ? 0 : (unsigned char)summary[at],
                  at, summary);
    ck_assert_msg(strstr(summary, "\npy\\x1b[2Jthon ") && strstr(summary, "  \\x1b]0;pwned") &&
                      strstr(summary, "evil (<string>:4)") && strstr(summary, "/py\\x1b[2Jthon exited with status 0"),
                  "not shown escaped:\n%s", summary);
    ck_assert_msg(strstr(r.out, "thread \\x1b]0;pwned\\x07\\x0d (tid "), "JUnit:\n%s", r.out);
    char *junit = strf("%s/junit.xml", dir);
    FILE *f = fopen(junit, "w");
    ck_assert_ptr_nonnull(f);
    fputs(r.out, f);
    ck_assert_int_eq(fclose(f), 0);
    xmllint_ok(junit);
    run_free(&r);
    free(junit);
    free(out);
    free(prog);
}
END_TEST

/* The file at path: written (its text starts with head and holds has),
 * mode 0600 whatever the umask (the caller's is 022). */
static void expect_private_file(const char *path, const char *head, const char *has)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "%s not written", path);
    ck_assert_msg(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600, "%s: mode %o, not a regular file of mode 600",
                  path, st.st_mode);
    char *text = slurp(path);
    ck_assert_msg(strncmp(text, head, strlen(head)) == 0, "%s does not start with %s:\n%.300s", path, head, text);
    ck_assert_msg(strstr(text, has), "%s: no %s in it", path, has);
    free(text);
}

/* --html, --speedscope, --junit and --json FILE: all written, mode 0600 under umask
 * 022; `-` is stdout; a symlink at FILE (to a file, or dangling) is
 * refused with a line naming it, its target untouched and nothing created;
 * a FILE that cannot be created is named; either is exit status 125 after
 * COMMAND ran, or 123 when the budget broke. */
START_TEST(html_speedscope_files)
{
    umask(022);
    char *out = strf("%s/ev", dir), *html = strf("%s/run.html", dir), *ss = strf("%s/run.speedscope.json", dir);
    char *junit = strf("%s/run.junit.xml", dir), *json = strf("%s/run.json", dir);
    static const char ss_head[] = "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"";
    struct run r;
    ck_assert_int_eq(elmon(&r, 60000, "run", "--quiet", "--log", "off", "--out", out, "--html", html, "--speedscope",
                           ss, "--junit", junit, "--json", json, "--", LOOPFIX, "-n", "20", "-b", "80", "-e", "10",
                           "-k", "sleep", NULL),
                     0);
    run_free(&r);
    expect_private_file(html, "<!DOCTYPE html>", "fixture_sleep");
    expect_private_file(ss, ss_head, "fixture_sleep");
    /* The JUnit and JSON summaries name culprits and stacks too. */
    expect_private_file(junit, "<?xml", "loopfix");
    expect_private_file(json, "{", "fixture_sleep");

    ck_assert_int_eq(elmon(&r, 60000, "run", "--quiet", "--log", "off", "--out", out, "--speedscope", "-", "--",
                           LOOPFIX, "-n", "20", "-b", "80", "-e", "10", "-k", "sleep", NULL), 0);
    ck_assert_msg(strstr(r.out, ss_head) && strstr(r.out, "fixture_sleep"), "--speedscope -: stdout:\n%s", r.out);
    run_free(&r);

    char *target = strf("%s/target", dir), *link = strf("%s/link.html", dir);
    char *absent = strf("%s/absent", dir), *dangling = strf("%s/dangling.json", dir);
    char *link_junit = strf("%s/link.xml", dir), *link_json = strf("%s/link.json", dir);
    FILE *f = fopen(target, "w");
    fputs("untouched\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(symlink(absent, dangling), 0);
    ck_assert_int_eq(symlink(target, link_junit), 0);
    ck_assert_int_eq(symlink(absent, link_json), 0);
    int rc = elmon(&r, 60000, "run", "--quiet", "--out", out, "--html", link, "--speedscope", dangling, "--junit",
                   link_junit, "--json", link_json, "--", "true", NULL);
    ck_assert_msg(rc == 125, "status %d with symlinks at the paths:\n%s", rc, r.err);
    const char *links[] = {link, dangling, link_junit, link_json};
    for (int i = 0; i < 4; i++) {
        char *want = strf("elmon: cannot write %s: it is a symbolic link, not followed\n", links[i]);
        ck_assert_msg(strstr(r.err, want), "no line naming %s:\n%s", links[i], r.err);
        free(want);
    }
    run_free(&r);
    char *text = slurp(target);
    ck_assert_str_eq(text, "untouched\n");
    free(text);
    ck_assert_msg(access(absent, F_OK) != 0, "%s created through a dangling link", absent);
    free(link_junit);
    free(link_json);
    free(junit);
    free(json);

    const char *bad = "/nonexistent/elmon-test/run.html";
    rc = elmon(&r, 60000, "run", "--quiet", "--out", out, "--html", bad, "--", "true", NULL);
    ck_assert_msg(rc == 125, "status %d for --html %s:\n%s", rc, bad, r.err);
    ck_assert_msg(strstr(r.err, "elmon: cannot write /nonexistent/elmon-test/run.html: No such file or directory"), "%s",
                  r.err);
    run_free(&r);
    /* A broken budget is the verdict still. */
    rc = elmon(&r, 60000, "run", "--quiet", "--log", "off", "--fail-over", "50", "--out", out, "--speedscope", bad,
               "--", LOOPFIX, "-n", "20", "-b", "80", "-e", "10", "-k", "sleep", NULL);
    ck_assert_msg(rc == 123, "status %d over budget with --speedscope %s:\n%s", rc, bad, r.err);
    ck_assert_msg(strstr(r.err, "cannot write /nonexistent/elmon-test/run.html"), "%s", r.err);
    run_free(&r);
    free(target);
    free(link);
    free(absent);
    free(dangling);
    free(out);
    free(html);
    free(ss);
}
END_TEST

/* --quiet: nothing on stderr (neither the events directory nor the
 * summary), where without it both are; --json - puts the summary on
 * stdout, after COMMAND's own output. */
START_TEST(quiet_prints_nothing)
{
    char *out = strf("%s/ev", dir);
    struct run r;
    ck_assert_int_eq(elmon(&r, 60000, "run", "--log", "off", "--out", out, "--", LOOPFIX, "-n", "20", "-b", "80",
                           "-e", "10", "-k", "sleep", NULL), 0);
    ck_assert_msg(strstr(r.err, "elmon: events in ") && strstr(r.err, "\nloopfix ") &&
                      strstr(r.err, "exited with status 0"),
                  "no summary without --quiet:\n%s", r.err);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 60000, "run", "--quiet", "--log", "off", "--out", out, "--json", "-", "--", LOOPFIX,
                           "-n", "20", "-b", "80", "-e", "10", "-k", "sleep", NULL), 0);
    ck_assert_msg(r.err[0] == 0, "--quiet printed on stderr:\n%s", r.err);
    const char *j = strstr(r.out, "{\"v\":1,\"command\":");
    ck_assert_msg(j != NULL, "no JSON summary on stdout:\n%s", r.out);
    struct jval *v = jv_parse(j, strlen(j));
    ck_assert_msg(v != NULL, "not JSON:\n%s", j);
    const struct jval *loops = jv_get(v, "loops");
    ck_assert_msg(loops && loops->n == 1, "one loop expected:\n%s", j);
    ck_assert_double_eq(jv_num(loops->items[0], "blocks_warning", -1), 2);
    jv_free(v);
    run_free(&r);
    free(out);
}
END_TEST

/* -h and --help of every command print the same text, the one `elmon help
 * COMMAND` prints, with status 0 and nothing run; the same for elmon
 * itself, whose text is also printed, with status 2, without a command. */
START_TEST(help_short_and_long)
{
    static const char *const subs[] = {"run", "stat", "top", "report", "serve"};
    struct run r;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(elmon(&r, 10000, subs[i], "--help", NULL), 0);
        char *text = strdup(r.out);
        char *usage = strf("Usage: elmon %s ", subs[i]);
        ck_assert_msg(strncmp(text, usage, strlen(usage)) == 0 && strstr(text, "\n  -h, --help "),
                      "%s --help:\n%s", subs[i], text);
        ck_assert_str_eq(r.err, "");
        run_free(&r);
        ck_assert_int_eq(elmon(&r, 10000, subs[i], "-h", NULL), 0);
        ck_assert_msg(strcmp(r.out, text) == 0, "%s -h:\n%s", subs[i], r.out);
        run_free(&r);
        ck_assert_int_eq(elmon(&r, 10000, "help", subs[i], NULL), 0);
        ck_assert_msg(strcmp(r.out, text) == 0, "help %s:\n%s", subs[i], r.out);
        run_free(&r);
        free(usage);
        free(text);
    }
    /* run -h ends the options: COMMAND is not run. */
    char *mark = strf("%s/ran", dir);
    ck_assert_int_eq(elmon(&r, 10000, "run", "-h", "--", "touch", mark, NULL), 0);
    run_free(&r);
    ck_assert_msg(access(mark, F_OK) != 0, "run -h ran COMMAND");
    free(mark);

    ck_assert_int_eq(elmon(&r, 10000, "--help", NULL), 0);
    char *text = strdup(r.out);
    ck_assert_msg(strncmp(text, "Usage: elmon COMMAND", 20) == 0 && strstr(text, "\n  report ") &&
                      strstr(text, "\n  --version "),
                  "elmon --help:\n%s", text);
    run_free(&r);
    static const char *const same[] = {"-h", "help"};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(elmon(&r, 10000, same[i], NULL), 0);
        ck_assert_msg(strcmp(r.out, text) == 0, "elmon %s:\n%s", same[i], r.out);
        run_free(&r);
    }
    ck_assert_int_eq(elmon(&r, 10000, NULL), 2);
    ck_assert_msg(strcmp(r.out, text) == 0, "elmon alone:\n%s", r.out);
    run_free(&r);
    free(text);
}
END_TEST

/* --version: one line, elmon's version and the events schema it reads. */
START_TEST(version_line)
{
    struct run r;
    ck_assert_int_eq(elmon(&r, 10000, "--version", NULL), 0);
    char *want = strf("elmon %s (events schema %d)\n", ELMON_VERSION, ELMON_EVENTS_SCHEMA);
    ck_assert_str_eq(r.out, want);
    ck_assert_str_eq(r.err, "");
    free(want);
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
    tcase_add_test(tc, options_become_child_environment);
    tcase_add_test(tc, fail_over_lowers_block_ms);
    tcase_add_test(tc, hostile_names_in_summary);
    tcase_add_test(tc, html_speedscope_files);
    tcase_add_test(tc, quiet_prints_nothing);
    tcase_add_test(tc, help_short_and_long);
    tcase_add_test(tc, version_line);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
