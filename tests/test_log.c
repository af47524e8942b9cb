/*
 * The human log (preload/core/log.c): where ELMON_LOG sends it (stderr,
 * off, a file, a %p file, stderr again after a path that cannot be
 * opened), whole lines with their prefixes, long lines cut to one line,
 * errno left alone, a writer stuck on a full pipe costing another thread
 * one bounded wait and an exiting process nothing, lines from concurrent
 * threads never mixed, and a forked child's own %p file.
 *
 * fd 2 is pointed at a file or a pipe inside each case (each runs in a
 * child of its own, CK_FORK) to read what the log wrote there.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "real.h"
#include "support.h"

static char *dir;
static char errpath[512];
static int saved_stderr = -1;

static void setup(void)
{
    dir = make_tmpdir("log");
    ck_assert_ptr_nonnull(dir);
    unsetenv("ELMON_LOG");
    saved_stderr = dup(2);
}

static void teardown(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
    remove_tree(dir);
    free(dir);
}

/* fd 2 becomes a fresh file in dir. */
static void stderr_to_file(void)
{
    snprintf(errpath, sizeof errpath, "%s/fd2.out", dir);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    if (fd != 2) {
        ck_assert_int_eq(dup2(fd, 2), 2);
        close(fd);
    }
}

/* The whole file (malloc'd, NUL-terminated); NULL when it does not exist. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

START_TEST(unset_goes_to_stderr)
{
    stderr_to_file();
    ck_assert_int_eq(chdir(dir), 0);
    /* Unset, and the explicit "stderr", are the same thing. */
    if (_i == 1)
        setenv("ELMON_LOG", "stderr", 1);
    elmon_log_open();
    ck_assert_int_eq(elmon_log_enabled(), 1);
    elmon_logf("hello %d", 42);
    elmon_warn("careful %s", "now");
    char *s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "elmon: hello 42\nelmon: warning: careful now\n");
    free(s);
    /* Nothing was created under the name "stderr". */
    ck_assert_int_ne(access("stderr", F_OK), 0);
}
END_TEST

START_TEST(off_writes_nothing)
{
    stderr_to_file();
    ck_assert_int_eq(chdir(dir), 0);
    setenv("ELMON_LOG", "off", 1);
    elmon_log_open();
    ck_assert_int_eq(elmon_log_enabled(), 0);
    elmon_logf("hello");
    elmon_warn("careful");
    elmon_log_line("raw", 3);
    char *s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "");
    free(s);
    /* "off" is not a file name. */
    ck_assert_int_ne(access("off", F_OK), 0);
}
END_TEST

START_TEST(file_gets_whole_prefixed_lines)
{
    stderr_to_file();
    char path[600];
    snprintf(path, sizeof path, "%s/elmon.log", dir);
    setenv("ELMON_LOG", path, 1);
    elmon_log_open();
    ck_assert_int_eq(elmon_log_enabled(), 1);
    elmon_logf("first %s", "line");
    elmon_warn("value %d is odd", 7);
    elmon_log_line("raw text", 8);
    elmon_log_line("cut here", 3);
    char *s = slurp(path, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "elmon: first line\nelmon: warning: value 7 is odd\nraw text\ncut\n");
    free(s);
    /* None of it went to stderr. */
    s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "");
    free(s);
    /* Created private, as outfile.c promises. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    /* Reopened (a second elmon_log_open), the file is appended to. */
    elmon_log_open();
    elmon_logf("again");
    s = slurp(path, NULL);
    ck_assert_int_eq(count_char(s, '\n'), 5);
    ck_assert_ptr_nonnull(strstr(s, "cut\nelmon: again\n"));
    free(s);
}
END_TEST

START_TEST(pid_path_expands)
{
    stderr_to_file();
    char pattern[600], want[600], literal[600];
    snprintf(pattern, sizeof pattern, "%s/log.%%p.100%%%%", dir);
    snprintf(want, sizeof want, "%s/log.%d.100%%", dir, (int)getpid());
    snprintf(literal, sizeof literal, "%s/log.%%p.100%%%%", dir);
    setenv("ELMON_LOG", pattern, 1);
    elmon_log_open();
    elmon_logf("from %d", (int)getpid());
    char *s = slurp(want, NULL);
    ck_assert_msg(s != NULL, "%s was not created from %s", want, pattern);
    char line[64];
    snprintf(line, sizeof line, "elmon: from %d\n", (int)getpid());
    ck_assert_str_eq(s, line);
    free(s);
    ck_assert_int_ne(access(literal, F_OK), 0);
    s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(uncreatable_path_warns_once_then_stderr)
{
    stderr_to_file();
    char path[600];
    /* A directory that does not exist, then a bad %-sequence: neither can
     * be opened. */
    if (_i == 0)
        snprintf(path, sizeof path, "%s/no/such/dir/elmon.log", dir);
    else
        snprintf(path, sizeof path, "%s/elmon.%%q.log", dir);
    setenv("ELMON_LOG", path, 1);
    elmon_log_open();
    ck_assert_int_eq(elmon_log_enabled(), 1);
    elmon_logf("one");
    elmon_logf("two");
    elmon_warn("three");
    char *s = slurp(errpath, NULL);
    ck_assert_int_eq(count_char(s, '\n'), 4);
    char *nl = strchr(s, '\n');
    *nl = 0;
    ck_assert_msg(strncmp(s, "elmon: warning: ELMON_LOG='", 27) == 0, "first line: %s", s);
    ck_assert_ptr_nonnull(strstr(s, path));
    ck_assert_ptr_nonnull(strstr(s, "cannot be opened"));
    ck_assert_ptr_nonnull(strstr(s, "using stderr"));
    ck_assert_str_eq(nl + 1, "elmon: one\nelmon: two\nelmon: warning: three\n");
    free(s);
}
END_TEST

START_TEST(long_line_cut_to_one_line)
{
    stderr_to_file();
    enum { N = 20000 };
    char *big = malloc(N + 1);
    for (int i = 0; i < N; i++)
        big[i] = (char)('a' + i % 26);
    big[N] = 0;
    /* elmon_log_line's own buffer, then the formatting buffer of logf. */
    elmon_log_line(big, N);
    elmon_logf("%s", big);
    elmon_logf("after");
    size_t len;
    char *s = slurp(errpath, &len);
    ck_assert_uint_eq(strlen(s), len);   /* no NUL written */
    ck_assert_int_eq(count_char(s, '\n'), 3);
    char *l1 = s, *e1 = strchr(l1, '\n');
    char *l2 = e1 + 1, *e2 = strchr(l2, '\n');
    char *l3 = e2 + 1;
    size_t n1 = (size_t)(e1 - l1), n2 = (size_t)(e2 - l2);
    ck_assert_msg(n1 >= 1024 && n1 < N, "raw line of %zu bytes", n1);
    ck_assert_int_eq(memcmp(l1, big, n1), 0);
    ck_assert_msg(n2 >= 1024 && n2 < N, "formatted line of %zu bytes", n2);
    ck_assert_int_eq(strncmp(l2, "elmon: ", 7), 0);
    ck_assert_int_eq(memcmp(l2 + 7, big, n2 - 7), 0);
    ck_assert_str_eq(l3, "elmon: after\n");
    free(s);
    free(big);
}
END_TEST

START_TEST(errno_left_alone)
{
    /* A write that fails (fd 2 closed: EBADF) and one that works. */
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            close(2);
        else
            stderr_to_file();
        elmon_log_open();
        errno = 4321;
        elmon_logf("x");
        ck_assert_int_eq(errno, 4321);
        errno = 4322;
        elmon_warn("y");
        ck_assert_int_eq(errno, 4322);
    }
    char *s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "elmon: x\nelmon: warning: y\n");
    free(s);
}
END_TEST

/* A pipe on fd 2 filled to the brim: the next write(2) blocks. */
static int pipe_r = -1;
static size_t filler;

static void stderr_to_full_pipe(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char junk[512];
    memset(junk, 'f', sizeof junk);
    filler = 0;
    for (;;) {
        ssize_t w = write(p[1], junk, sizeof junk);
        if (w <= 0)
            break;
        filler += (size_t)w;
    }
    /* Single bytes into whatever room is left. */
    while (write(p[1], junk, 1) == 1)
        filler++;
    fcntl(p[1], F_SETFL, 0);
    ck_assert_int_eq(dup2(p[1], 2), 2);
    close(p[1]);
    pipe_r = p[0];
}

/* Everything in the pipe until every writer is gone (fd 2 is restored
 * first so the read sees the end). */
static char *drain_pipe(size_t *len)
{
    dup2(saved_stderr, 2);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(pipe_r, buf + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (cap - n < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static char task_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return '?';
    buf[k] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

struct writer {
    const char *text;
    pid_t tid;
    int started;
    double ms;       /* how long its elmon_logf took */
};

static void *write_one(void *arg)
{
    struct writer *w = arg;
    __atomic_store_n(&w->tid, gettid_(), __ATOMIC_RELEASE);
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    double t0 = mono_ms();
    elmon_logf("%s", w->text);
    w->ms = mono_ms() - t0;
    return NULL;
}

static int join_within(pthread_t t, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    return pthread_timedjoin_np(t, NULL, &dl);
}

/* A writer that holds the lock, blocked in write(2) on the full pipe. */
static pthread_t stuck_thread;
static struct writer stuck = {"stuck", 0, 0, 0};

static void start_stuck_writer(void)
{
    stderr_to_full_pipe();
    elmon_log_open();
    ck_assert_int_eq(pthread_create(&stuck_thread, NULL, write_one, &stuck), 0);
    double t0 = mono_ms();
    while (!__atomic_load_n(&stuck.started, __ATOMIC_ACQUIRE) || task_state(stuck.tid) != 'S') {
        ck_assert_msg(mono_ms() - t0 < 10000, "the writer never blocked on the full pipe");
        usleep(1000);
    }
}

/* Lets the stuck writer finish, reading the pipe while it does; returns
 * what was written past the filler (malloc'd). */
static char *finish_stuck_writer(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    fcntl(pipe_r, F_SETFL, O_NONBLOCK);
    int joined = 0;
    double t0 = mono_ms();
    while (!joined && mono_ms() - t0 < 10000) {
        ssize_t k = read(pipe_r, buf + n, cap - n - 1);
        if (k > 0)
            n += (size_t)k;
        else
            joined = join_within(stuck_thread, 10) == 0;
    }
    ck_assert_msg(joined, "the stuck writer did not finish once the pipe was read");
    fcntl(pipe_r, F_SETFL, 0);
    size_t len;
    char *tail = drain_pipe(&len);
    ck_assert_uint_lt(n + len, cap);
    memcpy(buf + n, tail, len);
    n += len;
    free(tail);
    buf[n] = 0;
    ck_assert_uint_ge(n, filler);
    for (size_t i = 0; i < filler; i++)
        ck_assert_msg(buf[i] == 'f', "the filler was overwritten at byte %zu", i);
    memmove(buf, buf + filler, n - filler + 1);
    return buf;
}

START_TEST(stuck_writer_blocks_others_briefly)
{
    start_stuck_writer();
    /* Another thread's line waits for the lock about 50 ms, then is
     * dropped: it neither hangs nor sneaks into the pipe. */
    struct writer other = {"second", 0, 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_one, &other), 0);
    int rc = join_within(t, 5000);
    ck_assert_msg(rc == 0, "a second writer was still blocked after 5 s behind the stuck one");
    ck_assert_msg(other.ms < 1000, "the second writer waited %.0f ms", other.ms);
    ck_assert_msg(other.ms >= 20, "the second writer waited only %.1f ms: was the lock held?", other.ms);
    char *rest = finish_stuck_writer();
    ck_assert_str_eq(rest, "elmon: stuck\n");
    free(rest);
}
END_TEST

START_TEST(stuck_writer_costs_exit_nothing)
{
    start_stuck_writer();
    struct writer other = {"second", 0, 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_one, &other), 0);
    ck_assert_int_eq(join_within(t, 5000), 0);
    /* Once one wait has timed out, an exiting process's lines do not pay
     * 50 ms each: 40 of them would take 2 s. */
    __atomic_store_n(&elmon_exiting, 1, __ATOMIC_RELEASE);
    double t0 = mono_ms();
    for (int i = 0; i < 40; i++)
        elmon_logf("at exit %d", i);
    double ms = mono_ms() - t0;
    ck_assert_msg(ms < 500, "40 lines at exit behind a stuck writer took %.0f ms", ms);
    char *rest = finish_stuck_writer();
    ck_assert_str_eq(rest, "elmon: stuck\n");
    free(rest);
}
END_TEST

START_TEST(exit_drops_line_to_full_fd)
{
    ck_assert_int_eq(elmon_resolve_real(), 0);
    __atomic_store_n(&elmon_exiting, 1, __ATOMIC_RELEASE);
    /* At exit a line still goes out when the descriptor has room... */
    stderr_to_file();
    elmon_log_open();
    elmon_logf("room");
    char *s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "elmon: room\n");
    free(s);
    /* ...and is dropped after a short wait, not blocked on, when it has
     * none (nobody holds the lock here: no writer is stuck). */
    stderr_to_full_pipe();
    elmon_log_open();
    struct writer w = {"full", 0, 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_one, &w), 0);
    int rc = join_within(t, 5000);
    ck_assert_msg(rc == 0, "a line at exit was still blocked on a full pipe after 5 s");
    ck_assert_msg(w.ms < 1000, "the line at exit took %.0f ms", w.ms);
    size_t len;
    char *all = drain_pipe(&len);
    ck_assert_uint_eq(len, filler);
    ck_assert_ptr_null(strstr(all, "full"));
    free(all);
}
END_TEST

/* Lines from many threads, each longer than PIPE_BUF so the kernel alone
 * would not keep them whole, into a pipe read slowly. */
enum { WRITERS = 4, LINES = 150, BODY = 6000 };

static void *write_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    char *line = malloc(BODY + 64);
    for (int i = 0; i < LINES; i++) {
        int k = snprintf(line, 64, "<%d:%d>", id, i);
        memset(line + k, 'A' + id, BODY);
        memcpy(line + k + BODY, "</>", 3);
        elmon_log_line(line, (size_t)k + BODY + 3);
    }
    free(line);
    return NULL;
}

START_TEST(concurrent_lines_never_interleave)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(dup2(p[1], 2), 2);
    close(p[1]);
    elmon_log_open();
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_many, (void *)(intptr_t)i), 0);
    /* Read in small pieces so the pipe stays full and writers block
     * midway through their lines. */
    size_t cap = (size_t)WRITERS * LINES * (BODY + 64) + 1, n = 0;
    char *buf = malloc(cap);
    int done = 0, joined[WRITERS] = {0};
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (!done) {
        ssize_t k = read(p[0], buf + n, 1500 < cap - n - 1 ? 1500 : cap - n - 1);
        if (k > 0) {
            n += (size_t)k;
            continue;
        }
        done = 1;
        for (int i = 0; i < WRITERS; i++) {
            if (!joined[i])
                joined[i] = pthread_tryjoin_np(t[i], NULL) == 0;
            done &= joined[i];
        }
        if (!done)
            usleep(200);
    }
    ssize_t k;
    while ((k = read(p[0], buf + n, cap - n - 1)) > 0)
        n += (size_t)k;
    buf[n] = 0;
    close(p[0]);
    int next[WRITERS] = {0}, lines = 0;
    char *body = malloc(BODY);
    for (char *s = buf, *e; *s; s = e + 1) {
        e = strchr(s, '\n');
        ck_assert_msg(e != NULL, "output ends in a partial line");
        int id, seq, hdr;
        ck_assert_msg(sscanf(s, "<%d:%d>%n", &id, &seq, &hdr) == 2 && id >= 0 && id < WRITERS,
                      "line %d does not start with a header: %.40s", lines, s);
        /* A line may be dropped (a writer gives up on the lock after
         * ~50 ms on a loaded machine), never repeated or reordered. */
        ck_assert_msg(seq >= next[id] && seq < LINES, "writer %d: line %d after line %d", id, seq, next[id] - 1);
        next[id] = seq + 1;
        memset(body, 'A' + id, BODY);
        ck_assert_msg(e - s == hdr + BODY + 3 && memcmp(s + hdr, body, BODY) == 0 &&
                          memcmp(s + hdr + BODY, "</>", 3) == 0,
                      "line %d of writer %d is mixed with another (%td bytes)", seq, id, e - s);
        lines++;
    }
    /* Most lines get through (the drops are the exception). */
    ck_assert_msg(lines >= WRITERS * LINES / 2, "only %d of %d lines written", lines, WRITERS * LINES);
    free(body);
    free(buf);
}
END_TEST

START_TEST(fork_child_opens_its_own_pid_file)
{
    stderr_to_file();
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/log.%%p", dir);
    setenv("ELMON_LOG", pattern, 1);
    elmon_log_open();
    elmon_logf("parent before");
    int sync[2];
    ck_assert_int_eq(pipe(sync), 0);
    pid_t quiet = fork();
    if (quiet == 0) {
        /* A child that logs nothing makes no file. */
        elmon_log_atfork_child();
        _exit(0);
    }
    pid_t child = fork();
    if (child == 0) {
        elmon_log_atfork_child();
        elmon_logf("child %d", (int)getpid());
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(quiet, &st, 0), quiet);
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    elmon_logf("parent after");
    char path[700], want[64];
    snprintf(path, sizeof path, "%s/log.%d", dir, (int)getpid());
    char *s = slurp(path, NULL);
    ck_assert_str_eq(s, "elmon: parent before\nelmon: parent after\n");
    free(s);
    snprintf(path, sizeof path, "%s/log.%d", dir, (int)child);
    snprintf(want, sizeof want, "elmon: child %d\n", (int)child);
    s = slurp(path, NULL);
    ck_assert_msg(s != NULL, "the child's own log %s was not created", path);
    ck_assert_str_eq(s, want);
    free(s);
    snprintf(path, sizeof path, "%s/log.%d", dir, (int)quiet);
    ck_assert_msg(access(path, F_OK) != 0, "a child that logged nothing created %s", path);
    s = slurp(errpath, NULL);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

/* One TCase per concern, so CK_RUN_CASE can pick one: where (ELMON_LOG's
 * destinations), lines (shape, errno, threads), stuck (a writer blocked on
 * a full pipe, exit), fork. */
static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase(s, "where");
    tcase_add_loop_test(tc, unset_goes_to_stderr, 0, 2);
    tcase_add_test(tc, off_writes_nothing);
    tcase_add_test(tc, file_gets_whole_prefixed_lines);
    tcase_add_test(tc, pid_path_expands);
    tcase_add_loop_test(tc, uncreatable_path_warns_once_then_stderr, 0, 2);
    tc = tcase(s, "lines");
    tcase_add_test(tc, long_line_cut_to_one_line);
    tcase_add_test(tc, errno_left_alone);
    tcase_add_test(tc, concurrent_lines_never_interleave);
    tc = tcase(s, "stuck");
    tcase_add_test(tc, stuck_writer_blocks_others_briefly);
    tcase_add_test(tc, stuck_writer_costs_exit_nothing);
    tcase_add_test(tc, exit_drops_line_to_full_fd);
    tc = tcase(s, "fork");
    tcase_add_test(tc, fork_child_opens_its_own_pid_file);
    return run_suite(s);
}
