/*
 * The span report and what renders it (common/culprit.c, fold.c,
 * span_json.c; preload/interpret/report.c; the sinks): one culprit rule,
 * one fold format, and every output of one run naming the same culprit.
 *
 * Units first (the rule and the formats on frames made here), then real
 * programs under libelmon: a CPython asyncio loop and a C epoll loop, whose
 * ELMON_FOLDED file must equal `elmon report --folded` of their events file,
 * and whose human log names the culprit on each span's first line.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "buf.h"
#include "culprit.h"
#include "fold.h"
#include "span.h"
#include "span_json.h"
#include "support.h"

#define PY_SRC ELMON_SRC_DIR "/tests/fixtures/stack_asyncio.py"
#define STACK_FIX ELMON_BIN_DIR "/stack_fix"

static struct elmon_frame_view fv(const char *module, const char *function, const char *file, int line)
{
    return (struct elmon_frame_view){module, function, file, line, 0x40};
}

START_TEST(culprit_python_first)
{
    struct elmon_py_view py[] = {{"/srv/app.py", "render_page", 5}, {"/srv/app.py", "handle", 20}};
    struct elmon_frame_view fr[] = {fv("/usr/bin/python3.11", "_PyEval_EvalFrameDefault", NULL, 0),
                                    fv("/srv/app", "main", "app.c", 3)};
    char out[128];
    int index;
    ck_assert_int_eq(elmon_culprit(py, 2, fr, 2, NULL, out, sizeof out, &index), ELMON_CULPRIT_PY);
    ck_assert_str_eq(out, "render_page (app.py:5)");
    ck_assert_int_eq(index, 0);
    /* Without Python frames, the innermost named native frame of the
     * application: the interpreter's own is not. */
    ck_assert_int_eq(elmon_culprit(py, 0, fr, 2, NULL, out, sizeof out, &index), ELMON_CULPRIT_NATIVE);
    ck_assert_str_eq(out, "main (app.c:3)");
    /* The interpreter's frames alone: where in it. */
    ck_assert_int_eq(elmon_culprit(py, 0, fr, 1, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in python3.11: _PyEval_EvalFrameDefault");
}
END_TEST

START_TEST(culprit_skips_the_runtime)
{
    struct elmon_frame_view fr[] = {
        fv("/usr/lib/x86_64-linux-gnu/libc.so.6", "clock_nanosleep", NULL, 0),
        fv("/opt/elmon/lib/libelmon.so", "nanosleep", NULL, 0),
        fv("/self/libmine.so", "wrapper", NULL, 0),
        fv("/srv/app", NULL, NULL, 0),
        fv("/srv/app", "work", "/src/app.c", 12),
    };
    char out[128];
    int index;
    ck_assert_int_eq(elmon_culprit(NULL, 0, fr, 5, "/self/libmine.so", out, sizeof out, &index), ELMON_CULPRIT_NATIVE);
    /* libc, libelmon by name, libelmon by path skipped; the unnamed frame
     * loses to the named one. */
    ck_assert_str_eq(out, "work (app.c:12)");
    ck_assert_int_eq(index, 4);
    /* Unnamed only: module+offset. */
    ck_assert_int_eq(elmon_culprit(NULL, 0, fr, 4, "/self/libmine.so", out, sizeof out, &index), ELMON_CULPRIT_NATIVE);
    ck_assert_str_eq(out, "app+0x40");
    ck_assert_int_eq(elmon_culprit(NULL, 0, fr, 0, NULL, out, sizeof out, &index), ELMON_CULPRIT_NONE);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(index, -1);
}
END_TEST

START_TEST(culprit_jit_function)
{
    struct elmon_frame_view fr[] = {
        fv("/usr/bin/node", "Builtins_LoadIC", NULL, 0),
        fv("/tmp/perf-4242.map", "JS:*spinFor /srv/app.js:3", NULL, 0),
        fv("/usr/bin/node", "main", NULL, 0),
    };
    char out[128];
    int index;
    ck_assert_int_eq(elmon_culprit(NULL, 0, fr, 3, NULL, out, sizeof out, &index), ELMON_CULPRIT_JIT);
    ck_assert_str_eq(out, "spinFor /srv/app.js:3");
    ck_assert_int_eq(index, 1);
}
END_TEST

#define JVM "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"
#define JLI "/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so"
#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define MAP "/tmp/perf-77.map"

/* The stacks a JVM and node gave under libelmon (JDK 17, Node 20): the
 * culprit is the application's code, or a statement of where in the
 * runtime the thread is, never the runtime's plumbing. */
START_TEST(culprit_never_runtime_plumbing)
{
    char out[512];
    int index;
    /* A compiled Java method spinning on System.nanoTime. */
    struct elmon_frame_view spin[] = {
        fv("[vdso: 77]", "__vdso_clock_gettime", NULL, 0), fv(LIBC, "clock_gettime@@GLIBC_2.17", NULL, 0),
        fv(JVM, "os::javaTimeNanos()", NULL, 0), fv(MAP, "long JavaSelector.spin(long)", NULL, 0),
        fv(MAP, "Interpreter", NULL, 0), fv(MAP, "StubRoutines (1)", NULL, 0),
        fv(JVM, "JavaCalls::call_helper(JavaValue*, methodHandle const&, JavaCallArguments*, JavaThread*)", NULL, 0),
        fv(JLI, "JavaMain", NULL, 0), fv(LIBC, "start_thread", NULL, 0),
    };
    ck_assert_int_eq(elmon_culprit(NULL, 0, spin, 9, NULL, out, sizeof out, &index), ELMON_CULPRIT_JIT);
    ck_assert_str_eq(out, "JavaSelector.spin(long)");
    ck_assert_int_eq(index, 3);
    /* Thread.sleep from a compiled method: the JDK's method is passed over. */
    struct elmon_frame_view nap[] = {
        fv(LIBC, "__futex_abstimed_wait_common", NULL, 0), fv(JVM, "os::PlatformEvent::park(long)", NULL, 0),
        fv(JVM, "JVM_Sleep", NULL, 0), fv(MAP, "void java.lang.Thread.sleep(long)", NULL, 0),
        fv(MAP, "void JavaSelector.nap(long)", NULL, 0), fv(JLI, "JavaMain", NULL, 0),
    };
    ck_assert_int_eq(elmon_culprit(NULL, 0, nap, 6, NULL, out, sizeof out, &index), ELMON_CULPRIT_JIT);
    ck_assert_str_eq(out, "JavaSelector.nap(long)");
    /* Interpreted Java (one "Interpreter" blob for every method): where in
     * the VM, not the blob, not libc, not the launcher. */
    nap[4] = fv(MAP, "Interpreter", NULL, 0);
    ck_assert_int_eq(elmon_culprit(NULL, 0, nap, 6, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in libjvm.so: os::PlatformEvent::park(long)");
    ck_assert_int_eq(index, 1);
    /* No perf map: JIT code with no name, said so. */
    nap[3] = fv(ELMON_JIT_MODULE, NULL, NULL, 0);
    nap[4] = fv(ELMON_JIT_MODULE, NULL, NULL, 0);
    ck_assert_int_eq(elmon_culprit(NULL, 0, nap, 6, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in libjvm.so: os::PlatformEvent::park(long), called from JIT code no perf map names");
    /* Spinning in JIT code: the JIT code first, then the VM's caller. */
    struct elmon_frame_view jspin[] = {fv(ELMON_JIT_MODULE, NULL, NULL, 0), fv(ELMON_JIT_MODULE, NULL, NULL, 0),
                                       fv(JVM, "JavaCalls::call_helper()", NULL, 0), fv(JLI, "JavaMain", NULL, 0)};
    ck_assert_int_eq(elmon_culprit(NULL, 0, jspin, 4, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in JIT code no perf map names, called from libjvm.so: JavaCalls::call_helper()");
    /* Unnamed JIT code and nothing named at all. */
    ck_assert_int_eq(elmon_culprit(NULL, 0, jspin, 2, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in JIT code no perf map names ([jit]+0x40)");
    struct elmon_frame_view bare[] = {fv(LIBC, NULL, NULL, 0)};
    ck_assert_int_eq(elmon_culprit(NULL, 0, bare, 1, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in libc.so.6+0x40");
    ck_assert(elmon_frames_jit_unnamed(nap, 6));
    ck_assert(!elmon_frames_jit_unnamed(spin, 9));
    /* node's fs.readFileSync: Node's own JavaScript (node:fs) is passed
     * over for the application's caller; an anonymous function. */
    struct elmon_frame_view rd[] = {
        fv(LIBC, "read", NULL, 0), fv("/usr/bin/node", "uv__fs_work", "../deps/uv/src/unix/fs.c", 476),
        fv(MAP, "Builtin:CEntry_Return1_ArgvOnStack_BuiltinExit", NULL, 0),
        fv(MAP, "JS:~readSync node:fs:708:18", NULL, 0), fv(MAP, "JS:~readFileSync node:fs:441:22", NULL, 0),
        fv(MAP, "JS:~ /srv/app.js:18:23", NULL, 0), fv(MAP, "JS:*loadAll /srv/app.js:6:17", NULL, 0),
    };
    ck_assert_int_eq(elmon_culprit(NULL, 0, rd, 7, NULL, out, sizeof out, &index), ELMON_CULPRIT_JIT);
    ck_assert_str_eq(out, "(anonymous) /srv/app.js:18:23");
    ck_assert_int_eq(index, 5);
    ck_assert_int_eq(elmon_culprit(NULL, 0, rd, 5, NULL, out, sizeof out, &index), ELMON_CULPRIT_RUNTIME);
    ck_assert_str_eq(out, "in node: uv__fs_work");
    /* The C++ runtime is the C library's kin: std::this_thread::sleep_for's
     * own frame is passed over for the application's caller. */
    struct elmon_frame_view cpp[] = {
        fv(LIBC, "nanosleep", NULL, 0), fv("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "std::this_thread::__sleep_for(std::chrono::duration<long, std::ratio<1l, 1l> >, std::chrono::duration<long, std::ratio<1l, 1000000000l> >)", NULL, 0),
        fv("/srv/app", "app::Cache<int>::load()", "cache.cpp", 9),
    };
    ck_assert_int_eq(elmon_culprit(NULL, 0, cpp, 3, NULL, out, sizeof out, &index), ELMON_CULPRIT_NATIVE);
    ck_assert_str_eq(out, "app::Cache<int>::load() (cache.cpp:9)");
}
END_TEST

/* Every non-method name of JDK 17's perf maps (86, from the maps of a
 * Selector loop and an HttpServer, tiered and -Xint) is HotSpot's own
 * code; a compiled method, JDK or not, is Java code. */
START_TEST(jvm_perf_map_blobs_are_runtime)
{
    int n = 0;
    char **names = read_lines(ELMON_SRC_DIR "/tests/fixtures/jdk17_perfmap_blobs.txt", &n);
    ck_assert_msg(names && n == 86, "%d names", n);
    for (int i = 0; i < n; i++) {
        struct elmon_frame_view f = fv(MAP, names[i], NULL, 0);
        ck_assert_msg(elmon_frame_class(&f, NULL) == ELMON_FR_JIT_RUNTIME, "%s: class %d", names[i],
                      elmon_frame_class(&f, NULL));
    }
    free_lines(names);
    struct elmon_frame_view m = fv(MAP, "long JavaHttp.slow(long)", NULL, 0);
    ck_assert_int_eq(elmon_frame_class(&m, NULL), ELMON_FR_JIT_APP);
    m = fv(MAP, "void sun.net.httpserver.ServerImpl$Exchange.run()", NULL, 0);
    ck_assert_int_eq(elmon_frame_class(&m, NULL), ELMON_FR_JIT_LIBRARY);
    m = fv(ELMON_JIT_MODULE, NULL, NULL, 0);
    ck_assert_int_eq(elmon_frame_class(&m, NULL), ELMON_FR_JIT_UNNAMED);
    m = fv("/srv/perf-tool.map.so", "f", NULL, 0);
    ck_assert_int_eq(elmon_frame_class(&m, NULL), ELMON_FR_APP);
}
END_TEST

START_TEST(vm_modules)
{
    ck_assert(elmon_frame_is_vm("/usr/bin/python3.11"));
    ck_assert(elmon_frame_is_vm("/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"));
    ck_assert(elmon_frame_is_vm("/usr/bin/node"));
    ck_assert(elmon_frame_is_vm("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"));
    ck_assert(elmon_frame_is_vm("/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so"));
    ck_assert(elmon_frame_is_vm("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"));
    ck_assert(!elmon_frame_is_vm("/usr/bin/javac-helper"));
    ck_assert(!elmon_frame_is_vm("/srv/pythonic"));
    ck_assert(!elmon_frame_is_vm("/srv/nodefix"));
    ck_assert(!elmon_frame_is_vm("/usr/lib/python3/dist-packages/_cffi_backend.so"));
    ck_assert(!elmon_frame_is_vm(NULL));
}
END_TEST

static const char *fold(const char *process, const struct elmon_py_view *py, int n_py,
                        const struct elmon_frame_view *fr, int n, const char *syscall)
{
    static char mem[1024];
    struct elmon_buf b;
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_fold_stack(&b, process, py, n_py, fr, n, syscall);
    return mem;
}

START_TEST(fold_format)
{
    struct elmon_py_view py[] = {{"/srv/a.py", "inner;x", 5}, {"/srv/b.py", "outer\nx", 20}};
    ck_assert_str_eq(fold("py;3", py, 2, NULL, 0, NULL), "py:3;outer:x (b.py);inner:x (a.py)");
    struct elmon_frame_view fr[] = {fv("/srv/app", "work", NULL, 0), fv("/srv/app", NULL, NULL, 0),
                                    fv(NULL, "main", NULL, 0)};
    ck_assert_str_eq(fold("app", NULL, 0, fr, 3, "read"), "app;main;app+0x40;work");
    ck_assert_str_eq(fold("app", NULL, 0, NULL, 0, "clock_nanosleep"), "app;[clock_nanosleep]");
    ck_assert_str_eq(fold("app", NULL, 0, NULL, 0, ""), "app;[not captured]");
    ck_assert_int_eq(elmon_fold_weight(0.2), 1);
    ck_assert_int_eq(elmon_fold_weight(1.5), 2);
    ck_assert_int_eq(elmon_fold_weight(2.499), 2);
    ck_assert_int_eq(elmon_fold_weight(-3), 1);
    /* The milliseconds every output derives its weight from survive the
     * events file's %.3f and a read back exactly, ties included. */
    uint64_t ns[] = {1499600, 1500499, 1000500, 2345678901ull, 999, 0, 60000000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%.3f", elmon_ms3(ns[i]));
        ck_assert_msg(strtod(text, NULL) == elmon_ms3(ns[i]), "%llu ns: %s", (unsigned long long)ns[i], text);
    }
    ck_assert_int_eq(elmon_fold_weight(elmon_ms3(1499600)), 2);   /* 1.500 ms, as printed */
}
END_TEST

START_TEST(json_of_a_report)
{
    struct elmon_span_report *r = calloc(1, sizeof *r);
    struct elmon_arena a;
    elmon_arena_init(&a, r->text, sizeof r->text);
    r->stack_ms = r->handler_us = r->handler_cpu_us = r->cause.cpu_ms = -1;
    char mem[2048];
    struct elmon_buf b;
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_span_json_members(&b, r);
    ck_assert_str_eq(mem, ",\"cause\":null,\"stack\":[],\"python\":[],\"task\":null,\"culprit\":null");
    r->captured = 1;
    snprintf(r->how, sizeof r->how, "proc");
    snprintf(r->cause.cls, sizeof r->cause.cls, "io");
    r->cause.state = 'S';
    snprintf(r->cause.syscall, sizeof r->cause.syscall, "read");
    r->cause.cpu_ms = 1.25;
    r->stack_ms = 0.5;
    r->py_read_us = 42.5;
    r->n_py = 1;
    r->py[0].file = elmon_arena_put(&a, "/srv/a\"b.py", 11);
    r->py[0].function = elmon_arena_put(&a, "f", 1);
    r->py[0].line = 7;
    r->n_frames = 1;
    r->frames[0].addr = 0x1234;
    r->frames[0].offset = 0x34;
    r->frames[0].module = elmon_arena_put(&a, "/srv/app", 8);
    r->culprit = elmon_arena_put(&a, "f (a\"b.py:7)", 12);
    r->task = elmon_arena_put(&a, "main (a.py:3)", 13);
    r->text_len = a.len;
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_span_json_members(&b, r);
    ck_assert_str_eq(mem, ",\"cause\":{\"class\":\"io\",\"state\":\"S\",\"syscall\":\"read\",\"cpu_ms\":1.250,"
                          "\"capture\":\"proc\",\"note\":null,\"stack_ms\":0.500,\"handler_us\":null,\"handler_cpu_us\":null,"
                          "\"python_read_us\":42.5},"
                          "\"stack\":[{\"addr\":\"0x1234\",\"module\":\"/srv/app\",\"build_id\":null,\"offset\":\"0x34\","
                          "\"function\":null,\"symbol\":null,\"file\":null,\"line\":null}],"
                          "\"python\":[{\"file\":\"/srv/a\\\"b.py\",\"line\":7,\"function\":\"f\"}],"
                          "\"task\":\"main (a.py:3)\",\"culprit\":\"f (a\\\"b.py:7)\"");
    /* A copy by its used length reads the same. */
    size_t len = elmon_span_report_len(r);
    ck_assert_uint_lt(len, 8192);
    struct elmon_span_report *copy = calloc(1, sizeof *copy);
    memcpy(copy, r, len);
    char mem2[2048];
    elmon_buf_init(&b, mem2, sizeof mem2);
    elmon_span_json_members(&b, copy);
    ck_assert_str_eq(mem, mem2);
    /* An offset outside the used text is no string. */
    ck_assert_ptr_null(elmon_span_str(r, r->text_len + 5));
    ck_assert_ptr_null(elmon_span_str(r, 0));
    free(copy);
    free(r);
}
END_TEST

/* ---- real programs ---- */

/* "stack weight" lines summed by stack, sorted: what a flame graph sees. */
static char *aggregate(char **lines, int n)
{
    struct {
        char *stack;
        long w;
    } *v = calloc((size_t)n + 1, sizeof *v);
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *sp = strrchr(lines[i], ' ');
        if (!sp)
            continue;
        *sp = 0;
        long w = atol(sp + 1);
        int j = 0;
        while (j < k && strcmp(v[j].stack, lines[i]) != 0)
            j++;
        if (j == k)
            v[k++].stack = lines[i];
        v[j].w += w;
    }
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (strcmp(v[b].stack, v[a].stack) < 0) {
                char *s = v[a].stack;
                long w = v[a].w;
                v[a] = v[b];
                v[b].stack = s;
                v[b].w = w;
            }
    size_t cap = 1;
    for (int a = 0; a < k; a++)
        cap += strlen(v[a].stack) + 24;
    char *out = calloc(1, cap);
    for (int a = 0; a < k; a++)
        sprintf(out + strlen(out), "%s %ld\n", v[a].stack, v[a].w);
    free(v);
    return out;
}

static char **split_lines(char *text, int *n)
{
    int cap = 16;
    char **v = calloc((size_t)cap, sizeof *v);
    *n = 0;
    for (char *save = NULL, *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (*n + 1 >= cap)
            v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[(*n)++] = ln;
    }
    return v;
}

struct traced {
    struct run r;
    char *dir, *events, *folded;
};

static void trace(struct traced *t, char *const argv[], const char *extra_env)
{
    t->dir = make_tmpdir("span");
    t->events = strf("%s/events.jsonl", t->dir);
    t->folded = strf("%s/folded.txt", t->dir);
    char *ev = strf("ELMON_EVENTS=%s", t->events), *fo = strf("ELMON_FOLDED=%s", t->folded);
    char *env[] = {ev, fo, "ELMON_LOG=stderr", (char *)extra_env, NULL};
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, &t->r), 0);
    ck_assert_msg(!t->r.timed_out && WIFEXITED(t->r.status) && WEXITSTATUS(t->r.status) == 0, "status %d: %s",
                  t->r.status, t->r.err);
    free(ev);
    free(fo);
}

static void traced_free(struct traced *t)
{
    char *rm[] = {"rm", "-rf", t->dir, NULL};
    struct run r;
    run_prog(rm, NULL, 0, 10000, &r);
    run_free(&r);
    run_free(&t->r);
    free(t->dir);
    free(t->events);
    free(t->folded);
}

/* ELMON_FOLDED, summed by stack, is `elmon report --folded` of the same
 * run, byte for byte: one fold format, one weight. */
static void folded_equals_report(struct traced *t, const char *want_frame)
{
    int n;
    char **lines = read_lines(t->folded, &n);
    ck_assert_msg(lines && n >= 1, "no ELMON_FOLDED lines: %s", t->r.err);
    char *mine = aggregate(lines, n);
    ck_assert_msg(strstr(mine, want_frame), "no %s in ELMON_FOLDED:\n%s", want_frame, mine);
    struct run rep;
    char *argv[] = {ELMON_CLI, "report", "--folded", t->events, NULL};
    ck_assert_int_eq(run_prog(argv, NULL, 0, 30000, &rep), 0);
    ck_assert_msg(WIFEXITED(rep.status) && WEXITSTATUS(rep.status) == 0, "elmon report: %s", rep.err);
    int m;
    char **rl = split_lines(rep.out, &m);
    char *theirs = aggregate(rl, m);
    ck_assert_msg(strcmp(mine, theirs) == 0, "ELMON_FOLDED:\n%s\nelmon report --folded:\n%s", mine, theirs);
    free(rl);
    free(mine);
    free(theirs);
    run_free(&rep);
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* Each ended span's first human line, the events record and the folded
 * stack's innermost frame name the same code. */
static void same_culprit_everywhere(struct traced *t, const char *want)
{
    int n;
    char **ev = read_lines(t->events, &n);
    int blocks = 0;
    for (int i = 0; i < n; i++) {
        if (!json_is(ev[i], "type", "block"))
            continue;
        const char *c = json_get(ev[i], "culprit");
        if (!c || !strstr(c, want))
            continue;
        blocks++;
        /* The human line of this span, first line, ends with the culprit. */
        char *first = strf("culprit: %s\n", c);
        ck_assert_msg(strstr(t->r.err, first), "no human first line ending in '%s':\n%.3000s", first, t->r.err);
        free(first);
    }
    ck_assert_msg(blocks >= 1, "no block record names %s", want);
    for (int i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

START_TEST(python_outputs_agree)
{
    ck_assert_msg(access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3 (scripts/install-deps installs it)");
    struct traced t;
    char *argv[] = {"/usr/bin/python3", PY_SRC, NULL};
    trace(&t, argv, NULL);
    folded_equals_report(&t, "_handler (stack_asyncio.py)");
    same_culprit_everywhere(&t, "hash_handler (stack_asyncio.py:");
    traced_free(&t);
}
END_TEST

START_TEST(native_outputs_agree)
{
    struct traced t;
    char *argv[] = {STACK_FIX, "busy", NULL};
    trace(&t, argv, NULL);
    folded_equals_report(&t, ";stack_busy_cpu");
    same_culprit_everywhere(&t, "stack_busy_cpu (stack_fix.c:");
    traced_free(&t);
}
END_TEST

/* Lines of the human text of the span whose first line names culprit. */
static int span_text(const char *err, const char *culprit, int *frames, int *folded_lines)
{
    const char *p = strstr(err, culprit);
    if (!p)
        return -1;
    p = strchr(p, '\n');
    *frames = *folded_lines = 0;
    while (p && strncmp(p, "\n    ", 5) == 0) {
        const char *line = p + 5;
        if (*line == '#' && strstr(line, " frames of ") && strstr(line, " frames of ") < strchr(line, '\n'))
            (*folded_lines)++;
        else if (*line == '#')
            (*frames)++;
        p = strchr(line, '\n');
    }
    return 0;
}

/* In a CPython host the interpreter's own frames are counted, not listed,
 * after the Python frames; ELMON_LOG_FRAMES=all lists every one. */
START_TEST(human_folds_runtime_frames)
{
    ck_assert_msg(access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3");
    char *argv[] = {"/usr/bin/python3", PY_SRC, NULL};
    struct traced s, a;
    trace(&s, argv, NULL);
    trace(&a, argv, "ELMON_LOG_FRAMES=all");
    int fs, ls, fa, la;
    ck_assert_msg(span_text(s.r.err, "culprit: hash_handler (", &fs, &ls) == 0, "%.2000s", s.r.err);
    ck_assert_msg(span_text(a.r.err, "culprit: hash_handler (", &fa, &la) == 0, "%.2000s", a.r.err);
    ck_assert_msg(ls >= 1, "short: no counted runtime frames (%d listed):\n%.4000s", fs, s.r.err);
    ck_assert_msg(la == 0 && fa > fs, "all: %d listed, %d counted; short: %d listed\n%.4000s", fa, la, fs, a.r.err);
    /* The Python frames come first, right under the first line. */
    const char *first = strstr(s.r.err, "culprit: hash_handler (");
    ck_assert_msg(strncmp(strchr(first, '\n'), "\n    py hash_handler (", 22) == 0, "%.600s", first);
    traced_free(&s);
    traced_free(&a);
}
END_TEST

/* Every sink is in the pipeline's table; one that writes nothing says so
 * and why (ELMON_VERBOSE), never silence. */
START_TEST(sinks_say_when_off)
{
    char *argv[] = {STACK_FIX, "busy", NULL};
    char *env[] = {"ELMON_VERBOSE=1", "ELMON_EVENTS=", "ELMON_FOLDED=", "ELMON_STATS=0", "OTEL_EXPORTER_OTLP_ENDPOINT=",
                   "OTEL_METRICS_EXPORTER=", "OTEL_LOGS_EXPORTER=", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, &r), 0);
    const char *want = "elmon: sinks: events off (ELMON_EVENTS unset), log on, folded off (ELMON_FOLDED unset), "
                       "stats off (ELMON_STATS=0), otlp off (no OTEL_* exporter or endpoint)\n";
    ck_assert_msg(strstr(r.err, want), "no '%s' in:\n%.2000s", want, r.err);
    run_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("span");
    TCase *u = tcase_create("units");
    tcase_add_test(u, culprit_python_first);
    tcase_add_test(u, culprit_skips_the_runtime);
    tcase_add_test(u, culprit_jit_function);
    tcase_add_test(u, vm_modules);
    tcase_add_test(u, culprit_never_runtime_plumbing);
    tcase_add_test(u, jvm_perf_map_blobs_are_runtime);
    tcase_add_test(u, fold_format);
    tcase_add_test(u, json_of_a_report);
    suite_add_tcase(s, u);
    TCase *p = tcase_create("programs");
    tcase_set_timeout(p, 300);
    tcase_add_test(p, python_outputs_agree);
    tcase_add_test(p, native_outputs_agree);
    tcase_add_test(p, human_folds_runtime_frames);
    tcase_add_test(p, sinks_say_when_off);
    suite_add_tcase(s, p);
    return run_suite(s);
}
