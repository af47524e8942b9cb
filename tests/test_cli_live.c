/*
 * The live stats file and `elmon stat`: a Python asyncio program under
 * libelmon before, during and after a 3 s blocking handler; a process
 * without libelmon, one of another user, one that is gone; stale files;
 * a directory that is not private; a stats file truncated while `stat` and
 * `top` read it, and garbage ones (files held mapped by child processes
 * of this test, so that elmon takes them for live ones); thread, process
 * and command-line names carrying escape sequences.
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
#include <stddef.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "json.h"
#include "statsfile.h"
#include "support.h"

#define PYTHON "/usr/bin/python3"
#define ASYNCIO ELMON_SRC_DIR "/tests/fixtures/cli_asyncio.py"

static char *dir;
static char stats_dir[600];
static pid_t started[24];   /* stopped by teardown, even after a failed check */
static int n_started;

static void setup(void)
{
    dir = make_tmpdir("cli-live");
    ck_assert_ptr_nonnull(dir);
    chmod(dir, 0755);
    snprintf(stats_dir, sizeof stats_dir, "%s/stats", dir);
    ck_assert_int_eq(mkdir(stats_dir, 0700), 0);
    setenv("ELMON_STATS_DIR", stats_dir, 1);
    n_started = 0;
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
    ck_assert_msg(WIFEXITED(r->status) || r->timed_out, "elmon crashed (signal %d, %s):\n%s", WTERMSIG(r->status),
                  strsignal(WTERMSIG(r->status)), r->err);
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


/* A stats file as libelmon writes it, for whatever process ends up
 * holding it: one loop, figures refreshed just now and wanted for a
 * minute, so that a reader finds them fresh without waiting for the
 * next 1.5 s (live.c) and has to wait after that. */
static void valid_stats(struct elmon_stats_file *f)
{
    memset(f, 0, sizeof *f);
    memcpy(f->magic, ELMON_STATS_MAGIC, sizeof f->magic);
    f->version = ELMON_STATS_VERSION;
    f->size = sizeof *f;
    f->uid = (uint32_t)geteuid();
    snprintf(f->comm, sizeof f->comm, "holder");
    snprintf(f->cmdline, sizeof f->cmdline, "holder --of-a-stats-file");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    f->updated_mono_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    f->wanted_until_ns = f->updated_mono_ns + 60000000000ull;
    f->n_loops = f->n_loops_total = 1;
    f->loops[0].tid = (int32_t)getpid();
    snprintf(f->loops[0].thread, sizeof f->loops[0].thread, "holder-loop");
    snprintf(f->loops[0].poller, sizeof f->loops[0].poller, "epoll_wait");
    snprintf(f->loops[0].status, sizeof f->loops[0].status, "healthy");
}

/* A child of this test holding a stats file as a monitored process does:
 * it writes len bytes of content as DIR/ITSPID.stats (its pid put into the
 * header when set_pid), maps the file and waits to be stopped.  elmon
 * reads a file its process maps as a live one, so these bytes are what it
 * reads, not a stale leftover it removes.  The mapping is read-only and
 * never touched: truncating the file cannot hurt the holder.  Its pid;
 * path gets the file's. */
static pid_t hold_stats(const void *content, size_t len, int set_pid, char *path, size_t n)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t test = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Check's runner handlers are inherited across fork (no exec
         * here): its SIGTERM handler would stop the whole test.  Check
         * runs no teardown after a failed check, so the holder also goes
         * when the test does. */
        signal(SIGTERM, SIG_DFL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != test)
            _exit(1);   /* the test ended before the line above */
        close(ready[0]);
        char mine[800];
        snprintf(mine, sizeof mine, "%s/%d.stats", stats_dir, (int)getpid());
        unsigned char *bytes = malloc(len + 1);
        memcpy(bytes, content, len);
        int32_t me = (int32_t)getpid();
        if (set_pid && len >= offsetof(struct elmon_stats_file, pid) + sizeof me)
            memcpy(bytes + offsetof(struct elmon_stats_file, pid), &me, sizeof me);
        int fd = open(mine, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, bytes, len) != (ssize_t)len)
            _exit(1);
        if (mmap(NULL, sizeof(struct elmon_stats_file), PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
            _exit(1);
        close(fd);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    ck_assert_msg(read(ready[0], &c, 1) == 1, "the holder of a stats file did not start");
    close(ready[0]);
    started[n_started++] = pid;
    snprintf(path, n, "%s/%d.stats", stats_dir, (int)pid);
    return pid;
}

/* Truncate path to size_bytes after delay_ms, from a child, while this
 * test runs elmon. */
static pid_t truncate_later(const char *path, off_t size_bytes, int delay_ms)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep((useconds_t)delay_ms * 1000);
        _exit(truncate(path, size_bytes) == 0 ? 0 : 1);
    }
    return pid;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Truncated to nothing and to half while `elmon stat --watch` and `elmon
 * top` read it: the figures fresh for the first 1.5 s are shown several
 * times, the truncation at 2.2 s falls in the wait for the next refresh
 * (REFRESH_WAIT_NS, polled), and the file is then reported once, cut
 * short, rather than read through a mapping past its end (SIGBUS). */
START_TEST(truncated_while_read)
{
    struct elmon_stats_file f;
    const off_t sizes_bytes[] = {0, (off_t)sizeof f / 2};
    for (size_t i = 0; i < sizeof sizes_bytes / sizeof sizes_bytes[0]; i++) {
        char path[800], p[32], want[1000];
        valid_stats(&f);
        pid_t holder = hold_stats(&f, sizeof f, 1, path, sizeof path);
        snprintf(p, sizeof p, "%d", (int)holder);
        pid_t cutter = truncate_later(path, sizes_bytes[i], 2200);
        struct run r;
        int rc = elmon(&r, 20000, "stat", "--watch", "0.2", p, NULL);
        int cut_status;
        waitpid(cutter, &cut_status, 0);
        ck_assert_msg(WIFEXITED(cut_status) && WEXITSTATUS(cut_status) == 0, "truncate failed");
        ck_assert_msg(!r.timed_out, "stat --watch went on after the truncation:\n%s", r.err);
        ck_assert_msg(rc == 1, "stat exit status %d after truncation to %lld bytes\n%s", rc,
                      (long long)sizes_bytes[i], r.err);
        ck_assert_msg(count_lines_with(r.out, "pid ") >= 2, "fewer than two looks before the truncation:\n%s", r.out);
        snprintf(want, sizeof want, ".stats: unreadable stats file: cut short: %lld bytes, a stats file has %zu\n",
                 (long long)sizes_bytes[i], sizeof f);
        ck_assert_msg(strstr(r.err, want) && count_lines_with(r.err, "\n") == 1, "stat after truncation to %lld: %s",
                      (long long)sizes_bytes[i], r.err);
        run_free(&r);
        stop_prog(holder, 3000);
        unlink(path);

        /* top goes on, the file named as cut short in each frame after. */
        valid_stats(&f);
        holder = hold_stats(&f, sizeof f, 1, path, sizeof path);
        char out[800];
        snprintf(out, sizeof out, "%s/top.%zu.out", dir, i);
        pid_t top = spawn_prog((char *[]){ELMON_CLI, "top", "-d", "0.2", NULL}, NULL, 0, out);
        ck_assert_int_gt(top, 0);
        started[n_started++] = top;
        cutter = truncate_later(path, sizes_bytes[i], 2200);
        waitpid(cutter, &cut_status, 0);
        usleep(3800000);   /* the look in progress ends by 4.7 s, the next begins */
        int ws = stop_prog(top, 5000);
        ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "top after truncation to %lld: wait status %#x%s",
                      (long long)sizes_bytes[i], ws,
                      WIFSIGNALED(ws) && WTERMSIG(ws) == SIGBUS ? " (SIGBUS)" : "");
        int n;
        char **lines = read_lines(out, &n);
        ck_assert_ptr_nonnull(lines);
        int rows = 0, cut = 0;
        snprintf(want, sizeof want, "elmon top: %s: unreadable stats file: cut short: %lld bytes", path,
                 (long long)sizes_bytes[i]);
        for (int k = 0; k < n; k++) {
            rows += strstr(lines[k], "holder-loop") != NULL;
            cut += strstr(lines[k], want) != NULL;
        }
        free_lines(lines);
        ck_assert_msg(rows >= 2 && cut >= 1, "top: %d frames with the loop, %d naming the cut file", rows, cut);
        stop_prog(holder, 3000);
        unlink(path);
    }
}
END_TEST

/* The monitored process survives its stats file being truncated under
 * it (any process of the user can): libelmon writes the file with pwrite,
 * never through a mapping, so its next refresh is no SIGBUS in the host.
 * Truncated to nothing and to half while a reader keeps the figures
 * wanted, for longer than the refresh period. */
START_TEST(host_survives_truncation)
{
    pid_t pid = start_python("1", NULL);
    ck_assert_msg(wait_stats_file(pid, stats_dir) == 0, "no stats file");
    char path[800];
    snprintf(path, sizeof path, "%s/%d.stats", stats_dir, (int)pid);
    const off_t sizes_bytes[] = {0, (off_t)sizeof(struct elmon_stats_file) / 2};
    for (size_t i = 0; i < sizeof sizes_bytes / sizeof sizes_bytes[0]; i++) {
        /* Wanted from now on (a cut file may not be readable: the status
         * does not matter here). */
        char p[32];
        snprintf(p, sizeof p, "%d", (int)pid);
        struct run r;
        elmon(&r, 30000, "stat", p, NULL);
        run_free(&r);
        ck_assert_int_eq(truncate(path, sizes_bytes[i]), 0);
        usleep(2500000);   /* two refreshes at least */
        int ws = 0;
        ck_assert_msg(waitpid(pid, &ws, WNOHANG) == 0, "the host died after its stats file was cut to %lld bytes: %s %d",
                      (long long)sizes_bytes[i], WIFSIGNALED(ws) ? "signal" : "exit status",
                      WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    }
    int ws = stop_prog(pid, 5000);
    ck_assert_msg(!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGBUS), "the host died of SIGBUS");
    ck_assert_msg(WIFEXITED(ws) || (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGTERM), "host wait status %#x", ws);
}
END_TEST

/* Garbage stats files, each held by a process of its own: each named in
 * one line with what is wrong, while a real monitored process still
 * shows in the same frame. */
static struct garbage {
    const char *what, *why;   /* the case, and what elmon must say of it */
    size_t len_bytes;
    int set_pid;
    struct elmon_stats_file f;
} garbage[10];
static size_t n_garbage;

/* A valid file to spoil; the holder writes len_bytes of it. */
static struct elmon_stats_file *add_garbage(const char *what, const char *why, size_t len_bytes, int set_pid)
{
    ck_assert_uint_lt(n_garbage, sizeof garbage / sizeof garbage[0]);
    struct garbage *g = &garbage[n_garbage++];
    g->what = what;
    g->why = why;
    g->len_bytes = len_bytes;
    g->set_pid = set_pid;
    valid_stats(&g->f);
    return &g->f;
}

START_TEST(garbage_files)
{
    const size_t whole = sizeof(struct elmon_stats_file);
    unsigned char *noise = (unsigned char *)add_garbage("random bytes", "no ELMSTATS magic: not a stats file", whole, 0);
    unsigned seed = 12;
    for (size_t i = 0; i < whole; i++)
        noise[i] = (unsigned char)rand_r(&seed);
    add_garbage("right magic, file short", "cut short: 400 bytes, a stats file has", 400, 1);
    add_garbage("right magic, header size wrong", "its header gives 1234 bytes", whole, 1)->size = 1234;
    add_garbage("another layout version", "layout version 99, this elmon reads", whole, 1)->version = 99;
    struct elmon_stats_file *f = add_garbage("huge loop count", "n_loops 2147483647, more than the 32 entries", whole, 1);
    f->n_loops = 0x7fffffff;
    f->n_loops_total = 0xffffffff;
    add_garbage("huge count of loops alive", "n_loops_total 4294967295 with 1 entries in use", whole, 1)->n_loops_total =
        0xffffffff;
    f = add_garbage("comm unterminated", "comm is not NUL-terminated", whole, 1);
    memset(f->comm, 'A', sizeof f->comm);
    f = add_garbage("thread unterminated", "loops[0]: a name is not NUL-terminated", whole, 1);
    memset(f->loops[0].thread, 'B', sizeof f->loops[0].thread);
    f = add_garbage("culprit unterminated", "last_culprit is not NUL-terminated", whole, 1);
    f->last_span_unix_ns = 1;
    memset(f->last_culprit, 'C', sizeof f->last_culprit);
    add_garbage("another pid's", "written for pid 1", whole, 0)->pid = 1;
    struct garbage *g = garbage;
    size_t n_g = n_garbage;

    pid_t py = start_python("1", NULL);
    ck_assert_msg(wait_stats_file(py, stats_dir) == 0, "no stats file");
    char paths[10][800];
    pid_t holders[10];
    for (size_t i = 0; i < n_g; i++)
        holders[i] = hold_stats(&g[i].f, g[i].len_bytes, g[i].set_pid, paths[i], sizeof paths[i]);

    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "top", "-n", "1", NULL), 0);
    char row[64];
    snprintf(row, sizeof row, "\n%7d python3 ", (int)py);
    ck_assert_msg(strstr(r.out, row) && strstr(r.out, " - 1 process, 1 loop thread"),
                  "the monitored process is not shown beside the garbage:\n%s", r.out);
    ck_assert_int_eq(count_lines_with(r.out, "unreadable stats file"), (int)n_g);
    for (size_t i = 0; i < n_g; i++) {
        char *line = strf("elmon top: %s: unreadable stats file: %s", paths[i], g[i].why);
        ck_assert_msg(strstr(r.out, line), "%s: no line '%s' in:\n%s", g[i].what, line, r.out);
        free(line);
    }
    run_free(&r);

    for (size_t i = 0; i < n_g; i++) {
        char p[32];
        snprintf(p, sizeof p, "%d", (int)holders[i]);
        ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 1);
        char *line = strf("elmon stat: %s: unreadable stats file: %s", paths[i], g[i].why);
        ck_assert_msg(strncmp(r.err, line, strlen(line)) == 0 && count_lines_with(r.err, "\n") == 1,
                      "%s: stat said '%s'", g[i].what, r.err);
        ck_assert_msg(!*r.out, "%s: figures shown from garbage:\n%s", g[i].what, r.out);
        free(line);
        run_free(&r);
    }
}
END_TEST

/* A host that names its loop thread "\e]0;pwned\a\e[2J" (a terminal title
 * change, a screen clear), runs under a program name with "\e[2J" in it,
 * and has a raw ESC in its command line.  Neither stat nor top nor report
 * passes a raw control byte on; JSON carries the names faithfully,
 * escaped. */
static const char hostile_py[] =
    "# \x1b[31mred\x1b[0m\n"
    "import asyncio, ctypes, signal, time\n"
    "ctypes.CDLL(None).prctl(15, b'\\x1b]0;pwned\\x07\\x1b[2J', 0, 0, 0)\n"
    "def blocking_handler():\n"
    "    time.sleep(0.3)\n"
    "async def main():\n"
    "    loop = asyncio.get_running_loop()\n"
    "    stop = loop.create_future()\n"
    "    loop.add_signal_handler(signal.SIGUSR1, blocking_handler)\n"
    "    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)\n"
    "    print('ready', flush=True)\n"
    "    await stop\n"
    "asyncio.run(main())\n";
#define HOSTILE_THREAD "\x1b]0;pwned\x07\x1b[2J"
#define HOSTILE_THREAD_ESCAPED "\\x1b]0;pwned\\x07\\x1b[2J"

START_TEST(hostile_names_escaped)
{
    char prog[700], events_dir[700], env_events[800];
    snprintf(prog, sizeof prog, "%s/py\x1b[2Jthon", dir);
    ck_assert_int_eq(symlink(PYTHON, prog), 0);
    snprintf(events_dir, sizeof events_dir, "%s/ev", dir);
    ck_assert_int_eq(mkdir(events_dir, 0700), 0);
    snprintf(env_events, sizeof env_events, "ELMON_EVENTS=%s/events.%%p.jsonl", events_dir);
    char *env[] = {env_events, "ELMON_LOG=off", NULL};
    char out[800];
    snprintf(out, sizeof out, "%s/hostile.out", dir);
    pid_t pid = spawn_prog((char *[]){prog, "-c", (char *)hostile_py, NULL}, env, 1, out);
    ck_assert_int_gt(pid, 0);
    started[n_started++] = pid;
    ck_assert_msg(wait_stats_file(pid, stats_dir) == 0, "no stats file");
    char p[32];
    snprintf(p, sizeof p, "%d", (int)pid);

    kill(pid, SIGUSR1);   /* one 300 ms span: the culprit and the thread in the events file */
    struct run r;
    int spans = 0;
    for (int i = 0; i < 40 && !spans; i++) {
        struct jval *v = stat_json(pid);
        spans = jv_num(v, "blocking_spans", 0) >= 1;
        if (spans) {
            const struct jval *l = loop0(v);
            ck_assert_str_eq(jv_str(l, "thread", ""), HOSTILE_THREAD);
            ck_assert_msg(strstr(jv_str(v, "cmdline", ""), "\x1b[31mred"), "cmdline %s", jv_str(v, "cmdline", ""));
        }
        jv_free(v);
        if (!spans)
            usleep(250000);
    }
    ck_assert_msg(spans, "the 300 ms span never showed");
    ck_assert_int_eq(elmon(&r, 30000, "stat", "--json", p, NULL), 0);
    ck_assert_no_raw_control("stat --json", r.out);
    run_free(&r);

    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 0);
    ck_assert_no_raw_control("stat", r.out);
    ck_assert_msg(strstr(r.out, HOSTILE_THREAD_ESCAPED " (") && strstr(r.out, "# \\x1b[31mred\\x1b[0m") &&
                      strstr(r.out, "(py\\x1b[2Jthon)"),
                  "names not shown escaped:\n%s", r.out);
    run_free(&r);

    ck_assert_int_eq(elmon(&r, 30000, "top", "-n", "1", NULL), 0);
    ck_assert_no_raw_control("top", r.out);
    ck_assert_msg(strstr(r.out, " \\x1b]0;pwned (") && strstr(r.out, " py\\x1b[2Jthon "),
                  "names not shown escaped, cut to their columns:\n%s", r.out);
    run_free(&r);

    int ws = stop_prog(pid, 5000);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "python status %#x", ws);
    ck_assert_int_eq(run_prog((char *[]){ELMON_CLI, "report", events_dir, NULL}, NULL, 0, 30000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "report: %s", r.err);
    ck_assert_no_raw_control("report", r.out);
    ck_assert_no_raw_control("report's stderr", r.err);
    ck_assert_msg(strstr(r.out, "\\x1b]0;pwned") && strstr(r.out, "py\\x1b[2Jthon"), "%s", r.out);
    run_free(&r);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The short forms of stat: -j prints one JSON look (text without it);
 * -w SECONDS looks again and again until the process exits (its stats
 * file removed 1.5 s in, as libelmon does at exit), then says so. */
START_TEST(stat_short_options)
{
    struct elmon_stats_file f;
    valid_stats(&f);
    char path[800], p[32];
    pid_t holder = hold_stats(&f, sizeof f, 1, path, sizeof path);
    snprintf(p, sizeof p, "%d", (int)holder);
    struct run r;
    ck_assert_int_eq(elmon(&r, 30000, "stat", "-j", p, NULL), 0);
    struct jval *v = jv_parse(r.out, strlen(r.out));
    ck_assert_msg(v != NULL, "stat -j: not JSON:\n%s", r.out);
    ck_assert_double_eq(jv_num(v, "pid", -1), holder);
    ck_assert_str_eq(jv_str(loop0(v), "thread", ""), "holder-loop");
    jv_free(v);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 30000, "stat", p, NULL), 0);
    ck_assert_msg(r.out[0] != '{' && strstr(r.out, "holder-loop"), "stat without -j:\n%s", r.out);
    run_free(&r);

    pid_t remover = fork();
    ck_assert_int_ge(remover, 0);
    if (remover == 0) {
        usleep(1500000);
        _exit(unlink(path) == 0 ? 0 : 1);
    }
    double t0 = now_s();
    int rc = elmon(&r, 20000, "stat", "-j", "-w", "0.2", p, NULL);
    double took = now_s() - t0;
    int st;
    waitpid(remover, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the stats file was not removed");
    ck_assert_msg(rc == 0 && !r.timed_out, "stat -w went on after the process exited (status %d):\n%s", rc, r.err);
    int looks = count_lines_with(r.out, "{\"pid\":");
    ck_assert_msg(looks >= 3 && took >= 1.4, "stat -j -w 0.2: %d looks in %.2f s:\n%s", looks, took, r.out);
    ck_assert_msg(strstr(r.out, "has exited"), "no word of the exit:\n%s", r.out);
    run_free(&r);
    stop_prog(holder, 3000);
}
END_TEST

/* top -n COUNT prints COUNT frames and stops; -d SECONDS is the time
 * between them: -n 3 -d 0.1 takes well under the default 1 s per frame,
 * --iterations 2 --delay 1.2 at least 1.2 s; values out of range are
 * usage errors. */
START_TEST(top_delay_and_iterations)
{
    struct elmon_stats_file f;
    valid_stats(&f);
    char path[800];
    pid_t holder = hold_stats(&f, sizeof f, 1, path, sizeof path);
    struct run r;
    double t0 = now_s();
    ck_assert_int_eq(elmon(&r, 20000, "top", "-n", "3", "-d", "0.1", NULL), 0);
    double took = now_s() - t0;
    ck_assert_int_eq(count_lines_with(r.out, "elmon top - "), 3);
    ck_assert_int_eq(count_lines_with(r.out, "holder-loop"), 3);
    ck_assert_msg(took < 1.5, "top -n 3 -d 0.1 took %.2f s", took);
    run_free(&r);
    t0 = now_s();
    ck_assert_int_eq(elmon(&r, 20000, "top", "--iterations", "2", "--delay", "1.2", NULL), 0);
    took = now_s() - t0;
    ck_assert_int_eq(count_lines_with(r.out, "elmon top - "), 2);
    ck_assert_msg(took >= 1.15, "top --iterations 2 --delay 1.2 took %.2f s", took);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 20000, "top", "-d", "0.05", "-n", "1", NULL), 2);
    ck_assert_msg(strstr(r.err, "--delay: seconds between 0.1 and 3600"), "%s", r.err);
    run_free(&r);
    ck_assert_int_eq(elmon(&r, 20000, "top", "-n", "0", NULL), 2);
    ck_assert_msg(strstr(r.err, "--iterations: a count of at least 1"), "%s", r.err);
    run_free(&r);
    stop_prog(holder, 3000);
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
    tcase_add_test(tc, truncated_while_read);
    tcase_add_test(tc, host_survives_truncation);
    tcase_add_test(tc, garbage_files);
    tcase_add_test(tc, hostile_names_escaped);
    tcase_add_test(tc, stat_short_options);
    tcase_add_test(tc, top_delay_and_iterations);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
