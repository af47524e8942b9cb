/*
 * Culprits on every runtime (docs/STACKS.md, "Culprits per runtime"): real
 * programs of each runtime under libelmon, each blocked in code of its
 * own, whose reports must name that code, or say honestly where in the
 * runtime the thread was, never the runtime's plumbing.
 *
 * Case "hosts" (programs this build did not build):
 *   java     the machine's JDK: a java.nio Selector loop (tests/fixtures/
 *            JavaSelector.java) spinning and sleeping in warmed-up methods,
 *            named from the perf map `jcmd PID Compiler.perfmap` writes; the
 *            same without a perf map (said so, with how to get names); an
 *            HttpServer whose handler spins on its dispatcher thread
 *   node     fs.readFileSync of a 600 MB file (the thread answers the
 *            capture signal only when its read(2) returns: a late answer,
 *            still the same span) and crypto.pbkdf2Sync, both named by the
 *            application's JavaScript function
 *   cpp      a C++ host: demangled names in the events, the human log, the
 *            folded stacks and OTLP, the raw symbol kept
 * Case "jit":
 *   jit      a JIT-like C program: a perf map rewritten between two captures
 *            names the second with the new name; code in anonymous memory
 *            that no map names is [jit], never a library's
 * Java and node cases say on stderr when their runtime is missing, and fail:
 * scripts/install-deps installs both.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "support.h"

static char *dir;
static char events_env[600];

static void setup(void)
{
    dir = make_tmpdir("runtimes");
    ck_assert_ptr_nonnull(dir);
    snprintf(events_env, sizeof events_env, "ELMON_EVENTS=%s/ev.%%p.jsonl", dir);
    /* node --perf-basic-prof writes a v8 log into the current directory. */
    ck_assert_int_eq(chdir(dir), 0);
}

static void teardown(void)
{
    if (chdir("/tmp") != 0)
        perror("chdir");
    remove_tree(dir);
    free(dir);
}

static void require(const char *prog)
{
    if (!have_prog(prog))
        ck_abort_msg("%s is not installed (scripts/install-deps installs it)", prog);
}

static char **all_events(void)
{
    char **ev = lines_of(dir, "ev.", NULL);
    ck_assert_msg(ev && ev[0], "no events file in %s", dir);
    const char *why = span_records_complete(ev);
    ck_assert_msg(!why, "%s", why);
    return ev;
}

/* The block records of at least min_ms, in file order (up to max). */
static int blocks(char **ev, double min_ms, const char **out, int max)
{
    int n = 0;
    for (int i = 0; ev[i] && n < max; i++)
        if (json_is(ev[i], "type", "block") && json_num(ev[i], "duration_ms") >= min_ms)
            out[n++] = ev[i];
    return n;
}

static const char *culprit(const char *rec)
{
    const char *c = json_get(rec, "culprit");
    return c ? c : "";
}

static void remove_perf_map(int pid)
{
    char map[64];
    snprintf(map, sizeof map, "/tmp/perf-%d.map", pid);
    unlink(map);
}

/* ---- the JVM ---- */

static char *classes;   /* where javac put the fixtures */

static void javac(void)
{
    require("javac");
    require("java");
    require("jcmd");
    classes = strf("%s/classes", dir);
    char *argv[] = {"javac", "-d", classes, ELMON_SRC_DIR "/tests/fixtures/JavaSelector.java",
                    ELMON_SRC_DIR "/tests/fixtures/JavaHttp.java", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, NULL, 0, 120000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "javac: %s", r.err);
    run_free(&r);
}

/* The port a fixture printed ("port N") into out_path, within 60 s. */
static int port_of(const char *out_path, pid_t pid)
{
    for (int i = 0; i < 600; i++) {
        int n = 0;
        char **l = read_lines(out_path, &n);
        int port = 0;
        for (int k = 0; l && k < n; k++)
            if (strncmp(l[k], "port ", 5) == 0)
                port = atoi(l[k] + 5);
        free_lines(l);
        if (port > 0)
            return port;
        ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "the JVM exited before listening");
        usleep(100000);
    }
    ck_abort_msg("no port from %s", out_path);
    return -1;
}

static int connect_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {30, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

/* One command line to the Selector fixture, and its "ok". */
static void say(int s, const char *line)
{
    ck_assert_int_eq(write(s, line, strlen(line)), (ssize_t)strlen(line));
    char buf[64];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = read(s, buf + n, 1);
        ck_assert_msg(k == 1, "no answer to %s", line);
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = 0;
    ck_assert_msg(strcmp(buf, "ok\n") == 0, "%s answered %s", line, buf);
}

static void perfmap(pid_t pid)
{
    char p[16];
    snprintf(p, sizeof p, "%d", (int)pid);
    char *argv[] = {"jcmd", p, "Compiler.perfmap", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, NULL, 0, 60000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "jcmd: %s%s", r.out, r.err);
    run_free(&r);
}

static pid_t java_start(const char *cls, const char *arg, char **out_path)
{
    *out_path = strf("%s/java.out", dir);
    char *argv[] = {"java", "-XX:+PreserveFramePointer", "-cp", classes, (char *)cls, (char *)arg, NULL};
    char *env[] = {events_env, "ELMON_BLOCK_MS=100", "ELMON_LOG=off", NULL};
    pid_t pid = spawn_prog(argv, env, 1, *out_path);
    ck_assert_int_gt(pid, 0);
    /* A map another process of this pid left would name nothing here. */
    remove_perf_map(pid);
    return pid;
}

/* The wait status once pid exits by itself (within ms), else after stop_prog. */
static int exit_status(pid_t pid, int ms)
{
    int st = 0;
    for (int i = 0; i < ms / 50; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(50000);
    }
    return stop_prog(pid, 2000);
}

static void java_quit(pid_t pid, int s)
{
    if (write(s, "quit\n", 5) != 5)
        perror("write");
    int st = exit_status(pid, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the JVM ended with status %#x", st);
    close(s);
    remove_perf_map(pid);
}

/* Nothing of the runtime is the culprit: no libjvm, libc, launcher or
 * HotSpot blob, unless in a statement of where the thread is ("in
 * libjvm.so: ..."). */
static void not_plumbing(const char *rec)
{
    const char *c = culprit(rec);
    if (strncmp(c, "in ", 3) == 0)
        return;
    static const char *const bad[] = {"libjvm", "libc.so", "libjli", "Interpreter", "StubRoutines", "_ZN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!strstr(c, bad[i]), "culprit %s names the runtime (%s)", c, bad[i]);
}

/* The Selector fixture, started and warmed: its handlers compiled (C2).
 * *s gets the connection to it. */
static pid_t selector_warmed(char **out, int *s)
{
    javac();
    pid_t pid = java_start("JavaSelector", NULL, out);
    *s = connect_to(port_of(*out, pid));
    for (int i = 0; i < 30; i++)
        say(*s, "warm\n");
    return pid;
}

START_TEST(java_selector_spin_and_sleep)
{
    char *out;
    int s;
    pid_t pid = selector_warmed(&out, &s);
    /* Then the map names the compiled handlers. */
    perfmap(pid);
    say(s, "spin 300\n");
    say(s, "sleep 300\n");
    java_quit(pid, s);
    char **ev = all_events();
    const char *b[8];
    int n = blocks(ev, 290, b, 8);
    ck_assert_msg(n == 2, "%d blocks of 290 ms or more", n);
    for (int i = 0; i < 2; i++) {
        fprintf(stderr, "java_selector: %s block: culprit %s\n", i ? "sleep" : "spin", culprit(b[i]));
        not_plumbing(b[i]);
        ck_assert_msg(strncmp(culprit(b[i]), "JavaSelector.", 13) == 0, "culprit %s is not the application's method: %.3000s",
                      culprit(b[i]), b[i]);
    }
    ck_assert_msg(json_is(b[0], "class", "cpu"), "spin: class %s", json_get(b[0], "class"));
    free_lines(ev);
    free(out);
}
END_TEST

START_TEST(java_selector_without_perf_map)
{
    char *out;
    int s;
    pid_t pid = selector_warmed(&out, &s);
    say(s, "spin 300\n");
    java_quit(pid, s);
    char **ev = all_events();
    const char *b[8];
    int n = blocks(ev, 290, b, 8);
    ck_assert_int_eq(n, 1);
    char *c = strdup(culprit(b[0]));
    fprintf(stderr, "java_without_perf_map: culprit %s\n", c);
    ck_assert_msg(strncmp(c, "in ", 3) == 0 && strstr(c, "JIT code no perf map names"), "culprit %s: %.3000s", c, b[0]);
    const char *note = json_get(b[0], "note");
    ck_assert_msg(note && strstr(note, "Compiler.perfmap") && strstr(note, "--perf-basic-prof"), "note %s", note);
    /* JIT frames are [jit], never a library (liblzma, libdw: what libelmon
     * itself loads, as an earlier version named them). */
    ck_assert_msg(strstr(b[0], "\"module\":\"[jit]\""), "no [jit] frame: %.3000s", b[0]);
    ck_assert_msg(!strstr(b[0], "liblzma") && !strstr(b[0], "libdw"), "a frame in a library libelmon loads: %.3000s", b[0]);
    free(c);
    free_lines(ev);
    free(out);
}
END_TEST

/* GET path from 127.0.0.1:port; the reply's first body line. */
static void http_get(int port, const char *path)
{
    int s = connect_to(port);
    char req[128];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    ck_assert_int_eq(write(s, req, (size_t)len), len);
    char buf[1024];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(s, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = 0;
    ck_assert_msg(strstr(buf, " 200 "), "GET %s: %s", path, buf);
    close(s);
}

START_TEST(java_httpserver_slow_handler)
{
    javac();
    char *out;
    pid_t pid = java_start("JavaHttp", "spin", &out);
    int port = port_of(out, pid);
    for (int i = 0; i < 3; i++)
        http_get(port, "/slow");
    perfmap(pid);
    http_get(port, "/slow");
    int s = connect_to(port);
    if (write(s, "GET /quit HTTP/1.0\r\n\r\n", 22) != 22)
        perror("write");
    int st = exit_status(pid, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the JVM ended with status %#x", st);
    close(s);
    remove_perf_map(pid);
    char **ev = all_events();
    const char *b[16];
    int n = blocks(ev, 290, b, 16);
    ck_assert_msg(n == 4, "%d blocks of 290 ms or more", n);
    /* The last, after the map: the handler's method, on the dispatcher. */
    const char *c = culprit(b[3]);
    fprintf(stderr, "java_httpserver: culprit %s\n", c);
    not_plumbing(b[3]);
    ck_assert_msg(strncmp(c, "JavaHttp.", 9) == 0, "culprit %s: %.3000s", c, b[3]);
    ck_assert_msg(json_is(b[3], "thread", "HTTP-Dispatcher"), "thread %s", json_get(b[3], "thread"));
    /* Before it, no frame of the application had a name: never plumbing. */
    for (int i = 0; i < 3; i++)
        not_plumbing(b[i]);
    free_lines(ev);
    free(out);
}
END_TEST

/* ---- node ---- */

static char **node_run(const char *script, const char *arg, struct run *r)
{
    require("node");
    char *argv[] = {"node", "--perf-basic-prof", "--interpreted-frames-native-stack", (char *)script, (char *)arg, NULL};
    char *env[] = {events_env, "ELMON_BLOCK_MS=50", "ELMON_LOG=off", NULL};
    ck_assert_int_eq(run_prog(argv, env, 1, 120000, r), 0);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "node: %s", r->err);
    char **ev = all_events();
    for (int i = 0; ev[i]; i++)
        if (json_is(ev[i], "type", "summary"))
            remove_perf_map((int)json_num(ev[i], "pid"));
    return ev;
}

START_TEST(node_readfilesync_answers_late)
{
    /* 600 MB in memory (tmpfs): one read(2) the thread spends on the CPU
     * in the kernel, where no signal is taken until it returns. */
    char *big = strf("/dev/shm/elmon-runtimes-%d.bin", (int)getpid());
    int fd = open(big, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 600; i++)
        ck_assert_int_eq(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);
    struct run r;
    char **ev = node_run(ELMON_SRC_DIR "/tests/fixtures/node_readfile.js", big, &r);
    unlink(big);
    ck_assert_msg(strstr(r.out, "node readfile done"), "%s", r.out);
    const char *b[4];
    int n = blocks(ev, 50, b, 4);
    ck_assert_msg(n >= 1, "no block");
    const char *rec = NULL;
    for (int i = 0; i < n; i++)
        if (!rec || json_num(b[i], "duration_ms") > json_num(rec, "duration_ms"))
            rec = b[i];
    /* json_get's answer lives until its next call: copies. */
    char *c = strdup(culprit(rec)), *note = json_get(rec, "note") ? strdup(json_get(rec, "note")) : NULL;
    fprintf(stderr, "node_readfilesync: %.1f ms, culprit %s, note %s\n", json_num(rec, "duration_ms"), c, note);
    ck_assert_msg(strstr(c, "loadAll"), "culprit %s: %.4000s", c, rec);
    ck_assert_msg(json_is(rec, "capture", "signal"), "capture %s", json_get(rec, "capture"));
    /* Either the answer came within the wait, or late and said so. */
    ck_assert_msg(!note || !strstr(note, "no answer") || strstr(note, "answered"), "note %s", note);
    free(c);
    free(note);
    free_lines(ev);
    run_free(&r);
    free(big);
}
END_TEST

START_TEST(node_pbkdf2sync_named)
{
    struct run r;
    char **ev = node_run(ELMON_SRC_DIR "/tests/fixtures/node_pbkdf2.js", NULL, &r);
    ck_assert_msg(strstr(r.out, "node pbkdf2 done"), "%s", r.out);
    const char *b[4];
    int n = blocks(ev, 100, b, 4);
    ck_assert_msg(n == 1, "%d blocks", n);
    fprintf(stderr, "node_pbkdf2sync: culprit %s\n", culprit(b[0]));
    ck_assert_msg(strstr(culprit(b[0]), "hashPassword"), "culprit %s: %.4000s", culprit(b[0]), b[0]);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- C++ ---- */

#define LOAD "app::Cache<int>::load(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)"
#define LOAD_SYM "_ZN3app5CacheIiE4loadERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"

START_TEST(cpp_names_demangled_everywhere)
{
    struct otlp_receiver rx;
    ck_assert_msg(receiver_start(&rx, dir, "ok", -1, NULL) == 0, "the OTLP receiver did not start; see %s", rx.log_path);
    char otlp[128], folded[600];
    snprintf(otlp, sizeof otlp, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d", rx.http);
    snprintf(folded, sizeof folded, "ELMON_FOLDED=%s/folded", dir);
    char *argv[] = {ELMON_BIN_DIR "/cpp_host", NULL};
    char *env[] = {events_env, folded, otlp, "OTEL_METRIC_EXPORT_INTERVAL=300", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, &r), 0);
    char **rl = receiver_stop(&rx);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && strstr(r.out, "cpp done 1"), "%s%s", r.out, r.err);
    char **ev = all_events();
    const char *b[4];
    ck_assert_int_eq(blocks(ev, 290, b, 4), 1);
    /* events: the culprit and the frame demangled, the raw symbol kept */
    ck_assert_msg(strncmp(culprit(b[0]), LOAD " (cpp_host.cpp:", strlen(LOAD) + 15) == 0, "culprit %s", culprit(b[0]));
    ck_assert_msg(strstr(b[0], "\"function\":\"" LOAD "\",\"symbol\":\"" LOAD_SYM "\""), "%.3000s", b[0]);
    ck_assert_msg(strstr(b[0], "\"function\":\"app::refill(app::Cache<int>&, std::__cxx11::basic_string<char, "
                               "std::char_traits<char>, std::allocator<char> > const&)\""), "%.3000s", b[0]);
    /* the human log (stderr), its culprit line and the frames */
    ck_assert_msg(strstr(r.err, "culprit: " LOAD), "%s", r.err);
    ck_assert_msg(strstr(r.err, "  " LOAD " (") && !strstr(r.err, "_ZN3app"), "%s", r.err);
    /* the folded stacks */
    int n = 0;
    char **fl = read_lines(strf("%s/folded", dir), &n);
    ck_assert_msg(fl && n >= 1, "no folded stacks");
    int found = 0;
    for (int i = 0; i < n; i++) {
        found |= strstr(fl[i], ";" LOAD) != NULL;
        ck_assert_msg(!strstr(fl[i], "_ZN3app"), "mangled: %s", fl[i]);
    }
    ck_assert_msg(found, "%s", fl[0]);
    /* OTLP */
    int logged = 0;
    for (int i = 0; rl && rl[i]; i++) {
        if (!json_is(rl[i], "rec", "log"))
            continue;
        const char *c = json_get(rl[i], "attr.eventloop.block.culprit");
        logged |= c && strncmp(c, LOAD, strlen(LOAD)) == 0;
    }
    ck_assert_msg(logged, "no OTLP log record names %s", LOAD);
    /* The demangler is linked in, not exported: a host with its own
     * libiberty keeps its own. */
    char *nm[] = {"nm", "-D", "--defined-only", ELMON_SO, NULL};
    struct run sy;
    ck_assert_int_eq(run_prog(nm, NULL, 0, 30000, &sy), 0);
    ck_assert_msg(strstr(sy.out, " epoll_wait"), "nm: %s", sy.err);
    static const char *const inner[] = {"demangle", "cplus_", "xmalloc", "xstrdup", "d_print"};
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++)
        ck_assert_msg(!strstr(sy.out, inner[i]), "libelmon.so exports libiberty's %s", inner[i]);
    run_free(&sy);
    free_lines(fl);
    free_lines(rl);
    free_lines(ev);
    run_free(&r);
}
END_TEST

/* ---- a JIT ---- */

START_TEST(jit_perf_map_rewritten_and_unnamed)
{
    char *argv[] = {ELMON_BIN_DIR "/jit_fix", NULL};
    char *env[] = {events_env, "ELMON_LOG=off", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && strstr(r.out, "done"), "%s%s", r.out, r.err);
    char **ev = all_events();
    const char *b[4];
    ck_assert_int_eq(blocks(ev, 250, b, 4), 3);
    /* The map as it was at each capture: rewritten whole in between, to the
     * same size. */
    ck_assert_msg(strcmp(culprit(b[0]), "jit_alpha") == 0, "first: %s: %.2000s", culprit(b[0]), b[0]);
    ck_assert_msg(strcmp(culprit(b[1]), "jit_omega") == 0, "second: %s: %.2000s", culprit(b[1]), b[1]);
    /* Code no map names: [jit], and the application's caller is named. */
    ck_assert_msg(strstr(b[2], "\"stack\":[{\"addr\":") && strstr(b[2], "\"module\":\"[jit]\""), "%.2000s", b[2]);
    const char *first = strstr(b[2], "\"module\":");
    ck_assert_msg(strncmp(first, "\"module\":\"[jit]\"", 16) == 0, "frame 0 is not [jit]: %.2000s", b[2]);
    /* Under TSan a signal that lands in uninstrumented code (this JIT code)
     * is handed to libelmon's handler only at the thread's next
     * instrumented call, with the ucontext of its arrival: the stack below
     * has moved on by then, and the walk ends in the JIT frame. */
    const char *pre = getenv("ELMON_TEST_PRELOAD_PREFIX");
    if (pre && strstr(pre, "tsan"))
        fprintf(stderr, "jit: under TSan, the caller of the unnamed JIT code is not checked (deferred signal)\n");
    else
        ck_assert_msg(strncmp(culprit(b[2]), "call_jit (jit_fix.c:", 20) == 0, "third: %s: %.2000s", culprit(b[2]), b[2]);
    free_lines(ev);
    run_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtimes");
    /* "hosts": programs not built by this build (the JVM, node, the C++
     * host built by the C++ compiler), which the TSan stage leaves out by
     * their tag, as it does every suite's hosts (scripts/test-sanitizers). */
    TCase *h = tcase_create("hosts");
    tcase_set_tags(h, "hosts");
    tcase_add_checked_fixture(h, setup, teardown);
    tcase_add_test(h, java_selector_spin_and_sleep);
    tcase_add_test(h, java_selector_without_perf_map);
    tcase_add_test(h, java_httpserver_slow_handler);
    tcase_add_test(h, node_readfilesync_answers_late);
    tcase_add_test(h, node_pbkdf2sync_named);
    tcase_add_test(h, cpp_names_demangled_everywhere);
    suite_add_tcase(s, h);
    TCase *t = tcase_create("jit");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, jit_perf_map_rewritten_and_unnamed);
    suite_add_tcase(s, t);
    return run_suite(s);
}
