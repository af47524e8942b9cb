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
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "events.h"
#include "json.h"
#include "report_check.h"
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

/* The whole file (malloc, NUL-terminated). */
static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    do {
        if (cap - n < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
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

    /* The page and the speedscope file of the same events: the four spans,
     * on the one loop thread, as report_check.h holds them. */
    char *page = strf("%s/real.html", dir), *ss = strf("%s/real.speedscope.json", dir);
    ck_assert_int_eq(report(&r, "--html", page, "--speedscope", ss, events, NULL), 0);
    run_free(&r);
    size_t len;
    char *text = read_whole(page, &len);
    const char *why = NULL;
    v = report_html_data(text, len, &why);
    ck_assert_msg(v != NULL, "%s", why);
    why = report_check_html_data(v);
    ck_assert_msg(why == NULL, "%s", why);
    ck_assert_int_eq(jv_get(v, "spans")->n, 4);
    ck_assert_int_eq(jv_get(v, "loops")->n, 1);
    ck_assert_int_ge(jv_get(v, "stacks")->n, 1);
    jv_free(v);
    free(text);
    text = read_whole(ss, &len);
    size_t profiles = 0;
    why = report_check_speedscope(text, len, &profiles);
    ck_assert_msg(why == NULL, "%s", why);
    ck_assert_int_eq(profiles, 1);
    free(text);
    free(page);
    free(ss);
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
    int sanitized = TESTS_SANITIZED;
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

/* n spans (a block_begin and a block each, 1 in 50 never ended) on
 * `threads` loop threads with `stacks` distinct culprits and stacks (0: one
 * of each per span, on n / 5 threads: the shape that made the report
 * quadratic, a linear search per record for its loop, per span for its
 * culprit, per begin for its end).  Lengths vary (60 to 156 ms) and
 * repeat, as real ones do. */
static char *spans_input(int n, int threads, int stacks)
{
    if (!threads)
        threads = n / 5;
    char *path = strf("%s/scale-%d-%d-%d.jsonl", events, n, threads, stacks);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++) {
        int tid = 1000 + i % threads, turn = i / threads + 1, c = stacks ? i % stacks : i;
        const char *rec = "\"pid\":7,\"tid\":%d,\"thread\":\"t%d\",\"process\":\"p\",\"poller\":\"epoll_wait\","
                          "\"turn\":%d,\"start_unix_ns\":%lld,\"duration_ms\":%d.000,\"lag_ms\":60.000,\"severity\":\"warning\"";
        long long start = 1796000000000000000ll + (long long)i * 1000000;
        fprintf(f, "{\"v\":2,\"type\":\"block_begin\",");
        fprintf(f, rec, tid, tid, turn, start, 50);
        fprintf(f, ",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\",\"offset\":\"0x1\","
                   "\"function\":\"work%d\"},{\"addr\":\"0x2\",\"module\":\"/srv/app\",\"offset\":\"0x2\","
                   "\"function\":\"main\"}],\"python\":[],\"culprit\":\"work%d (app)\"}\n", c, c);
        if (i % 50 == 49)
            continue;
        fprintf(f, "{\"v\":2,\"type\":\"block\",");
        fprintf(f, rec, tid, tid, turn, start, 60 + i % 97);
        fprintf(f, ",\"end\":\"wait\",\"cause\":null,\"stack\":[{\"addr\":\"0x1\",\"module\":\"/srv/app\",\"offset\":\"0x1\","
                   "\"function\":\"work%d\"},{\"addr\":\"0x2\",\"module\":\"/srv/app\",\"offset\":\"0x2\","
                   "\"function\":\"main\"}],\"python\":[],\"culprit\":\"work%d (app)\"}\n", c, c);
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

/* Python's json.loads of each line of small, then of big, start-up
 * (an empty file) taken off, as it is most of a small run: big's time over
 * small's, a linear pass over the same records. */
static double linear_pass(const char *small, const char *big, double *ms_small, double *ms_big)
{
    char *py = "import json,sys\nfor l in open(sys.argv[1]): json.loads(l)\n";
    char *empty = strf("%s/empty.jsonl", events);
    FILE *e = fopen(empty, "w");
    ck_assert_ptr_nonnull(e);
    fclose(e);
    double lin_0 = best_ms((char *[]){"python3", "-c", py, empty, NULL});
    *ms_small = best_ms((char *[]){"python3", "-c", py, (char *)small, NULL}) - lin_0;
    *ms_big = best_ms((char *[]){"python3", "-c", py, (char *)big, NULL}) - lin_0;
    free(empty);
    return *ms_big / *ms_small;
}

/* `elmon report MODE input`: text, --json and --folded to stdout, --html
 * and --speedscope to a file (stdout then has the text too, as users get
 * it). */
static double report_ms(const char *mode, const char *input)
{
    char *out = strf("%s/out.%s", dir, mode + 2);
    char *argv[6] = {ELMON_CLI, "report", NULL};
    int k = 2;
    if (strcmp(mode, "--text") != 0)
        argv[k++] = (char *)mode;
    if (strcmp(mode, "--html") == 0 || strcmp(mode, "--speedscope") == 0)
        argv[k++] = out;
    argv[k++] = (char *)input;
    argv[k] = NULL;
    double t = best_ms(argv);
    free(out);
    return t;
}

/* mode's time from n to 4n spans against the linear pass's growth lin.
 * Quadratic grows about 12- to 16-fold here, linear 4-fold (less for
 * --html past its listing's cap); the linear pass's own figure is noisy
 * (start-up taken off a short run), so it counts for no less than 4, and
 * twice that leaves room for a loaded 2-core machine. */
static void assert_linear(const char *mode, int n, const char *small, const char *big, double lin)
{
    double ts = report_ms(mode, small), tb = report_ms(mode, big);
    fprintf(stderr, "report_time_linear: %s %d spans %.1f ms, %d spans %.1f ms: x%.2f (json.loads x%.2f)\n", mode, n,
            ts, 4 * n, tb, tb / ts, lin);
    double bound = 2.0 * (lin > 4.0 ? lin : 4.0);
    ck_assert_msg(tb / ts < bound, "%s grew x%.2f from %d to %d spans, a linear pass x%.2f", mode, tb / ts, n, 4 * n,
                  lin);
}

/* Every report takes time linear in its input: from n to 4n spans its time
 * grows as a linear pass over the same files does (Python's json.loads of
 * each line, in the same run), not 16-fold.  On ef18058 (linear searches)
 * the text report grew 11.8-fold here (json.loads 3.8-fold).  --html lists
 * the 20,000 longest spans (html.c, HTML_MAX_SPANS): 8,000 to 32,000 spans
 * crosses that cap, 24,000 to 96,000 is past it at both ends, so the
 * selection runs at both sizes and on lengths that repeat. */
START_TEST(report_time_linear)
{
    static const char *const modes[] = {"--text", "--json", "--folded", "--html", "--speedscope"};
    int n = 8000;
    char *small = spans_input(n, 0, 0), *big = spans_input(4 * n, 0, 0);
    double ls, lb, lin = linear_pass(small, big, &ls, &lb);
    fprintf(stderr, "report_time_linear: json.loads %d spans %.1f ms, %d spans %.1f ms\n", n, ls, 4 * n, lb);
    for (int m = 0; m < 5; m++)
        assert_linear(modes[m], n, small, big, lin);
    unlink(small);
    unlink(big);
    free(small);
    free(big);

    n = 24000;
    small = spans_input(n, 0, 0);
    big = spans_input(4 * n, 0, 0);
    lin = linear_pass(small, big, &ls, &lb);
    fprintf(stderr, "report_time_linear: json.loads %d spans %.1f ms, %d spans %.1f ms\n", n, ls, 4 * n, lb);
    assert_linear("--html", n, small, big, lin);
    /* Both pages listed the cap, not every span. */
    for (int k = 0; k < 2; k++) {
        char *page = strf("%s/one.html", dir);
        struct run r;
        ck_assert_int_eq(report(&r, "--html", page, k ? big : small, NULL), 0);
        run_free(&r);
        size_t len;
        char *text = read_whole(page, &len);
        ck_assert_msg(strstr(text, "\"spans_listed\":20000,") && !strstr(text, "\"spans_total\":20000,"),
                      "the page of %d spans did not list 20,000 of them", k ? 4 * n : n);
        free(text);
        free(page);
    }
    free(small);
    free(big);
}
END_TEST

/* Peak RSS (kB) of argv, its stdout to /dev/null: VmHWM read at its exit
 * (a ptrace exit stop), so that it is the program's alone; getrusage's
 * ru_maxrss of a child also counts the image it was forked from. */
static long peak_rss_kb(char *const argv[])
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
            _exit(126);
        raise(SIGSTOP);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSTOPPED(st), "the child did not stop for ptrace (status 0x%x)", st);
    ck_assert_int_eq(ptrace(PTRACE_SETOPTIONS, pid, NULL,
                            (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)), 0);
    ck_assert_int_eq(ptrace(PTRACE_CONT, pid, NULL, NULL), 0);
    long hwm = -1;
    for (;;) {
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (!WIFSTOPPED(st))
            break;
        int sig = WSTOPSIG(st), event = st >> 16;
        if (event == PTRACE_EVENT_EXIT) {
            char path[64], line[256];
            snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
            FILE *f = fopen(path, "re");
            ck_assert_ptr_nonnull(f);
            while (fgets(line, sizeof line, f))
                if (strncmp(line, "VmHWM:", 6) == 0)
                    hwm = strtol(line + 6, NULL, 10);
            fclose(f);
        }
        if (event || sig == SIGTRAP)
            sig = 0;
        ck_assert_int_eq(ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig), 0);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s: status 0x%x", argv[0], argv[2], st);
    ck_assert_msg(hwm > 0, "no VmHWM read at exit");
    return hwm;
}

/* Memory is bounded by the distinct stacks, not by the records: four times
 * the spans on the same 50 stacks and 50 threads.  What may grow, by the
 * design of events.h: one struct ev_span per span (every output needs the
 * spans: the page lists the longest 20,000 and the speedscope file every
 * one), twice over for the arrays' doubling, plus 4 MB for the allocator
 * and stdio.  The records themselves (about 900 bytes each), their parsed
 * trees, their strings and every table (strings, culprits, stacks, frame
 * names, begins waiting for their end) must not: before this test, begins
 * were kept until the end and tables sized by the spans, 337 bytes a span. */
START_TEST(report_memory_bounded_by_stacks)
{
    int sanitized = TESTS_SANITIZED;
    if (sanitized) {
        /* ASan's quarantine and shadow grow RSS by design: the plain stage
         * holds this bound. */
        fprintf(stderr, "report_memory_bounded_by_stacks: sanitized build, RSS not bounded\n");
        return;
    }
    int n = 25000;
    char *small = spans_input(n, 50, 50), *big = spans_input(4 * n, 50, 50);
    char *out = strf("%s/mem.out", dir);
    static const char *const modes[] = {"--text", "--json", "--folded", "--html", "--speedscope"};
    long bound_kb = (long)((3.0 * n * 2 * sizeof(struct ev_span)) / 1024) + 4096;
    for (int m = 0; m < 5; m++) {
        long kb[2];
        for (int k = 0; k < 2; k++) {
            char *argv[6] = {ELMON_CLI, "report", NULL};
            int a = 2;
            if (m)
                argv[a++] = (char *)modes[m];
            if (m >= 3)
                argv[a++] = out;
            argv[a++] = k ? big : small;
            argv[a] = NULL;
            kb[k] = peak_rss_kb(argv);
        }
        fprintf(stderr, "report_memory_bounded_by_stacks: %s %d spans %ld kB, %d spans %ld kB: +%ld kB (%.0f bytes a span added; bound %ld kB)\n",
                modes[m], n, kb[0], 4 * n, kb[1], kb[1] - kb[0], (double)(kb[1] - kb[0]) * 1024 / (3.0 * n), bound_kb);
        ck_assert_msg(kb[1] - kb[0] < bound_kb, "%s: peak RSS grew %ld kB from %d to %d spans on 50 stacks (bound %ld kB)",
                      modes[m], kb[1] - kb[0], n, 4 * n, bound_kb);
    }
    free(out);
    free(small);
    free(big);
}
END_TEST

/* A span record of the content cases. */
static void put_span(FILE *f, const char *type, int tid, const char *thread, int turn, long long start, double ms,
                     const char *inner, const char *culprit)
{
    fprintf(f, "{\"v\":2,\"type\":\"%s\",\"pid\":9,\"tid\":%d,\"thread\":\"%s\",\"process\":\"srv \\\"q\\\"\","
               "\"poller\":\"epoll_wait\",\"turn\":%d,\"start_unix_ns\":%lld,\"duration_ms\":%.3f,\"lag_ms\":%.3f,"
               "\"severity\":\"%s\",\"end\":\"wait\",\"cause\":{\"class\":\"cpu\"},\"stack\":[{\"addr\":\"0x1\","
               "\"module\":\"/srv/app\",\"offset\":\"0x1\",\"function\":\"%s\"},{\"addr\":\"0x2\",\"module\":\"/srv/app\","
               "\"offset\":\"0x2\",\"function\":\"main\"}],\"python\":[],\"culprit\":\"%s\"}\n",
            type, tid, thread, turn, 1796000000000000000ll + start * 1000000, ms, ms, ms >= 500 ? "critical" : "warning",
            inner, culprit);
}

#define NAME_SCRIPT "net</script><script>window.x=1</script>"
#define NAME_UTF8 "r\xc3\xa9seau \xe6\x97\xa5\xe6\x9c\xac"        /* "réseau 日本" */
#define CULPRIT_A "parse</script> \\\"a\\\" (app.c)"             /* JSON text of: parse</script> "a" (app.c) */
#define CULPRIT_A_RAW "parse</script> \"a\" (app.c)"
#define FRAME_A "parse</script>\\\"\xc3\xa9"                    /* parse</script>"é */
#define FRAME_A_RAW "parse</script>\"\xc3\xa9"

/* Three loop threads: one named with a closing script element, three
 * spans of a frame with one too, and quotes; one named in non-ASCII with
 * two spans of another stack, written out of time order; one whose only
 * span never ended (a block_begin alone). */
static char *content_input(void)
{
    char *path = strf("%s/content.jsonl", events);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 3; i++) {
        put_span(f, "block_begin", 11, NAME_SCRIPT, i + 1, 1000 * i, 50, FRAME_A, CULPRIT_A);
        put_span(f, "block", 11, NAME_SCRIPT, i + 1, 1000 * i, 100 + 100 * i, FRAME_A, CULPRIT_A);
    }
    put_span(f, "block", 12, NAME_UTF8, 2, 5000, 80, "render", "render (app.c)");
    put_span(f, "block", 12, NAME_UTF8, 1, 4000, 600, "render", "render (app.c)");
    put_span(f, "block_begin", 13, "stuck", 1, 7000, 250, "spin", "spin (app.c)");
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const char *str_at(const struct jval *strings, const struct jval *ix)
{
    return ix->num < 0 ? NULL : strings->items[(size_t)ix->num]->str;
}

/* The page's data: every span, loop and stack of the file, names and
 * culprits carried exactly (quotes, non-ASCII), and nothing in the
 * element that ends it early (the browser test, report_browser, runs the
 * page; this is the file itself, in every stage). */
START_TEST(html_content)
{
    char *input = content_input(), *page = strf("%s/c.html", dir);
    struct run r;
    ck_assert_int_eq(report(&r, "--html", page, input, NULL), 0);
    run_free(&r);
    size_t len;
    char *text = read_whole(page, &len);
    /* Two elements end: the data and the script; the names' own are escaped. */
    int closes = 0;
    for (const char *p = text; (p = strstr(p, "</script>")); p++)
        closes++;
    ck_assert_int_eq(closes, 2);
    ck_assert_ptr_null(strstr(text, "window.x=1</"));
    ck_assert_ptr_nonnull(strstr(text, "net\\u003c/script\\u003e"));
    const char *why = NULL;
    struct jval *v = report_html_data(text, len, &why);
    ck_assert_msg(v != NULL, "%s", why);
    why = report_check_html_data(v);
    ck_assert_msg(why == NULL, "%s", why);
    const struct jval *loops = jv_get(v, "loops"), *spans = jv_get(v, "spans"), *stacks = jv_get(v, "stacks"),
                      *strings = jv_get(v, "strings");
    ck_assert_int_eq(loops->n, 3);
    ck_assert_str_eq(jv_str(loops->items[0], "thread", ""), NAME_SCRIPT);
    ck_assert_str_eq(jv_str(loops->items[0], "process", ""), "srv \"q\"");
    ck_assert_str_eq(jv_str(loops->items[1], "thread", ""), NAME_UTF8);
    ck_assert_double_eq(jv_num(v, "spans_total", -1), 6);
    ck_assert_int_eq(spans->n, 6);
    /* Per loop: spans, their blocked ms, the never-ended one. */
    double ms[3] = {0}, want_ms[3] = {100 + 200 + 300, 680, 250};
    int count[3] = {0}, want_count[3] = {3, 2, 1}, ongoing = 0, culprit_a = 0;
    for (size_t i = 0; i < spans->n; i++) {
        const struct jval *sp = spans->items[i];
        size_t l = (size_t)sp->items[0]->num;
        count[l]++;
        ms[l] += sp->items[2]->num;
        ongoing += sp->items[5]->num == 2;
        const char *cu = str_at(strings, sp->items[7]);
        ck_assert_ptr_nonnull(cu);
        culprit_a += strcmp(cu, CULPRIT_A_RAW) == 0;
        ck_assert_int_eq(sp->items[4]->num, sp->items[2]->num >= 500);
        ck_assert_str_eq(str_at(strings, sp->items[6]), "cpu");
    }
    for (int l = 0; l < 3; l++) {
        ck_assert_int_eq(count[l], want_count[l]);
        ck_assert_double_eq_tol(ms[l], want_ms[l], 0.01);
    }
    ck_assert_int_eq(ongoing, 1);
    ck_assert_int_eq(culprit_a, 3);
    /* Three stacks, weighted as --folded weighs them. */
    ck_assert_int_eq(stacks->n, 3);
    int seen = 0;
    for (size_t i = 0; i < stacks->n; i++) {
        const char *st = str_at(strings, stacks->items[i]->items[0]);
        double w = stacks->items[i]->items[1]->num;
        if (strcmp(st, "srv \"q\";main;" FRAME_A_RAW) == 0)
            seen |= 1 * (w == 600);
        else if (strcmp(st, "srv \"q\";main;render") == 0)
            seen |= 2 * (w == 680);
        else if (strcmp(st, "srv \"q\";main;spin") == 0)
            seen |= 4 * (w == 250);
    }
    ck_assert_msg(seen == 7, "stacks not as written (%d):\n%.2000s", seen, text);
    jv_free(v);
    free(text);
    free(page);
    free(input);
}
END_TEST

/* The speedscope file: one evented profile per loop thread, each span its
 * stack opened at its start and closed at its end, in time order even
 * when the file is not, names carried exactly. */
START_TEST(speedscope_content)
{
    char *input = content_input(), *out = strf("%s/c.speedscope.json", dir);
    struct run r;
    ck_assert_int_eq(report(&r, "--speedscope", out, input, NULL), 0);
    run_free(&r);
    size_t len;
    char *text = read_whole(out, &len);
    size_t n_profiles = 0;
    const char *why = report_check_speedscope(text, len, &n_profiles);
    ck_assert_msg(why == NULL, "%s:\n%.2000s", why, text);
    ck_assert_int_eq(n_profiles, 3);
    struct jval *v = jv_parse(text, len);
    ck_assert_ptr_nonnull(v);
    const struct jval *profiles = jv_get(v, "profiles"), *frames = jv_get(jv_get(v, "shared"), "frames");
    ck_assert_int_eq(frames->n, 4);   /* main, the parse frame, render, spin: each once */
    int have_a = 0;
    for (size_t i = 0; i < frames->n; i++)
        have_a += strcmp(jv_str(frames->items[i], "name", ""), FRAME_A_RAW) == 0;
    ck_assert_int_eq(have_a, 1);
    /* The profile shown first: the thread that blocked longest (680 ms). */
    ck_assert_double_eq(jv_num(v, "activeProfileIndex", -1), 1);
    static const char *const names[] = {"srv \"q\" 9 / " NAME_SCRIPT " (11)", "srv \"q\" 9 / " NAME_UTF8 " (12)",
                                        "srv \"q\" 9 / stuck (13)"};
    static const int spans[] = {3, 2, 1};
    static const double first_ms[] = {0, 4000, 7000}, end_ms[] = {2000 + 300, 5000 + 80, 7000 + 250};
    for (size_t p = 0; p < 3; p++) {
        const struct jval *pr = profiles->items[p], *ev = jv_get(pr, "events");
        ck_assert_str_eq(jv_str(pr, "name", ""), names[p]);
        ck_assert_str_eq(jv_str(pr, "unit", ""), "milliseconds");
        /* Outermost opens: one per span; the first at the thread's first
         * start, in ms from the run's first (thread 12's is its second
         * record, the 600 ms span). */
        int depth = 0, outer = 0;
        double first = -1;
        for (size_t e = 0; e < ev->n; e++) {
            int open = strcmp(jv_str(ev->items[e], "type", ""), "O") == 0;
            if (open && depth++ == 0) {
                outer++;
                if (first < 0)
                    first = jv_num(ev->items[e], "at", -1);
            }
            depth -= !open;
        }
        ck_assert_int_eq(outer, spans[p]);
        ck_assert_double_eq_tol(first, first_ms[p], 0.001);
        ck_assert_double_eq_tol(jv_num(pr, "endValue", -1), end_ms[p], 0.001);
    }
    jv_free(v);
    free(text);
    free(out);
    free(input);
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
    tcase_add_test(tc, report_memory_bounded_by_stacks);
    tcase_add_test(tc, html_content);
    tcase_add_test(tc, speedscope_content);
    tcase_add_test(tc, hostile_strings_escaped);
    tcase_add_test(tc, html_speedscope_files);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
