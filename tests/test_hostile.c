/*
 * Hosts that are hostile to libelmon without meaning it: they close every
 * descriptor they did not open and reuse the numbers, dup2 onto numbers
 * they find in /proc/self/fd, confine themselves with seccomp, sleep in
 * slices a capture signal can cut short, sleep in C from CPython, or run
 * with output paths that lead through a planted symlink, into procfs or
 * to a hard link.  Real programs under LD_PRELOAD=libelmon.so
 * (tests/fixtures/hostile_fix.c, hostile_fds.py, hostile_usleep.py and
 * loopfix).  Each test names the behaviour it holds libelmon to:
 *
 *   fds      libelmon's descriptors are not the host's: its close,
 *            close_range and closefrom leave them alone, so the host's
 *            files hold only what the host wrote and libelmon keeps
 *            reporting into its own; a dup2 onto one is the host's, and
 *            the output is reopened or stopped with one warning.
 *   seccomp  a host that installs a seccomp filter runs exactly as without
 *            libelmon, with at most one warning.
 *   signals  a capture signal never cuts a host's sleep short.
 *   paths    an output path is never followed through a symlink in any
 *            component, never written on procfs, never through a hard
 *            link; one warning naming the variable each time.
 *
 * Bounds hold on a loaded 2-core machine: the runs take well under a
 * second each; their deadlines are several seconds.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "support.h"

#define FIX ELMON_BIN_DIR "/hostile_fix"
#define LOOPFIX ELMON_BIN_DIR "/loopfix"
#define PY_FDS ELMON_SRC_DIR "/tests/fixtures/hostile_fds.py"
#define PY_USLEEP ELMON_SRC_DIR "/tests/fixtures/hostile_usleep.py"
#define SYS_PYTHON "/usr/bin/python3"

static char *dir;

static void setup(void)
{
    dir = make_tmpdir("hostile");
    ck_assert_ptr_nonnull(dir);
    ck_assert_int_eq(chdir(dir), 0);
    /* The live stats files of every run land here, nowhere else. */
    char *sd = strf("%s/stats", dir);
    setenv("ELMON_STATS_DIR", sd, 1);
    free(sd);
}

static void teardown(void)
{
    if (chdir("/") != 0)
        fprintf(stderr, "chdir /\n");
    remove_tree(dir);
    free(dir);
}

/* ---------------------------------------------------------- helpers */

static int exited_ok(const struct run *r)
{
    return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static const char *how_ended(const struct run *r)
{
    static char ring[4][96];
    static int next;
    char *s = ring[next++ % 4];
    if (r->timed_out)
        snprintf(s, sizeof ring[0], "killed at the deadline after %.0f ms", r->wall_ms);
    else if (WIFSIGNALED(r->status))
        snprintf(s, sizeof ring[0], "killed by signal %d (%s) after %.0f ms", WTERMSIG(r->status),
                 strsignal(WTERMSIG(r->status)), r->wall_ms);
    else
        snprintf(s, sizeof ring[0], "exit %d after %.0f ms", WEXITSTATUS(r->status), r->wall_ms);
    return s;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    size_t k;
    while ((k = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2)
            b = realloc(b, cap *= 2);
    }
    b[len] = 0;
    fclose(f);
    return b;
}

static int count_str(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Lines of text (one string) starting with "elmon: warning:" that contain
 * needle (any, when NULL). */
static int warnings_naming(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strncmp(p, "elmon: warning:", 15) == 0) {
            char *line = strndup(p, len);
            n += !needle || strstr(line, needle);
            free(line);
        }
        p += len + (e ? 1 : 0);
    }
    return n;
}

/* The value of "key N" on a line of the program's stdout, or -1. */
static long long out_num(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    if (!p)
        return -1;
    return strtoll(p + strlen(key), NULL, 10);
}

static long long rec_ll(const char *line, const char *key)
{
    const char *v = json_get(line, key);
    return v ? strtoll(v, NULL, 10) : -1;
}

/* Records of type whose span started after t_ns. */
static int count_after(char **lines, const char *type, long long t_ns)
{
    int n = 0;
    for (int i = 0; lines && lines[i]; i++)
        n += json_is(lines[i], "type", type) && rec_ll(lines[i], "start_unix_ns") > t_ns;
    return n;
}

static void free_env(char **e)
{
    for (int i = 0; e[i]; i++)
        free(e[i]);
}

/* -------------------------------------------------------------- fds */

static const char *close_modes[] = {"close_range", "close_range_sys", "closefrom", "closeloop"};

/* A C epoll loop blocks twice (events, log and folded files open, stacks
 * captured by signal), then closes every descriptor from 3 up (glibc's
 * close_range, the raw system call, closefrom, a close() loop to 4095),
 * opens 20 files that get the freed numbers and writes a line to each (2
 * through stdio, flushed only at their fclose after the next turns), and
 * blocks twice more on a new epoll instance.  Every host file holds
 * exactly its line; the run ends within 5 s; the two spans after the close
 * are in the events file (with the summary), in ELMON_FOLDED and in the
 * log: libelmon's descriptors were never the host's to close. */
START_TEST(fd_reuse_c)
{
    const char *mode = close_modes[_i];
    char *ev = strf("%s/ev.jsonl", dir), *log = strf("%s/log", dir), *fold = strf("%s/folded", dir);
    char *e[] = {strf("ELMON_EVENTS=%s", ev), strf("ELMON_LOG=%s", log), strf("ELMON_FOLDED=%s", fold),
                 strdup("ELMON_BLOCK_MS=50"), NULL};
    char *argv[] = {FIX, "fds", (char *)mode, dir, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, e, 1, 20000, &r), 0);
    fprintf(stderr, "fd_reuse_c %s: %s; stdout:\n%s", mode, how_ended(&r), r.out);
    ck_assert_msg(exited_ok(&r), "%s: %s; stderr:\n%.2000s", mode, how_ended(&r), r.err);
    ck_assert_msg(r.wall_ms < 5000, "%s: the run took %.0f ms", mode, r.wall_ms);
    ck_assert_msg(strstr(r.out, "done\n"), "%s: %s", mode, r.out);
    long long closed_at = out_num(r.out, "closed_at ");
    ck_assert_int_gt(closed_at, 0);

    /* The host's files: exactly what the host wrote. */
    for (int i = 0; i < 20; i++) {
        char *p = strf("%s/host.%02d", dir, i), *want = strf(i < 18 ? "host %02d\n" : "host %02d stdio\n", i);
        char *got = slurp(p);
        ck_assert_msg(got, "%s: %s is missing", mode, p);
        ck_assert_msg(strcmp(got, want) == 0, "%s: host file %s holds %zu bytes, not only the host's line:\n%.600s",
                      mode, p, strlen(got), got);
        free(p), free(want), free(got);
    }

    /* libelmon's own files go on after the close. */
    char **lines = read_lines(ev, NULL);
    ck_assert_msg(lines, "%s: no events file", mode);
    int blocks = count_type(lines, "block"), after = count_after(lines, "block", closed_at),
        begins_after = count_after(lines, "block_begin", closed_at), summaries = count_type(lines, "summary");
    fprintf(stderr, "fd_reuse_c %s: events: %d blocks, %d of them after the close (%d block_begin), %d summary\n",
            mode, blocks, after, begins_after, summaries);
    ck_assert_msg(after == 2 && begins_after == 2,
                  "%s: %d block and %d block_begin records after the close, not 2 and 2 (%d blocks in all)", mode,
                  after, begins_after, blocks);
    ck_assert_msg(summaries == 1, "%s: %d summary records", mode, summaries);
    const char *bad = span_records_complete(lines);
    ck_assert_msg(!bad, "%s: %s", mode, bad);
    free_lines(lines);

    char **fl = read_lines(fold, NULL);
    int nf = 0;
    while (fl && fl[nf])
        nf++;
    fprintf(stderr, "fd_reuse_c %s: folded: %d lines\n", mode, nf);
    ck_assert_msg(nf == 4, "%s: ELMON_FOLDED has %d lines, not one per span (4)", mode, nf);
    int named = 0;
    for (int i = 2; i < 4; i++) {
        ck_assert_msg(strstr(fl[i], "hostile_block_after") || strstr(fl[i], "[not captured]"),
                      "%s: folded line %d is not a span after the close: %.300s", mode, i, fl[i]);
        named += strstr(fl[i], "hostile_block_after") != NULL;
    }
    ck_assert_msg(named >= 1, "%s: no folded stack after the close names hostile_block_after", mode);
    free_lines(fl);

    char *lt = slurp(log);
    ck_assert_msg(lt, "%s: no log file", mode);
    /* "loop blocked 120.0 ms [warning, ...": a span that ended ("for 56 ms
     * so far, still blocked [..." is its block_begin). */
    int ended = count_str(lt, " ms [warning, epoll_wait]");
    fprintf(stderr, "fd_reuse_c %s: log: %d ended spans, %d lines naming hostile_block_after\n", mode, ended,
            count_str(lt, "hostile_block_after ("));
    ck_assert_msg(ended == 4, "%s: the log has %d ended spans, not 4:\n%.1500s", mode, ended, lt);
    ck_assert_msg(count_str(lt, "hostile_block_after ("), "%s: the log has no frame of a span after the close", mode);
    free(lt);
    run_free(&r);
    free_env(e);
    free(ev), free(log), free(fold);
}
END_TEST

/* The host dup2s a file of its own onto every number from 3 to 2047 that
 * /proc/self/fd shows open (libelmon's among them), writes a line, blocks
 * a turn on a new loop, writes another, closes those numbers and blocks
 * twice more.  Its file holds only its two lines; libelmon neither crashes
 * nor hangs the host, and says so at most once per output. */
START_TEST(fd_dup2_c)
{
    char *ev = strf("%s/ev.jsonl", dir), *log = strf("%s/log", dir), *fold = strf("%s/folded", dir);
    char *e[] = {strf("ELMON_EVENTS=%s", ev), strf("ELMON_LOG=%s", log), strf("ELMON_FOLDED=%s", fold),
                 strdup("ELMON_BLOCK_MS=50"), NULL};
    char *argv[] = {FIX, "fds", "dup2", dir, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, e, 1, 20000, &r), 0);
    fprintf(stderr, "fd_dup2_c: %s; stdout:\n%s", how_ended(&r), r.out);
    ck_assert_msg(exited_ok(&r), "%s; stderr:\n%.2000s", how_ended(&r), r.err);
    ck_assert_msg(r.wall_ms < 5000, "the run took %.0f ms", r.wall_ms);
    ck_assert_msg(strstr(r.out, "done\n"), "%s", r.out);
    char *hp = strf("%s/host.dup", dir);
    char *got = slurp(hp);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strcmp(got, "host line 1\nhost line 2\n") == 0,
                  "the host's file holds %zu bytes, not only its two lines:\n%.800s", strlen(got), got);
    free(got);
    free(hp);
    char *lt = slurp(log);
    char *all = strf("%s%s", r.err, lt ? lt : "");
    const char *vars[] = {"ELMON_EVENTS", "ELMON_LOG", "ELMON_FOLDED", "ELMON_STATS_DIR", "live stats"};
    for (int i = 0; i < 5; i++) {
        int n = warnings_naming(all, vars[i]);
        fprintf(stderr, "fd_dup2_c: %d warnings naming %s\n", n, vars[i]);
        ck_assert_msg(n <= 1, "%d warnings naming %s:\n%.2000s", n, vars[i], all);
    }
    int nw = warnings_naming(all, NULL);
    ck_assert_msg(nw <= 4, "%d warnings for 4 outputs:\n%.2000s", nw, all);
    free(all);
    free(lt);
    run_free(&r);
    free_env(e);
    free(ev), free(log), free(fold);
}
END_TEST

/* Every file libelmon holds open, its own outputs and the module and
 * debug files libdw reads to name frames, sits at or above the floor
 * (half the soft RLIMIT_NOFILE, at most 1024), out of the numbers a host
 * closes and reuses.  A loop blocked for good after a symbolized span;
 * its descriptors read from /proc/PID/fd (loopfix itself opens no file,
 * only an epoll, an eventfd and a pipe). */
START_TEST(library_files_above_host_range)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    long floor_fd = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 2 > 1024 ? 1024 : (long)rl.rlim_cur / 2;
    char *ev = strf("%s/ev.jsonl", dir);
    char *e[] = {strf("ELMON_EVENTS=%s", ev), strf("ELMON_LOG=%s/log", dir), strf("ELMON_FOLDED=%s/f", dir),
                 "ELMON_BLOCK_MS=20", NULL};
    char *argv[] = {LOOPFIX, "-n", "40", "-b", "60", "-e", "10", "-s", NULL};
    char *out = strf("%s/loopfix.out", dir);
    pid_t pid = spawn_prog(argv, e, 1, out);
    ck_assert_int_gt(pid, 0);
    int symbolized = 0;
    for (int waited = 0; !symbolized && waited < 10000; waited += 50) {
        usleep(50000);
        char **l = read_lines(ev, NULL);
        for (int i = 0; l && l[i] && !symbolized; i++)
            symbolized = strstr(l[i], "\"type\":\"block_begin\"") && strstr(l[i], "\"function\":\"block\"");
        free_lines(l);
    }
    /* What the same program holds bare (the test harness's descriptors
     * it inherits among them) is not libelmon's. */
    char *bare_out = strf("%s/bare.out", dir);
    pid_t bare = spawn_prog(argv, e, 0, bare_out);
    ck_assert_int_gt(bare, 0);
    usleep(500000);
    static char bare_fds[256][256];   /* fd -> what it pointed to, bare */
    memset(bare_fds, 0, sizeof bare_fds);
    char bd[64];
    snprintf(bd, sizeof bd, "/proc/%d/fd", (int)bare);
    DIR *b = opendir(bd);
    struct dirent *be;
    while (b && (be = readdir(b))) {
        int fd = atoi(be->d_name);
        char lp[384];
        snprintf(lp, sizeof lp, "%s/%s", bd, be->d_name);
        if (fd > 0 && fd < 256)
            if (readlink(lp, bare_fds[fd], sizeof bare_fds[fd] - 1) < 0)
                bare_fds[fd][0] = 0;
    }
    if (b)
        closedir(b);
    stop_prog(bare, 2000);
    free(bare_out);
    char report[4096] = "";
    size_t rl_len = 0;
    int low = 0, high = 0;
    char fdd[64];
    snprintf(fdd, sizeof fdd, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(fdd);
    struct dirent *de;
    while (symbolized && d && (de = readdir(d))) {
        int fd = atoi(de->d_name);
        char lp[384], target[1024];
        snprintf(lp, sizeof lp, "%s/%s", fdd, de->d_name);
        ssize_t k = readlink(lp, target, sizeof target - 1);
        if (k <= 0 || fd <= 2)
            continue;
        target[k] = 0;
        if ((fd < 256 && strcmp(bare_fds[fd], target) == 0) || strcmp(target, out) == 0)
            continue;   /* the harness's: inherited bare too, or the run's own output file */
        if (target[0] != '/')
            continue;   /* pipe:, anon_inode:, socket: */
        if (fd < floor_fd) {
            low++;
            rl_len += (size_t)snprintf(report + rl_len, sizeof report - rl_len, "%d -> %s; ", fd, target);
            if (rl_len >= sizeof report)
                rl_len = sizeof report - 1;
        } else {
            high++;
        }
    }
    if (d)
        closedir(d);
    stop_prog(pid, 2000);
    ck_assert_msg(symbolized, "no symbolized span from the loop");
    ck_assert_msg(low == 0, "%d of libelmon's files below descriptor %ld: %s", low, floor_fd, report);
    ck_assert_msg(high >= 4, "only %d files at or above %ld (events, log, folded, stats directory and libdw's)", high,
                  floor_fd);
    for (int i = 0; i < 3; i++)
        free(e[i]);
    free(ev);
    free(out);
}
END_TEST

/* Interpreters for python_fd_reuse: Debian's, then every pyenv CPython
 * 3.x.  NULL-terminated, malloc'd. */
static char **pythons(void)
{
    char **list = calloc(64, sizeof *list);
    struct cpython found[63];
    int n = 0, k = cpythons(found, 63);
    for (int i = 0; i < k; i++) {
        /* asyncio and os.set_blocking: CPython 3.5 and later; 3.6 is the
         * oldest hostile_fds.py's syntax runs on. */
        if (found[i].minor < 6) {
            fprintf(stderr, "python_fd_reuse: %s SKIPPED (not CPython 3.6+)\n", found[i].path);
            continue;
        }
        list[n++] = strdup(found[i].path);
    }
    return list;
}

/* CPython asyncio: a callback blocks 150 ms (libelmon captures it and
 * writes its records), the loop ends, os.closerange(3, 65536), then
 * socketpairs, pipes (each filled until full; a full pipe's write end on
 * a number one of libelmon's descriptors had, its read end elsewhere) and
 * files until every freed number is the host's, two more blocking
 * callbacks, and the host checks every byte it put there (hostile_fds.py
 * prints OK).  For each interpreter: exit 0 within 8 s (a run takes under
 * 1 s; when Python frames still came through a pipe of libelmon's, that
 * pipe closed under it and the full host pipe in its place made the
 * capture signal's handler block in its write, and the host hung, deaf to
 * SIGTERM), OK, and the spans after the closerange in the events file. */
START_TEST(python_fd_reuse)
{
    char **py = pythons();
    if (!py[0]) {
        fprintf(stderr, "python_fd_reuse: SKIPPED, no CPython found\n");
        free(py);
        return;
    }
    char report[8192] = "", brief[2048] = "";
    size_t rl = 0, bl = 0;
    int failed = 0, n_py = 0;
    for (int k = 0; py[k]; k++, n_py++) {
        char *sub = strf("%s/py%d", dir, k), *ev = strf("%s/ev.jsonl", sub);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        char *e[] = {strf("ELMON_EVENTS=%s", ev), strf("ELMON_LOG=%s/log", sub), strf("ELMON_FOLDED=%s/folded", sub),
                     strdup("ELMON_BLOCK_MS=50"), strdup("PYTHONDONTWRITEBYTECODE=1"), NULL};
        char *argv[] = {py[k], PY_FDS, sub, NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, e, 1, 8000, &r), 0);
        long long closed_at = out_num(r.out, "closed_at ");
        char **lines = read_lines(ev, NULL);
        int after = closed_at > 0 ? count_after(lines, "block", closed_at) : -1;
        int printed_ok = strstr(r.out, "\nOK\n") != NULL;
        int ok = exited_ok(&r) && printed_ok && after >= 2;
        const char *fail = strstr(r.out, "FAIL");
        rl += (size_t)snprintf(report + rl, sizeof report - rl, "%s: %s, %s, %d spans after the closerange: %s%.*s\n",
                               py[k], how_ended(&r), printed_ok ? "printed OK" : "no OK", after,
                               ok ? "passed" : "FAILED ", fail ? (int)strcspn(fail, "\n") : 0, fail ? fail : "");
        if (rl >= sizeof report)
            rl = sizeof report - 1;
        if (!ok) {
            failed++;
            bl += (size_t)snprintf(brief + bl, sizeof brief - bl, "%s: %s, %s, %d spans after; ", py[k],
                                   how_ended(&r), printed_ok ? "OK" : "no OK", after);
            if (bl >= sizeof brief)
                bl = sizeof brief - 1;
            fprintf(stderr, "python_fd_reuse: %s stdout:\n%.1500s\nstderr:\n%.1500s\n", py[k], r.out, r.err);
        }
        free_lines(lines);
        run_free(&r);
        free_env(e);
        free(sub), free(ev);
    }
    fprintf(stderr, "python_fd_reuse:\n%s", report);
    ck_assert_msg(!failed, "%d of %d interpreters failed: %.1500s", failed, n_py, brief);
    for (int k = 0; py[k]; k++)
        free(py[k]);
    free(py);
}
END_TEST

/* ---------------------------------------------------------- seccomp */

/* hostile_fix installs a seccomp allow-list (killing on anything else)
 * with prctl(PR_SET_SECCOMP) or seccomp(), before its first poll or after
 * its first turn (libelmon's watchdog then exists; without TSYNC the
 * filter is the loop thread's only), and runs 5 turns, 2 of them blocking
 * 120 ms.  Under libelmon: the same exit status and stdout as the bare
 * run, and its stderr plus at most one "elmon: warning:" line that
 * mentions seccomp.  Control: without a filter, libelmon does report this
 * loop's blocked turns, so it is a loop libelmon measures. */
START_TEST(seccomp_confined)
{
    const char *how = (_i & 1) ? "syscall" : "prctl", *when = (_i & 2) ? "later" : "first";
    char *ev = strf("%s/ev.jsonl", dir);
    char *e[] = {strdup("ELMON_BLOCK_MS=50"), strf("ELMON_EVENTS=%s", ev), NULL};
    char *argv[] = {FIX, "seccomp", (char *)how, (char *)when, NULL};
    struct run bare, mon, ctl;
    ck_assert_int_eq(run_prog(argv, e, 0, 20000, &bare), 0);
    ck_assert_msg(exited_ok(&bare), "bare run: %s: %.500s", how_ended(&bare), bare.err);
    ck_assert_int_eq(run_prog(argv, e, 1, 20000, &mon), 0);
    fprintf(stderr, "seccomp_confined %s %s: bare %s, under libelmon %s; stderr:\n%s", how, when, how_ended(&bare),
            how_ended(&mon), mon.err);
    ck_assert_msg(!mon.timed_out && mon.status == bare.status, "%s %s: %s under libelmon, %s bare; stderr:\n%.1500s",
                  how, when, how_ended(&mon), how_ended(&bare), mon.err);
    ck_assert_str_eq(mon.out, bare.out);
    /* stderr: the bare one, plus at most one warning about seccomp. */
    char *rest = strdup(mon.err);
    int dropped = 0;
    for (char *p = rest; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        char *line = strndup(p, len);
        if (!dropped && strncmp(line, "elmon: warning:", 15) == 0 && strcasestr(line, "seccomp")) {
            dropped = 1;
            memmove(p, p + len, strlen(p + len) + 1);
        } else {
            p += len;
        }
        free(line);
    }
    ck_assert_msg(strcmp(rest, bare.err) == 0, "%s %s: stderr beyond the bare run's and one seccomp warning:\n%.2000s",
                  how, when, rest);
    free(rest);

    char *argv_ctl[] = {FIX, "seccomp", "none", (char *)when, NULL};
    ck_assert_int_eq(run_prog(argv_ctl, e, 1, 20000, &ctl), 0);
    ck_assert_msg(exited_ok(&ctl), "control: %s", how_ended(&ctl));
    ck_assert_msg(log_spans_min_ms(ctl.err, 100) >= 2, "control (no filter): libelmon reported no span:\n%.1500s",
                  ctl.err);
    run_free(&bare), run_free(&mon), run_free(&ctl);
    free_env(e);
    free(ev);
}
END_TEST

/* ---------------------------------------------------------- signals */

static const char *sleep_kinds[] = {"nanosleep", "usleep", "clock_nanosleep"};

/* Loop turns made of 20 us of work and 20 us sleeps (timer slack 1 ns),
 * ELMON_BLOCK_MS=50 and captures uncapped: every turn is a span with one
 * capture, taken at the 50 ms crossing, by signal when /proc shows the
 * thread between two sleeps.  A signal that lands just as the thread
 * enters its next sleep used to end that sleep with EINTR (1 or 2 times
 * in 60 captures).  The turns last 80 ms (the time after the capture adds
 * none), in 2 loop threads, 30 turns each, 4 runs per sleep call: 240
 * spans.  Not one sleep returns EINTR, and signal captures did happen
 * (else the test proves nothing). */
START_TEST(sleeps_not_cut_short)
{
    const char *kind = sleep_kinds[_i];
    long eintr = 0, sleeps = 0;
    int by_signal = 0, by_proc = 0, by_none = 0, spans = 0;
    for (int run = 0; run < 4; run++) {
        char *ev = strf("%s/ev.%s.%d.jsonl", dir, kind, run);
        char *e[] = {strdup("ELMON_BLOCK_MS=50"), strdup("ELMON_CAPTURES_PER_MIN=600000"), strdup("ELMON_LOG=off"),
                     strf("ELMON_EVENTS=%s", ev), NULL};
        char *argv[] = {FIX, "sleeps", (char *)kind, "30", "80", "20", "20", "2", NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, e, 1, 30000, &r), 0);
        ck_assert_msg(exited_ok(&r), "%s run %d: %s: %.1000s", kind, run, how_ended(&r), r.err);
        long n = out_num(r.out, "eintr "), m = out_num(r.out, "sleeps ");
        ck_assert_msg(n >= 0 && m > 0, "%s: %s", kind, r.out);
        eintr += n;
        sleeps += m;
        char **lines = read_lines(ev, NULL);
        for (int i = 0; lines && lines[i]; i++) {
            if (!json_is(lines[i], "type", "block"))
                continue;
            spans++;
            const char *c = json_get(lines[i], "capture");
            by_signal += c && !strcmp(c, "signal");
            by_proc += c && !strcmp(c, "proc");
            by_none += !c || !strcmp(c, "none");
        }
        free_lines(lines);
        run_free(&r);
        free_env(e);
        free(ev);
    }
    fprintf(stderr, "sleeps_not_cut_short %s: %ld EINTR in %ld sleeps; %d spans, captured by signal %d, proc %d, "
            "none %d\n", kind, eintr, sleeps, spans, by_signal, by_proc, by_none);
    ck_assert_msg(eintr == 0, "%s: %ld of %ld sleeps returned EINTR (%d signal captures in %d spans)", kind, eintr,
                  sleeps, by_signal, spans);
    ck_assert_msg(by_signal > 0, "%s: no capture by signal in %d spans: the test proves nothing", kind, spans);
}
END_TEST

/* CPython: an asyncio callback calls usleep(200000) through ctypes, from
 * the global scope (CDLL(None): libelmon's usleep comes first) and from
 * libc.so.6 itself; ELMON_BLOCK_MS=50.  All 5 calls take >= 195 ms of
 * wall time (usleep does not resume after a signal: a capture signal
 * would cut it short), and each is reported as a span. */
START_TEST(python_ctypes_usleep)
{
    const char *variant = _i ? "libc" : "none", *lib = _i ? "\"libc.so.6\"" : "None";
    if (access(SYS_PYTHON, X_OK) != 0) {
        fprintf(stderr, "python_ctypes_usleep: SKIPPED, no %s\n", SYS_PYTHON);
        return;
    }
    char *ev = strf("%s/ev.jsonl", dir);
    char *e[] = {strdup("ELMON_BLOCK_MS=50"), strdup("ELMON_LOG=off"), strf("ELMON_EVENTS=%s", ev), NULL};
    char *argv[] = {SYS_PYTHON, PY_USLEEP, (char *)variant, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(argv, e, 1, 20000, &r), 0);
    fprintf(stderr, "python_ctypes_usleep CDLL(%s): %s: %s", lib, how_ended(&r), r.out);
    ck_assert_msg(exited_ok(&r), "CDLL(%s): %s: %.1500s", lib, how_ended(&r), r.err);
    const char *p = strstr(r.out, "usleep_ms ");
    ck_assert_msg(p, "%s", r.out);
    p += 10;
    int n = 0;
    for (;;) {
        char *end;
        double ms = strtod(p, &end);
        if (end == p)
            break;
        ck_assert_msg(ms >= 195.0, "CDLL(%s): usleep(200000) call %d returned after %.1f ms: %s", lib, n, ms, r.out);
        n++;
        p = end;
    }
    ck_assert_int_eq(n, 5);
    char **lines = read_lines(ev, NULL);
    int spans = 0;
    for (int i = 0; lines && lines[i]; i++)
        spans += json_is(lines[i], "type", "block") && json_num(lines[i], "duration_ms") >= 190;
    fprintf(stderr, "python_ctypes_usleep CDLL(%s): %d spans of 190 ms or more\n", lib, spans);
    ck_assert_msg(spans == 5, "CDLL(%s): %d spans of >= 190 ms reported, not 5", lib, spans);
    free_lines(lines);
    run_free(&r);
    free_env(e);
    free(ev);
}
END_TEST

/* ------------------------------------------------------------ paths */

static const char *path_vars[] = {"ELMON_EVENTS", "ELMON_LOG", "ELMON_FOLDED", "ELMON_STATS_DIR"};
static const char *path_names[] = {"ev.%p.jsonl", "log.%p", "folded.%p", "stats"};

/* loopfix: 20 turns, every 5th blocking 80 ms, under libelmon with env;
 * it must run as without libelmon (exit 0, "pid N done").  The caller
 * frees r. */
static void run_loopfix(char **e, const char *what, struct run *r)
{
    char *argv[] = {LOOPFIX, "-n", "20", "-b", "80", "-e", "5", NULL};
    ck_assert_int_eq(run_prog(argv, e, 1, 20000, r), 0);
    ck_assert_msg(exited_ok(r), "%s: %s; stderr:\n%.1500s", what, how_ended(r), r->err);
    ck_assert_msg(strstr(r->out, " done\n") && !strchr(strstr(r->out, " done\n") + 6, '\n') &&
                      strncmp(r->out, "pid ", 4) == 0,
                  "%s: stdout %s", what, r->out);
}

/* Entries of d other than those listed (NULL-terminated), as one string. */
static char *extra_entries(const char *d, const char *const keep[])
{
    char *s = strdup("");
    DIR *dd = opendir(d);
    struct dirent *de;
    while (dd && (de = readdir(dd))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int kept = 0;
        for (int i = 0; keep[i]; i++)
            kept |= !strcmp(de->d_name, keep[i]);
        if (!kept) {
            char *t = strf("%s %s", s, de->d_name);
            free(s);
            s = t;
        }
    }
    if (dd)
        closedir(dd);
    return s;
}

/* A symlink planted in a DIRECTORY component of each output path
 * (DIR/logs -> DIR/target, the path DIR/logs/NAME; and one level up,
 * DIR/logs/sub/NAME with DIR/target/sub a real directory): nothing is
 * created in the target, stderr has exactly one "elmon: warning:" line and
 * it names the variable, and the host runs as usual.  (A symlink as the
 * last component is test_faults' planted_symlinks_not_followed.) */
START_TEST(symlink_in_directory)
{
    const char *var = path_vars[_i];
    for (int deep = 0; deep < 2; deep++) {
        char *base = strf("%s/p%d", dir, deep), *target = strf("%s/target", base), *sub = strf("%s/target/sub", base),
             *link = strf("%s/logs", base);
        ck_assert_int_eq(mkdir(base, 0700), 0);
        ck_assert_int_eq(mkdir(target, 0700), 0);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_eq(symlink(target, link), 0);
        char *value = strf("%s/%s%s", link, deep ? "sub/" : "", path_names[_i]);
        char *e[] = {strf("%s=%s", var, value), strdup("ELMON_BLOCK_MS=50"), NULL};
        struct run r;
        char *what = strf("%s=%s", var, value);
        run_loopfix(e, what, &r);
        fprintf(stderr, "symlink_in_directory %s: %s; warnings:", what, how_ended(&r));
        for (const char *p = r.err; (p = strstr(p, "elmon: warning:")); p++)
            fprintf(stderr, "\n  %.*s", (int)strcspn(p, "\n"), p);
        fprintf(stderr, "\n");
        const char *keep_t[] = {"sub", NULL}, *keep_s[] = {NULL};
        char *x1 = extra_entries(target, keep_t), *x2 = extra_entries(sub, keep_s);
        ck_assert_msg(!x1[0] && !x2[0], "%s: created through the symlink: in target:%s; in target/sub:%s", what, x1, x2);
        free(x1), free(x2);
        int all = warnings_naming(r.err, NULL), named = warnings_naming(r.err, var);
        ck_assert_msg(all == 1 && named == 1, "%s: %d warnings, %d naming %s, not exactly one:\n%.1500s", what, all,
                      named, var, r.err);
        if (_i == 1)   /* the log fell back to stderr */
            ck_assert_msg(log_spans_min_ms(r.err, 80), "%s: no span on stderr:\n%.800s", what, r.err);
        run_free(&r);
        free_env(e);
        free(base), free(target), free(sub), free(link), free(value), free(what);
    }
}
END_TEST

/* Each file output pointed at procfs: /proc/self/clear_refs and
 * /proc/self/mem (/proc/self is a symlink), and /proc/%p/clear_refs and
 * /proc/%p/mem (no symlink on the way: the filesystem itself must be
 * refused).  Each run: exactly one warning, naming the variable; strace
 * shows no write to any descriptor on that file; the host runs as usual,
 * and a refused ELMON_LOG falls back to stderr. */
START_TEST(procfs_targets_refused)
{
    const char *var = path_vars[_i];
    ck_assert_msg(have_prog("strace"), "strace is not installed: writes cannot be checked");
    const char *targets[] = {"/proc/self/clear_refs", "/proc/self/mem", "/proc/%p/clear_refs", "/proc/%p/mem"};
    for (int t = 0; t < 4; t++) {
        char *trace = strf("%s/trace.%d", dir, t), *pre = strf("LD_PRELOAD=%s", ELMON_SO);
        char *what = strf("%s=%s", var, targets[t]);
        char *e[] = {strf("%s=%s", var, targets[t]), strdup("ELMON_BLOCK_MS=50"), NULL};
        char *argv[] = {"strace", "-f", "-qq", "-y", "-e", "trace=write,writev,pwrite64,pwritev,pwritev2", "-o", trace,
                        "-E", pre, LOOPFIX, "-n", "20", "-b", "80", "-e", "5", NULL};
        struct run r;
        ck_assert_int_eq(run_prog(argv, e, 0, 30000, &r), 0);
        fprintf(stderr, "procfs_targets_refused %s: %s; warnings:", what, how_ended(&r));
        for (const char *p = r.err; (p = strstr(p, "elmon: warning:")); p++)
            fprintf(stderr, "\n  %.*s", (int)strcspn(p, "\n"), p);
        fprintf(stderr, "\n");
        ck_assert_msg(exited_ok(&r), "%s: %s; stderr:\n%.1500s", what, how_ended(&r), r.err);
        ck_assert_msg(strncmp(r.out, "pid ", 4) == 0 && strstr(r.out, " done\n"), "%s: stdout %s", what, r.out);
        char **tl = read_lines(trace, NULL);
        ck_assert_msg(tl, "%s: no strace output", what);
        const char *leaf = strrchr(targets[t], '/');
        char *needle = strf("%s>", leaf);   /* -y: write(5</proc/123/mem>, ... */
        for (int i = 0; tl[i]; i++)
            ck_assert_msg(!(strstr(tl[i], "</proc/") && strstr(tl[i], needle)), "%s: written: %.300s", what, tl[i]);
        free(needle);
        free_lines(tl);
        int all = warnings_naming(r.err, NULL), named = warnings_naming(r.err, var);
        ck_assert_msg(all == 1 && named == 1, "%s: %d warnings, %d naming %s, not exactly one:\n%.1500s", what, all,
                      named, var, r.err);
        if (_i == 1)
            ck_assert_msg(log_spans_min_ms(r.err, 80), "%s: no span on stderr:\n%.800s", what, r.err);
        run_free(&r);
        free_env(e);
        free(trace), free(pre), free(what);
    }
}
END_TEST

/* An existing file of ours, mode 0600, with a second hard link (ln file
 * file2), as each file output: refused with exactly one warning naming
 * the variable; the file is unchanged (content, size, links). */
START_TEST(hard_link_refused)
{
    const char *var = path_vars[_i];
    char *f = strf("%s/out", dir), *f2 = strf("%s/out2", dir);
    int fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "precious\n", 9), 9);
    close(fd);
    ck_assert_int_eq(link(f, f2), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(f, &before), 0);
    ck_assert_int_eq((int)before.st_nlink, 2);
    char *e[] = {strf("%s=%s", var, f), strdup("ELMON_BLOCK_MS=50"), NULL};
    char *what = strf("%s=%s (2 links)", var, f);
    struct run r;
    run_loopfix(e, what, &r);
    fprintf(stderr, "hard_link_refused %s: %s; warnings:", what, how_ended(&r));
    for (const char *p = r.err; (p = strstr(p, "elmon: warning:")); p++)
        fprintf(stderr, "\n  %.*s", (int)strcspn(p, "\n"), p);
    fprintf(stderr, "\n");
    char *got = slurp(f);
    ck_assert_int_eq(stat(f, &after), 0);
    ck_assert_msg(got && strcmp(got, "precious\n") == 0, "%s: the file now holds %zu bytes:\n%.600s", what,
                  got ? strlen(got) : 0, got ? got : "");
    ck_assert_int_eq((int)after.st_size, 9);
    ck_assert_int_eq((int)after.st_nlink, 2);
    free(got);
    int all = warnings_naming(r.err, NULL), named = warnings_naming(r.err, var);
    ck_assert_msg(all == 1 && named == 1, "%s: %d warnings, %d naming %s, not exactly one:\n%.1500s", what, all, named,
                  var, r.err);
    if (_i == 1)
        ck_assert_msg(log_spans_min_ms(r.err, 80), "%s: no span on stderr:\n%.800s", what, r.err);
    run_free(&r);
    free_env(e);
    free(f), free(f2), free(what);
}
END_TEST

/* Every ELMON_* setting of the calling environment is dropped (the runs set
 * their own), except the test harness's own ELMON_TEST_*. */
static void clear_settings(void)
{
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if ((strncmp(*e, "ELMON_", 6) == 0 && strncmp(*e, "ELMON_TEST_", 11) != 0) ||
                strncmp(*e, "OTEL_", 5) == 0) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = 1;
                break;
            }
        }
    }
}

int main(void)
{
    clear_settings();
    Suite *s = suite_create("hostile");
    TCase *f = tcase_create("fds");
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_add_loop_test(f, fd_reuse_c, 0, 4);
    tcase_add_test(f, fd_dup2_c);
    tcase_add_test(f, python_fd_reuse);
    tcase_add_test(f, library_files_above_host_range);
    suite_add_tcase(s, f);
    TCase *c = tcase_create("seccomp");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_loop_test(c, seccomp_confined, 0, 4);
    suite_add_tcase(s, c);
    TCase *g = tcase_create("signals");
    tcase_add_checked_fixture(g, setup, teardown);
    tcase_add_loop_test(g, sleeps_not_cut_short, 0, 3);
    tcase_add_loop_test(g, python_ctypes_usleep, 0, 2);
    suite_add_tcase(s, g);
    TCase *p = tcase_create("paths");
    tcase_add_checked_fixture(p, setup, teardown);
    tcase_add_loop_test(p, symlink_in_directory, 0, 4);
    tcase_add_loop_test(p, procfs_targets_refused, 0, 3);
    tcase_add_loop_test(p, hard_link_refused, 0, 3);
    suite_add_tcase(s, p);
    return run_suite(s);
}
