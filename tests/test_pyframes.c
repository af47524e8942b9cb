/*
 * Python frames read from the interpreter's memory (preload/record/
 * pyframes.c, pylayout.c; docs/STACKS.md "Python frames"), on every CPython
 * present: Debian's and each pyenv build.  Real interpreters under
 * LD_PRELOAD run tests/fixtures/pyframes.py; tests/fixtures/
 * pyframes_check.py reads the events file (the culprit lines are marked
 * in the fixture, so no line number is written here).
 *
 * Cases:
 *   frames    per version: a sleep and a pure-Python spin, each one span
 *             with the culprit at its function and line; both on a loop in
 *             a second thread; a 200-deep recursion (capped, marked); four
 *             coroutines awaiting one another; a non-ASCII function in a
 *             non-ASCII file; a generator; ctypes usleep(200 ms) and a
 *             ctypes read(2) that waits 200 ms: full length, no EINTR, the
 *             Python caller named.
 *   stress    per version: 1,200 callbacks spinning through small
 *             functions, read at 2 ms thresholds while another thread
 *             spins in its own: at least 1,000 reads, every one right or
 *             marked partial, never the other thread's frames, the host
 *             unharmed.
 *   layout    per version with headers: libelmon's layout against the
 *             interpreter's own internal headers (tests/pylayout_probe.c).
 *   unknown   CPython 3.6 and 3.7: native frames and exactly one warning;
 *             a renamed interpreter binary still gets its frames.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "support.h"

#define FIXTURE ELMON_SRC_DIR "/tests/fixtures/pyframes.py"
#define CHECKER ELMON_SRC_DIR "/tests/fixtures/pyframes_check.py"
#define PROBE ELMON_SRC_DIR "/tests/pylayout_probe.c"
#define DUMP ELMON_BIN_DIR "/pylayout_dump"
#define SYS_PYTHON "/usr/bin/python3"

static char *dir;

static void setup(void)
{
    dir = make_tmpdir("pyframes");
    ck_assert_ptr_nonnull(dir);
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

/* The versions libelmon reads (3.8 on); the others said and left out. */
static int supported(struct cpython *py, int n, const char *what)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (py[i].minor >= 8)
            py[k++] = py[i];
        else
            fprintf(stderr, "%s: skipped %s: %s\n", what, py[i].path,
                    py[i].minor < 0 ? "not CPython 3" : "older than 3.8 (the unknown case covers it)");
    }
    return k;
}

/* fixture MODE on python under libelmon, then the checker on its events:
 * both must succeed.  extra: more environment (NULL-terminated). */
static void run_mode(const struct cpython *py, const char *fixture, const char *mode, char *const *extra)
{
    char *evdir = strf("%s/ev", dir), *outfile = strf("%s/stdout", dir);
    char *rm = strf("rm -rf %s && mkdir %s", evdir, evdir);
    ck_assert_int_eq(system(rm), 0);
    char *events = strf("ELMON_EVENTS=%s/ev.%%p.jsonl", evdir);
    char *env[16] = {events, "ELMON_LOG=off", NULL};
    int ne = 2;
    for (int i = 0; extra && extra[i] && ne < 15; i++)
        env[ne++] = extra[i];
    env[ne] = NULL;
    char *argv[] = {(char *)py->path, (char *)fixture, (char *)mode, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, env, 1, 180000, &r), 0);
    ck_assert_msg(!r.timed_out, "3.%d %s timed out", py->minor, mode);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "3.%d %s: status %d: %.1500s", py->minor, mode,
                  r.status, r.err);
    ck_assert_msg(strstr(r.out, "done\n"), "3.%d %s: stdout %.500s", py->minor, mode, r.out);
    FILE *f = fopen(outfile, "w");
    ck_assert_ptr_nonnull(f);
    fputs(r.out, f);
    fclose(f);
    char *cargv[] = {SYS_PYTHON, CHECKER, (char *)mode, (char *)fixture, evdir, outfile, NULL};
    struct run c;
    ck_assert_int_eq(run_prog(cargv, NULL, 0, 60000, &c), 0);
    fprintf(stderr, "3.%d %s (%s):\n%s", py->minor, mode, py->path, c.out);
    ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "3.%d %s: %s%s", py->minor, mode, c.out, c.err);
    run_free(&c);
    run_free(&r);
    free(evdir);
    free(outfile);
    free(rm);
    free(events);
}

static const char *const frame_modes[] = {
    "sleep", "spin", "thread_sleep", "thread_spin", "deep", "coro", "gen", "ctypes_usleep", "ctypes_read",
};
#define N_FRAME_MODES (int)(sizeof frame_modes / sizeof frame_modes[0])

START_TEST(frames)
{
    struct cpython py[32];
    int n = supported(py, cpythons(py, 32), "frames");
    ck_assert_msg(n > 0, "no CPython 3.8 or later on this machine");
    /* The non-ASCII case runs from a copy of the fixture with a
     * non-ASCII name. */
    char *uni = strf("%s/ブロック_ü.py", dir);
    char *cp = strf("cp %s '%s'", FIXTURE, uni);
    ck_assert_int_eq(system(cp), 0);
    for (int i = 0; i < n; i++) {
        for (int m = 0; m < N_FRAME_MODES; m++)
            run_mode(&py[i], FIXTURE, frame_modes[m], NULL);
        run_mode(&py[i], uni, "unicode", NULL);
    }
    fprintf(stderr, "frames: %d Pythons, %d modes each\n", n, N_FRAME_MODES + 1);
    free(uni);
    free(cp);
}
END_TEST

START_TEST(stress)
{
    struct cpython py[32];
    int n = supported(py, cpythons(py, 32), "stress");
    ck_assert_msg(n > 0, "no CPython 3.8 or later on this machine");
    /* Every span read: no capture or report limit, a 2 ms threshold. */
    char *extra[] = {"ELMON_BLOCK_MS=2", "ELMON_CAPTURES_PER_MIN=0", "ELMON_REPORTS_PER_MIN=0",
                     "ELMON_REPORT_BYTES_PER_MIN=0", NULL};
    for (int i = 0; i < n; i++)
        run_mode(&py[i], FIXTURE, "stress", extra);
    fprintf(stderr, "stress: %d Pythons\n", n);
}
END_TEST

/* The probe built against prefix's headers for 3.minor, and run; NULL
 * when the headers are not there (said on stderr). */
static char *probe(const struct cpython *py)
{
    char *inc = strf("%s/include/python3.%d", py->prefix, py->minor);
    char *internal = strf("%s/internal/pycore_pystate.h", inc);
    char *out = NULL;
    if (access(internal, R_OK) != 0) {
        fprintf(stderr, "layout: skipped %s: no internal headers (%s)\n", py->path, internal);
    } else {
        char *bin = strf("%s/probe3%d", dir, py->minor);
        char *argv[] = {ELMON_CC, "-w", strf("-I%s", inc), strf("-I%s/internal", inc), PROBE, "-o", bin, NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, NULL, 0, 60000, &r), 0);
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "the probe does not build against %s:\n%s",
                      inc, r.err);
        run_free(&r);
        char *pargv[] = {bin, NULL};
        ck_assert_int_eq(run_prog(pargv, NULL, 0, 10000, &r), 0);
        out = strdup(r.out);
        run_free(&r);
        free(argv[2]);
        free(argv[3]);
        free(bin);
    }
    free(inc);
    free(internal);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* text's lines sorted (malloc'd): the probe and the dump print the same
 * fields in their own orders. */
static char *sorted(const char *text)
{
    char *copy = strdup(text), *lines[256], *save = NULL;
    int n = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 256; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, (size_t)n, sizeof lines[0], cmp_str);
    char *out = calloc(1, strlen(text) + 2);
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(copy);
    return out;
}

START_TEST(layout)
{
    struct cpython py[32];
    int n = supported(py, cpythons(py, 32), "layout"), checked = 0;
    for (int i = 0; i < n; i++) {
        char *raw = probe(&py[i]);
        if (!raw)
            continue;
        char *truth = sorted(raw);
        free(raw);
        struct run r;
        char minor[8];
        snprintf(minor, sizeof minor, "%d", py[i].minor);
        char *lib = strf("%s/lib/libpython3.%d.so.1.0", py[i].prefix, py[i].minor);
        if (py[i].minor >= 13) {
            /* Published by the interpreter: read from its library. */
            if (access(lib, R_OK) != 0) {
                fprintf(stderr, "layout: skipped %s: no %s to read the published offsets from\n", py[i].path, lib);
                free(lib);
                free(truth);
                continue;
            }
            char *argv[] = {DUMP, "published", lib, NULL};
            ck_assert_int_eq(run_prog(argv, NULL, 0, 10000, &r), 0);
        } else {
            char *argv[] = {DUMP, "builtin", minor, NULL};
            ck_assert_int_eq(run_prog(argv, NULL, 0, 10000, &r), 0);
        }
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "3.%d: no layout: %s", py[i].minor, r.err);
        char *ours = sorted(r.out);
        ck_assert_msg(strcmp(ours, truth) == 0, "3.%d (%s): libelmon's layout\n%s\nis not the headers'\n%s",
                      py[i].minor, py[i].prefix, ours, truth);
        free(ours);
        int fields = 0;
        for (const char *c = truth; *c; c++)
            fields += *c == '\n';
        fprintf(stderr, "layout: 3.%d (%s) matches its headers, %d fields\n", py[i].minor, py[i].prefix, fields - 1);
        checked++;
        run_free(&r);
        free(lib);
        free(truth);
    }
    ck_assert_msg(checked > 0, "no interpreter with internal headers to check a layout against");
    /* 3.14, which cannot run on this Debian (its glibc is too old): the
     * first bytes of Debian's python3.14 3.14.10's .PyRuntime section
     * (objcopy --only-section=.PyRuntime), against tests/pylayout_probe.c
     * built on that package's headers (both kept in tests/fixtures/). */
    {
        char *argv14[] = {DUMP, "published-bytes", ELMON_SRC_DIR "/tests/fixtures/pyruntime_3.14.10.bin", NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv14, NULL, 0, 10000, &r), 0);
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "3.14.10: no layout: %s", r.err);
        int nl = 0;
        char **want = read_lines(ELMON_SRC_DIR "/tests/fixtures/pylayout_3.14.10.txt", &nl);
        ck_assert_ptr_nonnull(want);
        char *joined = calloc(1, 8192);
        for (int k = 0; k < nl; k++) {
            strcat(joined, want[k]);
            strcat(joined, "\n");
        }
        char *truth = sorted(joined), *ours = sorted(r.out);
        ck_assert_msg(strcmp(ours, truth) == 0, "3.14.10: libelmon's layout\n%s\nis not the headers'\n%s", ours, truth);
        fprintf(stderr, "layout: 3.14.10 (Debian's bytes and headers) matches, %d fields\n", nl - 1);
        free(truth);
        free(ours);
        free(joined);
        free_lines(want);
        run_free(&r);
    }
    /* And a version with no table is refused, not guessed. */
    char *argv[] = {DUMP, "builtin", "7", NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, NULL, 0, 10000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2, "3.7 got a layout: %s", r.out);
    run_free(&r);
}
END_TEST

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* 3.6 and 3.7: a loop blocked 300 ms by time.sleep gets its span with
 * native frames, no Python frames, and one warning saying why. */
START_TEST(unknown_versions)
{
    struct cpython py[32];
    int n = cpythons(py, 32), ran = 0;
    char *script = strf("%s/old.py", dir);
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs("import asyncio, time\n"
          "loop = asyncio.new_event_loop()\n"
          "loop.call_soon(time.sleep, 0.3)\n"
          "loop.call_later(0.4, loop.stop)\n"
          "loop.run_forever()\n"
          "print('done')\n",
          f);
    fclose(f);
    for (int i = 0; i < n; i++) {
        if (py[i].minor < 0 || py[i].minor >= 8)
            continue;
        char *events = strf("ELMON_EVENTS=%s/old.%%p.jsonl", dir);
        char *env[] = {events, NULL};
        char *argv[] = {py[i].path, script, NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, env, 1, 60000, &r), 0);
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "3.%d: %s", py[i].minor, r.err);
        int warnings = count_lines(r.err, "elmon: warning:");
        ck_assert_msg(warnings == 1 && strstr(r.err, "Python frames left out"),
                      "3.%d: %d warnings, wanted one saying Python frames are left out:\n%.2000s", py[i].minor,
                      warnings, r.err);
        char **ev = lines_of(dir, "old.", NULL);
        int blocks = 0;
        for (int k = 0; ev[k]; k++)
            if (json_is(ev[k], "type", "block")) {
                blocks++;
                ck_assert_msg(strstr(ev[k], "\"python\":[]"), "3.%d: Python frames: %.600s", py[i].minor, ev[k]);
                ck_assert_msg(strstr(ev[k], "\"stack\":[{"), "3.%d: no native frames: %.600s", py[i].minor, ev[k]);
            }
        ck_assert_msg(blocks == 1, "3.%d: %d spans", py[i].minor, blocks);
        fprintf(stderr, "unknown: 3.%d (%s): one span, native frames, warning: %.*s\n", py[i].minor, py[i].path,
                (int)strcspn(strstr(r.err, "elmon: warning:"), "\n"), strstr(r.err, "elmon: warning:"));
        free_lines(ev);
        char *rm = strf("rm -f %s/old.*.jsonl", dir);
        ck_assert_int_eq(system(rm), 0);
        free(rm);
        run_free(&r);
        free(events);
        ran++;
    }
    if (!ran)
        fprintf(stderr, "unknown: no CPython older than 3.8 here; only the renamed binary is checked\n");
    /* A renamed interpreter: the layout comes from the process, not from a
     * name. */
    int renamed = 0;
    n = supported(py, n, "unknown (renamed)");
    for (int i = 0; i < n && !renamed; i++) {
        char *exe = strf("%s/bin/python3.%d", py[i].prefix, py[i].minor);
        if (strcmp(py[i].prefix, "/usr") == 0 || access(exe, X_OK) != 0) {
            free(exe);
            continue;
        }
        struct cpython copy = py[i];
        snprintf(copy.path, sizeof copy.path, "%s/myserver", dir);
        char *cp = strf("cp %s %s", exe, copy.path);
        ck_assert_int_eq(system(cp), 0);
        run_mode(&copy, FIXTURE, "sleep", NULL);
        renamed = 1;
        free(cp);
        free(exe);
    }
    ck_assert_msg(renamed, "no pyenv interpreter to rename");
    free(script);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pyframes");
    TCase *fr = tcase_create("frames");
    tcase_add_checked_fixture(fr, setup, teardown);
    tcase_add_test(fr, frames);
    suite_add_tcase(s, fr);
    TCase *st = tcase_create("stress");
    tcase_add_checked_fixture(st, setup, teardown);
    tcase_add_test(st, stress);
    suite_add_tcase(s, st);
    TCase *la = tcase_create("layout");
    tcase_add_checked_fixture(la, setup, teardown);
    tcase_add_test(la, layout);
    suite_add_tcase(s, la);
    TCase *un = tcase_create("unknown");
    tcase_add_checked_fixture(un, setup, teardown);
    tcase_add_test(un, unknown_versions);
    suite_add_tcase(s, un);
    return run_suite(s);
}
