/*
 * The live stats file and `elmon stat`: a Python asyncio program under
 * libelmon before, during and after a 3 s blocking handler; a process
 * without libelmon, one of another user, one that is gone; stale files;
 * a directory that is not private.
 *
 * Status follows the largest lag of the last 10 s, so "after" waits up to
 * 20 s for it to fall back below critical; "during" asks 1.2 s into a 3 s
 * block, leaving 1.8 s for a refresh that comes within about one second.
 * On a loaded 2-core machine a preempted turn of the idle program can lag
 * tens of ms, so "not blocked" means anything below critical.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "json.h"
#include "statsfile.h"
#include "support.h"

#define PYTHON "/usr/bin/python3"
#define ASYNCIO ELMON_SRC_DIR "/tests/fixtures/cli_asyncio.py"

static char *dir;
static char stats_dir[600];
static pid_t started[4];   /* stopped by teardown, even after a failed check */
static int n_started;

static void setup(void)
{
    dir = make_tmpdir("cli-live");
    ck_assert_ptr_nonnull(dir);
    chmod(dir, 0755);
    snprintf(stats_dir, sizeof stats_dir, "%s/stats", dir);
    ck_assert_int_eq(mkdir(stats_dir, 0700), 0);
    setenv("ELMON_STATS_DIR", stats_dir, 1);
}

static void teardown(void)
{
    for (int i = 0; i < n_started; i++)
        if (kill(started[i], 0) == 0)
            stop_prog(started[i], 3000);
    remove_tree(dir);
    free(dir);
}

static int elmon(struct run *r, int timeout_ms, ...)
{
    va_list ap;
    va_start(ap, timeout_ms);
    int rc = run_vargs((char *[]){ELMON_CLI, NULL}, timeout_ms, r, ap);
    va_end(ap);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(WIFEXITED(r->status) || r->timed_out, "elmon crashed:\n%s", r->err);
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Start the asyncio program under libelmon; wait for its stats file. */
static pid_t start_python(const char *block_s, char *const env[])
{
    char out[700];
    snprintf(out, sizeof out, "%s/py.%s.out", dir, block_s);
    char *argv[] = {PYTHON, ASYNCIO, (char *)block_s, NULL};
    pid_t pid = spawn_prog(argv, env, 1, out);
    ck_assert_int_gt(pid, 0);
    started[n_started++] = pid;
    return pid;
}

static int wait_stats_file(pid_t pid, const char *in_dir)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%d.stats", in_dir, (int)pid);
    for (int i = 0; i < 750; i++) {
        if (file_exists(path))
            return 0;
        usleep(20000);
    }
    return -1;
}

/* `elmon stat --json PID`, parsed; the caller frees. */
static struct jval *stat_json(pid_t pid)
{
    char p[32];
    snprintf(p, sizeof p, "%d", (int)pid);
    struct run r;
    int rc = elmon(&r, 30000, "stat", "--json", p, NULL);
    ck_assert_msg(rc == 0, "elmon stat %s: %d\n%s", p, rc, r.err);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_msg(v != NULL, "not JSON: %s", r.out);
    run_free(&r);
    return v;
}

static const struct jval *loop0(const struct jval *v)
{
    const struct jval *loops = jv_get(v, "loops");
    ck_assert_msg(loops && loops->n == 1, "one loop expected");
    return loops->items[0];
}

START_TEST(python_before_during_after)
{
    pid_t pid = start_python("3", NULL);
    ck_assert_msg(wait_stats_file(pid, stats_dir) == 0, "no stats file");
    char path[800];
    snprintf(path, sizeof path, "%s/%d.stats", stats_dir, (int)pid);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    /* Before: not blocked (healthy when the machine is idle), turning. */
    struct jval *v = stat_json(pid);
    const struct jval *l = loop0(v);
    const char *status = jv_str(l, "status", "");
    ck_assert_msg(strcmp(status, "critical") != 0 && *status, "before: %s", status);
    ck_assert_double_lt(jv_num(l, "lag_max_ms", 1e9), 500);
    ck_assert_msg(jv_bool(v, "fresh", 0), "figures not refreshed for the reader");
    ck_assert_double_gt(jv_num(l, "turns_per_s", 0), 5);
    ck_assert_double_eq(jv_num(l, "blocks_critical", -1), 0);
    ck_assert_int_eq(jv_get(v, "last_span")->type, J_NULL);
    jv_free(v);

    /* During: the loop is stuck in blocking_handler. */
    kill(pid, SIGUSR1);
    usleep(1200000);
    v = stat_json(pid);
    l = loop0(v);
    ck_assert_str_eq(jv_str(l, "status", ""), "critical");
    ck_assert_double_ge(jv_num(l, "lag_ms", 0), 500);
    ck_assert_double_le(jv_num(l, "turns_per_s", 99), 5);
    const struct jval *last = jv_get(v, "last_span");
    ck_assert_int_eq(last->type, J_OBJ);
    ck_assert_int_eq(jv_bool(last, "ongoing", 0), 1);
    ck_assert_double_ge(jv_num(last, "duration_ms", 0), 500);
    const char *culprit = jv_str(last, "culprit", "");
    ck_assert_msg(strstr(culprit, "blocking_handler (cli_asyncio.py:"), "culprit '%s'", culprit);
    jv_free(v);

    /* Text form of the same. */
    char p[32];
    snprintf(p, sizeof p, "%d", (int)pid);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 0);
    ck_assert_msg(strstr(r.out, "critical") && strstr(r.out, "still running"), "%s", r.out);
    run_free(&r);

    /* After: one critical span of about 3 s, then healthy again. */
    int ended = 0;
    for (int i = 0; i < 40 && !ended; i++) {
        usleep(250000);
        v = stat_json(pid);
        ended = jv_num(loop0(v), "blocks_critical", -1) == 1;
        if (!ended)
            jv_free(v);
    }
    ck_assert_msg(ended, "the 3 s span never ended");
    l = loop0(v);
    ck_assert_double_ge(jv_num(l, "lag_max_ms", 0), 2900);
    ck_assert_int_eq(jv_bool(jv_get(v, "last_span"), "ongoing", 1), 0);
    ck_assert_double_ge(jv_num(jv_get(v, "last_span"), "duration_ms", 0), 2900);
    ck_assert_msg(strstr(jv_str(jv_get(v, "last_span"), "culprit", ""), "blocking_handler (cli_asyncio.py:"),
                  "culprit after the span '%s'", jv_str(jv_get(v, "last_span"), "culprit", ""));
    jv_free(v);
    int recovered = 0;
    for (int i = 0; i < 40 && !recovered; i++) {
        v = stat_json(pid);
        status = jv_str(loop0(v), "status", "");
        recovered = *status && strcmp(status, "critical") != 0;
        jv_free(v);
        if (!recovered)
            usleep(500000);
    }
    ck_assert_msg(recovered, "status never fell back after the block");

    /* --watch repeats until stopped. */
    ck_assert_int_eq(run_prog((char *[]){ELMON_CLI, "stat", "--watch", "0.3", p, NULL}, NULL, 0, 2000, &r), 0);
    ck_assert_msg(r.timed_out, "--watch ended by itself");
    char *second = strstr(r.out, "pid ");
    ck_assert_msg(second && strstr(second + 1, "pid "), "one look only:\n%s", r.out);
    run_free(&r);

    /* Exit removes the file; the pid is then gone. */
    int ws = stop_prog(pid, 5000);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "python status %#x", ws);
    ck_assert_msg(!file_exists(path), "stats file left after exit");
    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 1);
    ck_assert_msg(strstr(r.err, "no process"), "%s", r.err);
    ck_assert_msg(!strchr(strchr(r.err, '\n') + 1, '\n'), "more than one line:\n%s", r.err);
    run_free(&r);
}
END_TEST

/* The stats file appears under its name only whole and mapped: renamed
 * into place, never created there.  `elmon stat` takes a PID.stats its
 * process does not map for a dead process's leftover and removes it, so a
 * file visible before the mapping was lost to the first reader (CI saw
 * `elmon stat` report a monitored process as not monitored). */
START_TEST(stats_file_published_whole)
{
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(inotify_add_watch(in, stats_dir, IN_CREATE | IN_MOVED_TO), 0);
    pid_t pid = start_python("1", NULL);
    char want[64];
    snprintf(want, sizeof want, "%d.stats", (int)pid);
    uint32_t mask = 0;
    for (int waited = 0; !mask && waited < 15000; waited += 20) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(in, buf, sizeof buf);
        for (char *p = buf; n > 0 && p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->len && strcmp(e->name, want) == 0)
                mask = e->mask;
            p += sizeof *e + e->len;
        }
        if (!mask)
            usleep(20000);
    }
    close(in);
    ck_assert_msg(mask, "%s never appeared", want);
    ck_assert_msg((mask & IN_MOVED_TO) && !(mask & IN_CREATE), "%s appeared by %s, before it was whole", want,
                  mask & IN_CREATE ? "IN_CREATE" : "another event");
    struct jval *v = stat_json(pid);
    jv_free(v);
}
END_TEST

/* Nobody reading costs nothing: the figures are not refreshed until a
 * reader asks (wanted_until_ns), and are once `elmon stat` has asked. */
START_TEST(idle_until_read)
{
    pid_t pid = start_python("1", NULL);
    ck_assert_msg(wait_stats_file(pid, stats_dir) == 0, "no stats file");
    char path[800];
    snprintf(path, sizeof path, "%s/%d.stats", stats_dir, (int)pid);
    usleep(1500000);   /* the loop turns ~20 times a second meanwhile */
    struct elmon_stats_file a, b;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &a, sizeof a, 0), (ssize_t)sizeof a);
    usleep(2500000);
    ck_assert_int_eq(pread(fd, &b, sizeof b, 0), (ssize_t)sizeof b);
    /* (seq may move: a blocking span is recorded always, and a loaded
     * machine can make one of this loop's turns one.) */
    ck_assert_msg(a.updated_mono_ns == b.updated_mono_ns, "refreshed with nobody reading: updated %llu -> %llu",
                  (unsigned long long)a.updated_mono_ns, (unsigned long long)b.updated_mono_ns);
    struct jval *v = stat_json(pid);
    ck_assert_msg(jv_bool(v, "fresh", 0), "figures not refreshed for the reader");
    jv_free(v);
    ck_assert_int_eq(pread(fd, &b, sizeof b, 0), (ssize_t)sizeof b);
    ck_assert_msg(b.updated_mono_ns > a.updated_mono_ns, "not refreshed after elmon stat asked");
    close(fd);
}
END_TEST

START_TEST(not_monitored_and_bad_pid)
{
    char *argv[] = {PYTHON, ASYNCIO, NULL};
    pid_t pid = spawn_prog(argv, NULL, 0, NULL);
    started[n_started++] = pid;
    usleep(300000);
    char p[32];
    snprintf(p, sizeof p, "%d", (int)pid);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 1);
    ck_assert_msg(strstr(r.err, "is not monitored by libelmon"), "%s", r.err);
    run_free(&r);
    stop_prog(pid, 3000);
    ck_assert_int_eq(elmon(&r, 30000, "stat", "banana", NULL), 2);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "stat", NULL), 2);
    run_free(&r);
}
END_TEST

START_TEST(another_users_process)
{
    struct run r;
    if (geteuid() != 0) {
        /* Not root: init is another user's process. */
        ck_assert_int_eq(elmon(&r, 30000, "stat", "1", NULL), 1);
        ck_assert_msg(strstr(r.err, "belongs to another user"), "%s", r.err);
        run_free(&r);
        return;
    }
    /* Root: a monitored process running as nobody, with a stats directory
     * of its own that root's elmon does not read. */
    char nobody_dir[] = "/tmp/elmon-cli-nobody-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(nobody_dir));
    chmod(nobody_dir, 0711);
    char nstats[600], env_stats[700];
    snprintf(nstats, sizeof nstats, "%s/stats", nobody_dir);
    ck_assert_int_eq(mkdir(nstats, 0700), 0);
    ck_assert_int_eq(chown(nstats, 65534, 65534), 0);
    snprintf(env_stats, sizeof env_stats, "ELMON_STATS_DIR=%s", nstats);
    /* nobody reads libelmon.so and the script from copies of its own. */
    char *so = copy_for_others(ELMON_SO, nobody_dir), *script = copy_for_others(ASYNCIO, nobody_dir);
    ck_assert(so && script);
    char preload[700];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", so);
    char *env[] = {env_stats, "ELMON_LOG=off", preload, NULL};
    char *argv[] = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PYTHON, script, NULL};
    pid_t pid = spawn_prog(argv, env, 0, NULL);
    free(so);
    free(script);
    ck_assert_int_gt(pid, 0);
    started[n_started++] = pid;
    int ok = wait_stats_file(pid, nstats);
    char p[32];
    snprintf(p, sizeof p, "%d", (int)pid);
    int rc = elmon(&r, 30000, "stat", p, NULL);
    stop_prog(pid, 3000);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", nobody_dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(ok == 0, "the process running as nobody made no stats file");
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(r.err, "belongs to another user (uid 65534)"), "%s", r.err);
    run_free(&r);
}
END_TEST

/* A stats file with a valid header for pid, as a process that died
 * without its exit handlers would leave. */
static void plant_stale(int pid, char *path, size_t n)
{
    snprintf(path, n, "%s/%d.stats", stats_dir, pid);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    struct elmon_stats_file f = {0};
    memcpy(f.magic, ELMON_STATS_MAGIC, sizeof f.magic);
    f.version = ELMON_STATS_VERSION;
    f.size = sizeof f;
    f.pid = pid;
    snprintf(f.comm, sizeof f.comm, "ghost");
    f.n_loops = 1;
    f.loops[0].tid = pid;
    snprintf(f.loops[0].status, sizeof f.loops[0].status, "critical");
    ck_assert_int_eq(write(fd, &f, sizeof f), (ssize_t)sizeof f);
    close(fd);
}

START_TEST(stale_files)
{
    /* One for a pid that is gone, one for a live process (this one) that
     * does not map it: both stale. */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char gone_path[800], live_path[800];
    plant_stale(dead, gone_path, sizeof gone_path);
    plant_stale(getpid(), live_path, sizeof live_path);

    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "top", "-n", "1", NULL), 0);
    ck_assert_msg(!strstr(r.out, "ghost"), "a stale file is shown:\n%s", r.out);
    ck_assert_msg(strstr(r.out, "no monitored process"), "%s", r.out);
    run_free(&r);
    ck_assert_msg(!file_exists(gone_path) && !file_exists(live_path), "stale files not removed");

    plant_stale(dead, gone_path, sizeof gone_path);
    char p[32];
    snprintf(p, sizeof p, "%d", (int)dead);
    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 1);
    ck_assert_msg(strstr(r.err, "no process") && strstr(r.err, "stale"), "%s", r.err);
    run_free(&r);
    ck_assert_msg(!file_exists(gone_path), "stale file not removed by stat");
}
END_TEST

START_TEST(directory_not_private)
{
    ck_assert_int_eq(chmod(stats_dir, 0755), 0);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "top", "-n", "1", NULL), 1);
    ck_assert_msg(strstr(r.err, "not a private directory"), "%s", r.err);
    run_free(&r);
    /* libelmon will not publish there either, and says so once. */
    char out[700];
    pid_t pid = start_python("1", NULL);
    usleep(2500000);
    stop_prog(pid, 3000);
    snprintf(out, sizeof out, "%s/py.1.out", dir);
    int n;
    char **lines = read_lines(out, &n);
    int warned = 0;
    for (int i = 0; i < n; i++)
        warned += strstr(lines[i], "no live stats") != NULL;
    ck_assert_int_eq(warned, 1);
    free_lines(lines);
    int nf;
    char **files = list_files(stats_dir, "", &nf);
    ck_assert_int_eq(nf, 0);
    free(files);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_live");
    TCase *tc = tcase_create("live");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, python_before_during_after);
    tcase_add_test(tc, idle_until_read);
    tcase_add_test(tc, stats_file_published_whole);
    tcase_add_test(tc, not_monitored_and_bad_pid);
    tcase_add_test(tc, another_users_process);
    tcase_add_test(tc, stale_files);
    tcase_add_test(tc, directory_not_private);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
