/*
 * `elmon report` on events files: real ones written by libelmon, the same
 * cut short and mixed with garbage and foreign lines (counted, skipped,
 * warned about), a newer schema (refused), a span that never ended, the
 * --json and --folded forms, and strings with escape sequences in them.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "json.h"
#include "support.h"

#define LOOPFIX ELMON_BIN_DIR "/loopfix"

static char *dir;
static char events[700];

static void setup(void)
{
    dir = make_tmpdir("cli-report");
    ck_assert_ptr_nonnull(dir);
    char stats[600];
    snprintf(stats, sizeof stats, "%s/stats", dir);
    mkdir(stats, 0700);
    setenv("ELMON_STATS_DIR", stats, 1);
    snprintf(events, sizeof events, "%s/ev", dir);
    mkdir(events, 0700);
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

/* loopfix under libelmon, its events in DIR/ev/events.PID.jsonl. */
static void make_events(char *const args[], int timeout_ms)
{
    char env_events[800];
    snprintf(env_events, sizeof env_events, "ELMON_EVENTS=%s/events.%%p.jsonl", events);
    char *env[] = {env_events, "ELMON_LOG=off", NULL};
    char *argv[16] = {LOOPFIX};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    struct run r;
    ck_assert_int_eq(run_prog(argv, env, 1, timeout_ms, &r), 0);
    run_free(&r);
}

static int report(struct run *r, ...)
{
    va_list ap;
    va_start(ap, r);
    int rc = run_vargs((char *[]){ELMON_CLI, "report", NULL}, 30000, r, ap);
    va_end(ap);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(!r->timed_out && WIFEXITED(r->status), "elmon report crashed or hung:\n%s", r->err);
    return WEXITSTATUS(r->status);
}

static char *only_file(void)
{
    int n;
    char **f = list_files(events, "events.", &n);
    ck_assert_int_eq(n, 1);
    char *p = f[0];
    free(f);
    return p;
}

START_TEST(real_files_text_json_folded)
{
    make_events((char *[]){"-n", "45", "-b", "60", "-e", "10", "-k", "sleep", NULL}, 30000);
    struct run r;
    ck_assert_int_eq(report(&r, events, NULL), 0);
    ck_assert_msg(strstr(r.out, "1 process, 1 loop thread") && strstr(r.out, "\nloopfix "), "%s", r.out);
    ck_assert_msg(strstr(r.out, "Top culprits"), "%s", r.out);
    ck_assert_str_eq(r.err, "");
    run_free(&r);

    ck_assert_int_eq(report(&r, "--json", events, NULL), 0);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_msg(v != NULL, "not JSON:\n%s", r.out);
    const struct jval *loops = jv_get(v, "loops");
    ck_assert_int_eq(loops->n, 1);
    ck_assert_double_eq(jv_num(loops->items[0], "blocks_warning", -1), 4);
    ck_assert_double_eq(jv_num(v, "skipped_malformed", -1), 0);
    jv_free(v);
    run_free(&r);

    /* Folded: "frame;frame weight", the weights adding up to the blocked ms. */
    ck_assert_int_eq(report(&r, "--folded", events, NULL), 0);
    long total = 0;
    int lines = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        ck_assert_msg(sp && strncmp(line, "loopfix;", 8) == 0, "bad folded line '%s'", line);
        total += strtol(sp + 1, NULL, 10);
        lines++;
    }
    ck_assert_int_ge(lines, 1);
    ck_assert_msg(total >= 240 && total < 4 * 60 + 800, "folded weights add up to %ld ms", total);
    run_free(&r);
}
END_TEST

START_TEST(truncated_and_garbage)
{
    make_events((char *[]){"-n", "45", "-b", "60", "-e", "10", "-k", "sleep", NULL}, 30000);
    char *path = only_file();
    /* Cut the last record (the summary) in half, as a crash or a full disk
     * would, then add garbage, a foreign JSON line and binary bytes. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size - 40), 0);
    char bad[800];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", events);
    FILE *f = fopen(bad, "w");
    fputs("this is not json\n{\"hello\":\"world\"}\n[1,2,3]\n{\"v\":1,\"type\":\"block\"\n\xff\xfe\x01\x02\n", f);
    fputs("{\"v\":1,\"type\":\"mystery\",\"pid\":1,\"tid\":1}\n{\"v\":1,\"type\":\"block\",\"pid\":1,\"tid\":1,\"duration_ms\":\"x\"}\n", f);
    fclose(f);

    struct run r;
    ck_assert_int_eq(report(&r, events, NULL), 0);
    /* The cut summary is gone; the four spans are still counted. */
    ck_assert_msg(strstr(r.out, "\nloopfix ") && strstr(r.out, "no summary"), "%s", r.out);
    ck_assert_msg(strstr(r.err, "elmon: warning: ") && strstr(r.err, "skipped 1 malformed"), "%s", r.err);
    ck_assert_msg(strstr(r.err, "skipped 3 malformed or truncated and 4 foreign"), "%s", r.err);
    run_free(&r);

    ck_assert_int_eq(report(&r, "--json", path, bad, NULL), 0);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_ptr_nonnull(v);
    ck_assert_double_eq(jv_num(v, "skipped_malformed", -1), 4);
    ck_assert_double_eq(jv_num(v, "skipped_foreign", -1), 4);
    const struct jval *loops = jv_get(v, "loops");
    ck_assert_int_eq(loops->n, 1);
    ck_assert_double_eq(jv_num(loops->items[0], "blocks_warning", -1), 4);
    jv_free(v);
    run_free(&r);

    /* Only garbage: nothing to summarise, yet no crash. */
    ck_assert_int_eq(report(&r, bad, NULL), 0);
    ck_assert_msg(strstr(r.out, "0 processes, 0 loop threads"), "%s", r.out);
    run_free(&r);
    free(path);
}
END_TEST

START_TEST(newer_schema_refused)
{
    char path[800];
    snprintf(path, sizeof path, "%s/new.jsonl", events);
    FILE *f = fopen(path, "w");
    fputs("{\"v\":3,\"type\":\"block\",\"pid\":5,\"tid\":5,\"duration_ms\":70,\"teleport\":true}\n", f);
    fclose(f);
    struct run r;
    ck_assert_int_eq(report(&r, path, NULL), 1);
    ck_assert_msg(strstr(r.err, "schema version 3") && strstr(r.err, "newer"), "%s", r.err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

START_TEST(unreadable_inputs)
{
    struct run r;
    ck_assert_int_eq(report(&r, "/nonexistent/events.jsonl", NULL), 1);
    ck_assert_msg(strstr(r.err, "No such file"), "%s", r.err);
    run_free(&r);
    ck_assert_int_eq(report(&r, events, NULL), 1);   /* empty directory */
    ck_assert_msg(strstr(r.err, "no events files"), "%s", r.err);
    run_free(&r);
    ck_assert_int_eq(report(&r, NULL), 2);
    run_free(&r);
}
END_TEST

START_TEST(span_that_never_ended)
{
    /* Stuck for ever after 100 ms, killed at 1.5 s: a block_begin, no block,
     * no summary.  The span still counts, with its duration at the crossing. */
    make_events((char *[]){"-n", "40", "-b", "100", "-s", NULL}, 1500);
    struct run r;
    ck_assert_int_eq(report(&r, "--json", events, NULL), 0);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_ptr_nonnull(v);
    const struct jval *l = jv_get(v, "loops")->items[0];
    ck_assert_int_eq(jv_bool(l, "summary", 1), 0);
    const struct jval *spans = jv_get(l, "worst_spans");
    ck_assert_int_eq(spans->n, 1);
    ck_assert_int_eq(jv_bool(spans->items[0], "ongoing", 0), 1);
    ck_assert_double_ge(jv_num(spans->items[0], "duration_ms", 0), 50);
    jv_free(v);
    run_free(&r);
}
END_TEST

/* A report holds every span of its files: each costs what its strings
 * need.  20,000 spans with a stack in an address space of 256 MiB (the
 * folded stack used to take a 64 KiB buffer per span: 1.3 GB). */
START_TEST(many_spans_bounded_memory)
{
    char *path = strf("%s/many.jsonl", events);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "{\"v\":2,\"type\":\"block\",\"pid\":7,\"tid\":7,\"thread\":\"t\",\"process\":\"p\","
                   "\"poller\":\"epoll_wait\",\"turn\":%d,\"start_unix_ns\":1,\"duration_ms\":60.000,\"lag_ms\":60.000,"
                   "\"severity\":\"warning\",\"end\":\"wait\",\"cause\":null,\"stack\":[{\"addr\":\"0x1\","
                   "\"module\":\"/srv/app\",\"offset\":\"0x1\",\"function\":\"work%d\"}],\"python\":[],"
                   "\"culprit\":\"work%d (app)\"}\n", i, i % 50, i % 50);
    ck_assert_int_eq(fclose(f), 0);
    /* A sanitizer's runtime reserves terabytes of shadow at start: there
     * the limit cannot be set, and the sanitizer stage checks memory
     * errors, not this bound (scripts/test-sanitizers). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    int sanitized = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    int sanitized = 1;
#else
    int sanitized = 0;
#endif
#else
    int sanitized = 0;
#endif
    if (sanitized)
        fprintf(stderr, "many_spans_bounded_memory: sanitized build, no address-space limit\n");
    char *cmd = strf("%s exec %s report --folded %s", sanitized ? "" : "ulimit -v 262144 &&", ELMON_CLI, path);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, NULL, 0, 60000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "status 0x%x: %.300s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "p;work7 24000\n"), "%.300s", r.out);
    run_free(&r);
    free(cmd);
    free(path);
}
END_TEST

/* n spans (a block_begin and a block each, 1 in 50 never ended), each
 * with a culprit and a stack of its own, on n / 5 loop threads: the shape
 * that made the report quadratic (a linear search per record for its loop,
 * per span for its culprit, per begin for its end). */
static char *scaling_input(int n)
{
    char *path = strf("%s/scale-%d.jsonl", events, n);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++) {
        int tid = 1000 + i % (n / 5), turn = i / (n / 5) + 1;
        const char *rec = "\"pid\":7,\"tid\":%d,\"thread\":\"t%d\",\"process\":\"p\",\"poller\":\"epoll_wait\","
                          "\"turn\":%d,\"start_unix_ns\":1,\"duration_ms\":%d.000,\"lag_ms\":60.000,\"severity\":\"warning\"";
        fprintf(f, "{\"v\":2,\"type\":\"block_begin\",");
        fprintf(f, rec, tid, tid, turn, 50);
        fprintf(f, ",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\",\"offset\":\"0x1\","
                   "\"function\":\"work%d\"},{\"addr\":\"0x2\",\"module\":\"/srv/app\",\"offset\":\"0x2\","
                   "\"function\":\"main\"}],\"python\":[],\"culprit\":\"work%d (app)\"}\n", i, i);
        if (i % 50 == 49)
            continue;
        fprintf(f, "{\"v\":2,\"type\":\"block\",");
        fprintf(f, rec, tid, tid, turn, 60);
        fprintf(f, ",\"end\":\"wait\",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\",\"offset\":\"0x1\","
                   "\"function\":\"work%d\"},{\"addr\":\"0x2\",\"module\":\"/srv/app\",\"offset\":\"0x2\","
                   "\"function\":\"main\"}],\"python\":[],\"culprit\":\"work%d (app)\"}\n", i, i);
    }
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The best of three wall times of argv, in ms. */
static double best_ms(char *const argv[])
{
    double best = 1e18;
    for (int k = 0; k < 3; k++) {
        struct run r;
        double t0 = mono_ms();
        ck_assert_int_eq(run_prog(argv, NULL, 0, 300000, &r), 0);
        double t = mono_ms() - t0;
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: status 0x%x: %.300s", argv[0], r.status,
                      r.err);
        run_free(&r);
        if (t < best)
            best = t;
    }
    return best;
}

/* Every report takes time linear in its input: from n to 4n spans its time
 * grows as a linear pass over the same files does (Python's json.loads of
 * each line, in the same run), not 16-fold.  On ef18058 (linear searches)
 * the text report grew 11.8-fold here (json.loads 3.8-fold). */
START_TEST(report_time_linear)
{
    int n = 8000;
    char *small = scaling_input(n), *big = scaling_input(4 * n);
    static const char *const modes[] = {"--text", "--json", "--folded"};
    char *py = "import json,sys\nfor l in open(sys.argv[1]): json.loads(l)\n";
    /* Python's start-up (an empty file) is taken off: it is most of the
     * small run. */
    char *empty = strf("%s/empty.jsonl", events);
    FILE *e = fopen(empty, "w");
    ck_assert_ptr_nonnull(e);
    fclose(e);
    double lin_0 = best_ms((char *[]){"python3", "-c", py, empty, NULL});
    double lin_s = best_ms((char *[]){"python3", "-c", py, small, NULL}) - lin_0;
    double lin_b = best_ms((char *[]){"python3", "-c", py, big, NULL}) - lin_0;
    double lin = lin_b / lin_s;
    free(empty);
    for (int m = 0; m < 3; m++) {
        char *mode = strcmp(modes[m], "--text") == 0 ? NULL : (char *)modes[m];
        double ts = best_ms((char *[]){ELMON_CLI, "report", mode ? mode : small, mode ? small : NULL, NULL});
        double tb = best_ms((char *[]){ELMON_CLI, "report", mode ? mode : big, mode ? big : NULL, NULL});
        fprintf(stderr, "report_time_linear: %s %d spans %.1f ms, %d spans %.1f ms: x%.2f (json.loads x%.2f: %.1f -> %.1f ms)\n",
                modes[m], n, ts, 4 * n, tb, tb / ts, lin, lin_s, lin_b);
        /* Quadratic grows about 12-fold here, linear 4-fold; the linear
         * pass's own figure is noisy (start-up taken off a short run), so
         * it counts for no less than 4. */
        double bound = 2.0 * (lin > 4.0 ? lin : 4.0);
        ck_assert_msg(tb / ts < bound, "%s grew x%.2f from %d to %d spans, a linear pass x%.2f", modes[m], tb / ts, n,
                      4 * n, lin);
    }
    free(small);
    free(big);
}
END_TEST

/* Whoever writes an events file (or names one) chooses its strings: ESC
 * sequences (a title change, a screen clear), BEL, CR, DEL, C1 controls
 * (U+009B is CSI) and bytes that are not UTF-8, in the process, the
 * thread, the status, the culprit, the frames and the file's name.  Text,
 * --json and --folded and the warnings carry none of them raw; JSON
 * keeps them, escaped. */
START_TEST(hostile_strings_escaped)
{
    char *path = strf("%s/ev\x1b]0;file\x07.jsonl", events);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("garbage to be warned about, naming the file\n", f);
    /* Named culprit, frames hostile too. */
    fputs("{\"v\":2,\"type\":\"block\",\"pid\":7,\"tid\":8,\"thread\":\"\\u001b]0;pwned\\u0007\",\"process\":\"p\\u001b[2Jq\","
          "\"poller\":\"epoll_wait\",\"turn\":1,\"start_unix_ns\":1,\"duration_ms\":60.0,\"lag_ms\":60.0,"
          "\"severity\":\"warning\",\"end\":\"wait\",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\","
          "\"offset\":\"0x1\",\"function\":\"evil\\u009b2J\x7f\\r\\n\\u001b[5m\"}],\"python\":[],"
          "\"culprit\":\"culprit\\u001b[2J\\u009b31m\\u0007\xff (app)\"}\n", f);
    /* No culprit named: the rule takes the hostile frame. */
    fputs("{\"v\":2,\"type\":\"block\",\"pid\":7,\"tid\":8,\"thread\":\"\\u001b]0;pwned\\u0007\",\"process\":\"p\\u001b[2Jq\","
          "\"poller\":\"epoll_wait\",\"turn\":2,\"start_unix_ns\":2,\"duration_ms\":70.0,\"lag_ms\":70.0,"
          "\"severity\":\"warning\",\"end\":\"wait\",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\","
          "\"offset\":\"0x1\",\"function\":\"frame\\u001b[2J\"}],\"python\":[],\"culprit\":null}\n", f);
    fputs("{\"v\":2,\"type\":\"summary\",\"pid\":7,\"tid\":8,\"thread\":\"\\u001b]0;pwned\\u0007\",\"process\":\"p\\u001b[2Jq\","
          "\"poller\":\"epoll_wait\",\"turns\":10,\"utilization\":0.5,\"lag_p50_ms\":1,\"lag_p90_ms\":2,\"lag_p99_ms\":3,"
          "\"lag_max_ms\":70,\"blocks_warning\":2,\"blocks_critical\":0,\"status\":\"\\u001b[5mok\"}\n", f);
    ck_assert_int_eq(fclose(f), 0);

    struct run r;
    ck_assert_int_eq(report(&r, events, NULL), 0);
    ck_assert_no_raw_control("report", r.out);
    ck_assert_no_raw_control("report's warnings", r.err);
    ck_assert_msg(strstr(r.out, "p\\x1b[2Jq ") && strstr(r.out, "\\x1b]0;pwned\\x07 (8)") &&
                      strstr(r.out, "\\x1b[5mok\n") && strstr(r.out, "culprit\\x1b[2J\\u009b31m\\x07\\xff (app)\n") &&
                      strstr(r.out, "frame\\x1b[2J"),
                  "not shown escaped:\n%s", r.out);
    ck_assert_msg(strstr(r.err, "ev\\x1b]0;file\\x07.jsonl: skipped 1 malformed"), "%s", r.err);
    run_free(&r);

    ck_assert_int_eq(report(&r, "--json", events, NULL), 0);
    ck_assert_no_raw_control("report --json", r.out);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_msg(v != NULL, "not JSON:\n%s", r.out);
    const struct jval *l = jv_get(v, "loops")->items[0];
    ck_assert_str_eq(jv_str(l, "thread", ""), "\x1b]0;pwned\x07");
    ck_assert_str_eq(jv_str(l, "process", ""), "p\x1b[2Jq");
    const struct jval *cu = jv_get(v, "culprits");
    int faithful = 0;
    for (size_t i = 0; i < cu->n; i++)
        faithful += strcmp(jv_str(cu->items[i], "culprit", ""), "culprit\x1b[2J\xc2\x9b" "31m\x07\xef\xbf\xbd (app)") == 0;
    ck_assert_msg(faithful == 1, "the culprit not carried, escaped, in JSON:\n%s", r.out);
    jv_free(v);
    run_free(&r);

    ck_assert_int_eq(report(&r, "--folded", events, NULL), 0);
    ck_assert_no_raw_control("report --folded", r.out);
    ck_assert_msg(strstr(r.out, "p\\x1b[2Jq;evil\\u009b2J\\x7f::\\x1b[5m 60\n") && strstr(r.out, "p\\x1b[2Jq;frame\\x1b[2J 70\n"),
                  "%s", r.out);
    run_free(&r);
    free(path);
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
    int n;
    char **lines = read_lines(path, &n);
    ck_assert_msg(lines && n >= 1, "%s is empty", path);
    ck_assert_msg(strncmp(lines[0], head, strlen(head)) == 0, "%s does not start with %s:\n%.300s", path, head,
                  lines[0]);
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        found = strstr(lines[i], has) != NULL;
    ck_assert_msg(found, "%s: no %s in it", path, has);
    free_lines(lines);
}

/* --html FILE and --speedscope FILE: both written beside the summary,
 * mode 0600 under umask 022; `-` is stdout; a symlink at FILE (to a file,
 * or dangling) is refused with a line naming it, its target untouched and
 * nothing created; a FILE that cannot be created is named; either is exit
 * status 1, the summary still printed. */
START_TEST(html_speedscope_files)
{
    umask(022);
    make_events((char *[]){"-n", "20", "-b", "60", "-e", "10", "-k", "sleep", NULL}, 30000);
    char *html = strf("%s/report.html", dir), *ss = strf("%s/report.speedscope.json", dir);
    static const char ss_head[] = "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"";
    struct run r;
    ck_assert_int_eq(report(&r, "--html", html, "--speedscope", ss, events, NULL), 0);
    ck_assert_msg(strstr(r.out, "1 process, 1 loop thread"), "no summary:\n%s", r.out);
    ck_assert_str_eq(r.err, "");
    run_free(&r);
    expect_private_file(html, "<!DOCTYPE html>", "fixture_sleep");
    expect_private_file(ss, ss_head, "fixture_sleep");

    ck_assert_int_eq(report(&r, "--speedscope", "-", events, NULL), 0);
    ck_assert_msg(strncmp(r.out, ss_head, strlen(ss_head)) == 0 && strstr(r.out, "fixture_sleep"),
                  "--speedscope -: stdout:\n%s", r.out);
    run_free(&r);

    char *target = strf("%s/target", dir), *link = strf("%s/link.html", dir);
    char *absent = strf("%s/absent", dir), *dangling = strf("%s/dangling.json", dir);
    FILE *f = fopen(target, "w");
    fputs("untouched\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(symlink(absent, dangling), 0);
    ck_assert_int_eq(report(&r, "--html", link, "--speedscope", dangling, events, NULL), 1);
    char *want = strf("elmon: cannot write %s: it is a symbolic link, not followed\n", link);
    ck_assert_msg(strstr(r.err, want), "no line naming %s:\n%s", link, r.err);
    free(want);
    want = strf("elmon: cannot write %s: it is a symbolic link, not followed\n", dangling);
    ck_assert_msg(strstr(r.err, want), "no line naming %s:\n%s", dangling, r.err);
    free(want);
    ck_assert_msg(strstr(r.out, "1 process, 1 loop thread"), "no summary:\n%s", r.out);
    run_free(&r);
    int n;
    char **lines = read_lines(target, &n);
    ck_assert_msg(lines && n == 1 && strcmp(lines[0], "untouched") == 0, "the link's target was written");
    free_lines(lines);
    ck_assert_msg(access(absent, F_OK) != 0, "%s created through the dangling link", absent);

    ck_assert_int_eq(report(&r, "--html", "/nonexistent/elmon-test/report.html", events, NULL), 1);
    ck_assert_msg(strstr(r.err, "elmon: cannot write /nonexistent/elmon-test/report.html: No such file or directory"),
                  "%s", r.err);
    ck_assert_msg(strstr(r.out, "1 process, 1 loop thread"), "no summary:\n%s", r.out);
    run_free(&r);
    free(target);
    free(link);
    free(absent);
    free(dangling);
    free(html);
    free(ss);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_report");
    TCase *tc = tcase_create("report");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, real_files_text_json_folded);
    tcase_add_test(tc, truncated_and_garbage);
    tcase_add_test(tc, newer_schema_refused);
    tcase_add_test(tc, unreadable_inputs);
    tcase_add_test(tc, span_that_never_ended);
    tcase_add_test(tc, many_spans_bounded_memory);
    tcase_add_test(tc, report_time_linear);
    tcase_add_test(tc, hostile_strings_escaped);
    tcase_add_test(tc, html_speedscope_files);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
