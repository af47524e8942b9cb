/*
 * elmon stat PID / elmon top [PID...]: the live figures libelmon publishes
 * in each monitored process's stats file (layout and rules:
 * common/statsfile.h).
 *
 * Reading is the only thing that makes the process refresh its figures:
 * each look moves the file's wanted_until_ns forward, and the first look
 * waits for the next refresh (at most a second and a bit).
 *
 * The file is read with pread, never mapped: anyone who can write it (the
 * user, any process of theirs) can truncate it at any moment, and a read
 * through a mapping past the new end raises SIGBUS, which a size check
 * made beforehand cannot prevent.  A short pread is just an error.  Every
 * field printed is checked first: a file that is cut short or garbage gets
 * one line saying so, and the other files still show.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "live.h"
#include "json.h"
#include "now.h"
#include "statsfile.h"

#define REFRESH_WAIT_NS 2500000000ull   /* a refresh comes within a second; allow for load */
#define FRESH_ENOUGH_NS 1500000000ull   /* figures someone else keeps fresh: no wait */
#define PID_LIMIT 4194304               /* the kernel's PID_MAX_LIMIT: no pid or tid above it */
#define STATS_FILE_BYTES sizeof(struct elmon_stats_file)


static volatile sig_atomic_t stop_requested;

static uint64_t mono_ns(void)
{
    return elmon_now_ns(CLOCK_MONOTONIC);
}

static uint64_t unix_ns(void)
{
    return elmon_now_ns(CLOCK_REALTIME);
}

/* Does pid map the file with this device and inode?  Only a live process
 * that has not exec'ed since creating its stats file does. */
static int maps_file(int pid, const struct stat *st)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned maj, min;
        unsigned long ino;
        if (sscanf(line, "%*s %*s %*s %x:%x %lu", &maj, &min, &ino) == 3)
            found = ino == (unsigned long)st->st_ino && maj == major(st->st_dev) && min == minor(st->st_dev);
        /* Lines longer than the buffer continue on the next read. */
        while (!strchr(line, '\n') && fgets(line, sizeof line, f))
            ;
    }
    fclose(f);
    return found;
}

/* The owner of a process, -1 when there is no such process (or only its
 * zombie is left). */
static long proc_uid(int pid, char *comm, size_t n)
{
    char path[64], buf[512];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    int ok = fstat(fileno(f), &st) == 0;
    fclose(f);
    buf[k] = 0;
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!ok || !open || !close || close < open || close[1] != ' ' || close[2] == 'Z' || close[2] == 'X')
        return -1;
    snprintf(comm, n, "%.*s", (int)(close - open - 1), open + 1);
    return (long)st.st_uid;
}


static int live_bad(struct live *lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int live_bad(struct live *lv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lv->why, sizeof lv->why, fmt, ap);
    va_end(ap);
    lv->bad = 1;
    lv->fresh = 0;
    return LIVE_BAD;
}

/* A short read or write: the file is smaller than a stats file now. */
static int live_cut(struct live *lv, ssize_t got, size_t want)
{
    struct stat st;
    if (got < 0)
        return live_bad(lv, "read failed: %s", strerror(errno));
    if (fstat(lv->fd, &st) == 0)
        return live_bad(lv, "cut short: %lld bytes, a stats file has %zu", (long long)st.st_size, STATS_FILE_BYTES);
    return live_bad(lv, "cut short: %zd bytes where %zu were wanted", got, want);
}

/* Read n bytes at off; 0, or LIVE_BAD when the file is shorter. */
static int live_pread(struct live *lv, void *out, size_t n, off_t off)
{
    ssize_t got;
    while ((got = pread(lv->fd, out, n, off)) < 0 && errno == EINTR)
        ;
    return got == (ssize_t)n ? 0 : live_cut(lv, got, n);
}

static int terminated(const char *s, size_t n)
{
    return memchr(s, 0, n) != NULL;
}

/* Why s is not a stats file of pid this elmon can show, or NULL.  What is
 * checked is everything a printer relies on: the layout, the counts that
 * index loops[], the strings printed (NUL inside their arrays), the ids
 * and the shares printed as percentages.  Figures of any value are shown
 * as they are; times in the future count as now.
 *
 * The header (up to cmdline) is written once, before the file is
 * published, and needs no seqlock: it is checked on any copy, so that
 * garbage with an odd "seq" is named at once instead of being waited on
 * as a writer mid-update.  The rest only on a consistent copy. */
static const char *header_invalid(const struct elmon_stats_file *s, int pid, uid_t uid, char *why, size_t n)
{
    if (memcmp(s->magic, ELMON_STATS_MAGIC, sizeof s->magic) != 0)
        return "no ELMSTATS magic: not a stats file";
    if (s->version != ELMON_STATS_VERSION)
        snprintf(why, n, "layout version %u, this elmon reads version %d", s->version, ELMON_STATS_VERSION);
    else if (s->size != STATS_FILE_BYTES)
        snprintf(why, n, "its header gives %u bytes, the layout of version %d has %zu", s->size,
                 ELMON_STATS_VERSION, STATS_FILE_BYTES);
    else if (s->pid != pid)
        snprintf(why, n, "written for pid %d", s->pid);
    else if (s->uid != (uint32_t)uid)
        snprintf(why, n, "written by uid %u", s->uid);
    else if (!terminated(s->comm, sizeof s->comm))
        return "comm is not NUL-terminated";
    else if (!terminated(s->cmdline, sizeof s->cmdline))
        return "cmdline is not NUL-terminated";
    else
        return NULL;
    return why;
}

static const char *figures_invalid(const struct elmon_stats_file *s, char *why, size_t n)
{
    if (!terminated(s->last_culprit, sizeof s->last_culprit))
        return "last_culprit is not NUL-terminated";
    else if (s->n_loops > ELMON_STATS_MAX_LOOPS)
        snprintf(why, n, "n_loops %u, more than the %d entries of loops[]", s->n_loops, ELMON_STATS_MAX_LOOPS);
    else if (s->n_loops_total < s->n_loops || s->n_loops_total > PID_LIMIT)
        snprintf(why, n, "n_loops_total %u with %u entries in use", s->n_loops_total, s->n_loops);
    else if (s->last_span_ongoing != 0 && s->last_span_ongoing != 1)
        snprintf(why, n, "last_span_ongoing %d, not 0 or 1", s->last_span_ongoing);
    else if (s->last_span_tid < 0 || s->last_span_tid > PID_LIMIT)
        snprintf(why, n, "last_span_tid %d", s->last_span_tid);
    else
        why[0] = 0;
    if (why[0])
        return why;
    for (uint32_t i = 0; i < s->n_loops; i++) {
        const struct elmon_stats_loop *l = &s->loops[i];
        if (!terminated(l->thread, sizeof l->thread) || !terminated(l->poller, sizeof l->poller) ||
            !terminated(l->status, sizeof l->status))
            snprintf(why, n, "loops[%u]: a name is not NUL-terminated", i);
        else if (l->tid <= 0 || l->tid > PID_LIMIT)
            snprintf(why, n, "loops[%u]: tid %d", i, l->tid);
        else if (l->utilization_ppm > 1000000)
            snprintf(why, n, "loops[%u]: utilization %u ppm, more than all of the time", i, l->utilization_ppm);
        if (why[0])
            return why;
    }
    return NULL;
}

int live_attach(struct live *lv, const char *dir, int pid, uid_t uid)
{
    memset(lv, 0, sizeof *lv);
    lv->pid = pid;
    lv->uid = uid;
    lv->fd = -1;
    snprintf(lv->path, sizeof lv->path, "%s/%d.stats", dir, pid);
    /* O_NONBLOCK: a FIFO planted under the name must not hang the open. */
    int fd = open(lv->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? LIVE_NONE : live_bad(lv, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
        close(fd);
        return live_bad(lv, "not a regular file of yours");
    }
    /* Whatever it holds: a file its process no longer maps is a leftover. */
    if (!maps_file(pid, &st)) {
        close(fd);
        unlink(lv->path);
        return LIVE_STALE;
    }
    lv->fd = fd;
    /* The header now, so that garbage costs no wait for a refresh. */
    static struct elmon_stats_file head;
    char why[sizeof lv->why];
    if (live_pread(lv, &head, offsetof(struct elmon_stats_file, wanted_until_ns), 0) < 0)
        return LIVE_BAD;
    const char *bad = header_invalid(&head, pid, uid, why, sizeof why);
    return bad ? live_bad(lv, "%s", bad) : LIVE_OK;
}

void live_detach(struct live *lv)
{
    if (lv->fd >= 0)
        close(lv->fd);
    lv->fd = -1;
}

/* Copy the figures under the seqlock into lv->copy, checked; LIVE_OK,
 * LIVE_BAD, or LIVE_BUSY if the writer never let go (it died mid-write):
 * lv->copy then keeps the previous copy.  The kernel makes each pread's
 * loads on this thread, so a fence between two preads orders them as the
 * seqlock needs (seq, then the figures, then seq again), as the fences
 * around a memcpy from a mapping did. */
int live_copy(struct live *lv)
{
    return live_copy_tries(lv, 2000);
}

int live_copy_tries(struct live *lv, int tries)
{
    static struct elmon_stats_file tmp;   /* 11 KB, off the stack */
    const off_t seq_at = (off_t)offsetof(struct elmon_stats_file, seq);
    for (int i = 0; i < tries; i++) {
        uint32_t s1, s2;
        if (live_pread(lv, &s1, sizeof s1, seq_at) < 0)
            return LIVE_BAD;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (live_pread(lv, &tmp, sizeof tmp, 0) < 0)
            return LIVE_BAD;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (live_pread(lv, &s2, sizeof s2, seq_at) < 0)
            return LIVE_BAD;
        char why[sizeof lv->why];
        const char *bad = header_invalid(&tmp, lv->pid, lv->uid, why, sizeof why);
        if (bad)
            return live_bad(lv, "%s", bad);
        if (!(s1 & 1) && s2 == s1 && tmp.seq == s1) {
            bad = figures_invalid(&tmp, why, sizeof why);
            if (bad)
                return live_bad(lv, "%s", bad);
            lv->copy = tmp;
            lv->have_copy = 1;
            lv->fresh = lv->copy.updated_mono_ns >= lv->asked_ns;
            return LIVE_OK;
        }
        if (i + 1 < tries)
            usleep(500);
    }
    return LIVE_BUSY;
}

/* Move wanted_until_ns forward.  It is written with pwrite of that field
 * alone, where a reader used to store through a mapping: the writer loads
 * it atomically, and a torn value costs at most one refresh early or late.
 * Only into a file still whole, since a pwrite past the end would make a
 * truncated file long again. */
int live_ask(struct live *lv)
{
    struct {
        uint64_t wanted_until_ns;
        uint32_t seq, n_loops, n_loops_total, pad;
        uint64_t updated_mono_ns;
    } head;
    _Static_assert(offsetof(struct elmon_stats_file, updated_mono_ns) -
                       offsetof(struct elmon_stats_file, wanted_until_ns) == offsetof(__typeof__(head), updated_mono_ns),
                   "wanted_until_ns to updated_mono_ns read in one pread");
    const off_t at = (off_t)offsetof(struct elmon_stats_file, wanted_until_ns);
    if (live_pread(lv, &head, sizeof head, at) < 0)
        return LIVE_BAD;
    uint64_t now = mono_ns(), prev = head.wanted_until_ns, upd = head.updated_mono_ns;
    /* Figures someone keeps fresh already need no wait. */
    lv->asked_ns = prev > now && upd + FRESH_ENOUGH_NS > now ? upd : now;
    if (now + ELMON_STATS_WANTED_NS <= prev)
        return LIVE_OK;
    struct stat st;
    if (fstat(lv->fd, &st) < 0 || st.st_size < (off_t)STATS_FILE_BYTES)
        return live_cut(lv, 0, STATS_FILE_BYTES);
    uint64_t until = now + ELMON_STATS_WANTED_NS;
    ssize_t put;
    while ((put = pwrite(lv->fd, &until, sizeof until, at)) < 0 && errno == EINTR)
        ;
    if (put != (ssize_t)sizeof until)
        return live_bad(lv, "cannot ask for fresh figures: %s", put < 0 ? strerror(errno) : "short write");
    return LIVE_OK;
}

/* Refreshed since our ask?  A file that cannot be read counts as done:
 * the copy after the wait says what is wrong. */
static int live_is_fresh(struct live *lv)
{
    uint64_t upd;
    const off_t at = (off_t)offsetof(struct elmon_stats_file, updated_mono_ns);
    if (pread(lv->fd, &upd, sizeof upd, at) != (ssize_t)sizeof upd)
        return 1;
    return upd >= lv->asked_ns;
}

/* Ask every readable file, wait (bounded) until each has refreshed, copy.
 * Checks each copy; one found bad (cut short, garbage) is marked so. */
static void live_refresh(struct live *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i].bad)
            live_ask(&v[i]);
    uint64_t deadline = mono_ns() + REFRESH_WAIT_NS;
    while (!stop_requested) {
        size_t waiting = 0;
        for (size_t i = 0; i < n; i++)
            waiting += !v[i].bad && !live_is_fresh(&v[i]);
        if (!waiting || mono_ns() >= deadline)
            break;
        usleep(20000);
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].bad || live_copy(&v[i]) != LIVE_BUSY)
            continue;
        v[i].fresh = 0;
        if (!v[i].have_copy)
            live_bad(&v[i], "never consistent: its writer stopped in the middle of an update");
    }
}

static int stats_dir_or_fail(const char *who, char *dir, size_t n)
{
    int rc = elmon_stats_dir(dir, n, 0, getenv("ELMON_STATS_DIR"), getenv("XDG_RUNTIME_DIR"));
    if (rc == -ENOENT)
        return 1;   /* nothing monitored has ever run: no files */
    if (rc < 0) {
        fprintf(stderr, "elmon %s: %s: %s\n", who, esc(dir),
                rc == -EPERM ? "not a private directory of this user; not reading it" : strerror(-rc));
        return -1;
    }
    return 0;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* Seconds since a CLOCK_MONOTONIC time; one in the future (the process
 * in another time namespace) counts as now. */
static double age_s(uint64_t mono)
{
    uint64_t now = mono_ns();
    return now > mono ? (double)(now - mono) / 1e9 : 0;
}

/* The last span's duration; one still running has lasted until now. */
static uint64_t span_ms(const struct elmon_stats_file *s, uint64_t now_unix)
{
    uint64_t so_far = now_unix > s->last_span_unix_ns ? (now_unix - s->last_span_unix_ns) / 1000000 : 0;
    return s->last_span_ongoing && so_far > s->last_span_ms ? so_far : s->last_span_ms;
}

/* Every string of the file printed as text goes through esc() or
 * esc_cut(): the process names its threads and itself. */
static void print_stat_text(FILE *f, const struct live *lv)
{
    const struct elmon_stats_file *s = &lv->copy;
    fprintf(f, "pid %d (%s): %u loop thread%s", s->pid, esc(s->comm), s->n_loops_total,
            s->n_loops_total == 1 ? "" : "s");
    if (s->updated_mono_ns)
        fprintf(f, ", figures %.1f s old%s\n", age_s(s->updated_mono_ns),
                lv->fresh ? "" : " (the process did not refresh them)");
    else
        fprintf(f, ", no figures yet (the process did not refresh them)\n");
    fprintf(f, "  %s\n", esc(s->cmdline));
    fprintf(f, "%-24s %-12s %-9s %9s %9s %9s %6s %8s %10s\n", "THREAD (TID)", "POLLER", "STATUS", "LAG ms",
            "MAX ms", "P99 ms", "UTIL", "TURNS/s", "SPANS W/C");
    for (uint32_t i = 0; i < s->n_loops; i++) {
        const struct elmon_stats_loop *l = &s->loops[i];
        char thread[160], spans[48], poller[17], status[17];
        /* The whole escaped name: the column widens rather than hide it. */
        snprintf(thread, sizeof thread, "%s (%d)", esc(l->thread), l->tid);
        snprintf(spans, sizeof spans, "%llu/%llu", (unsigned long long)l->n_warning,
                 (unsigned long long)l->n_critical);
        fprintf(f, "%-24s %-12s %-9s %9.1f %9.1f %9.2f %5.1f%% %8.1f %10s\n", thread,
                esc_cut(poller, sizeof poller, l->poller), esc_cut(status, sizeof status, l->status),
                ms(l->lag_now_ns), ms(l->lag_max_ns), ms(l->lag_p99_ns), l->utilization_ppm / 1e4,
                l->turns_per_s_milli / 1e3, spans);
    }
    if (s->last_span_unix_ns) {
        uint64_t now = unix_ns();
        double ago = now > s->last_span_unix_ns ? (double)(now - s->last_span_unix_ns) / 1e9 : 0;
        fprintf(f, "last blocking span: %llu ms%s, began %.1f s ago on tid %d: %s\n",
                (unsigned long long)span_ms(s, now), s->last_span_ongoing ? " so far (still running)" : "", ago,
                s->last_span_tid, s->last_culprit[0] ? esc(s->last_culprit) : "(culprit not captured)");
    } else {
        fprintf(f, "last blocking span: none\n");
    }
}

static void print_stat_json(FILE *f, const struct live *lv)
{
    const struct elmon_stats_file *s = &lv->copy;
    fprintf(f, "{\"pid\":%d,\"comm\":", s->pid);
    json_put_str(f, s->comm);
    fputs(",\"cmdline\":", f);
    json_put_str(f, s->cmdline);
    fprintf(f, ",\"fresh\":%s,\"age_s\":%.3f,\"loops_total\":%u,\"loops\":[", lv->fresh ? "true" : "false",
            s->updated_mono_ns ? age_s(s->updated_mono_ns) : -1.0, s->n_loops_total);
    for (uint32_t i = 0; i < s->n_loops; i++) {
        const struct elmon_stats_loop *l = &s->loops[i];
        fprintf(f, "%s{\"tid\":%d,\"thread\":", i ? "," : "", l->tid);
        json_put_str(f, l->thread);
        fputs(",\"poller\":", f);
        json_put_str(f, l->poller);
        fputs(",\"status\":", f);
        json_put_str(f, l->status);
        fprintf(f, ",\"lag_ms\":%.3f,\"lag_recent_max_ms\":%.3f,\"lag_max_ms\":%.3f,\"lag_p50_ms\":%.3f,\"lag_p99_ms\":%.3f"
                   ",\"utilization\":%.4f,\"turns_per_s\":%.3f,\"turns\":%llu,\"blocks_warning\":%llu,\"blocks_critical\":%llu}",
                ms(l->lag_now_ns), ms(l->lag_recent_ns), ms(l->lag_max_ns), ms(l->lag_p50_ns), ms(l->lag_p99_ns),
                l->utilization_ppm / 1e6, l->turns_per_s_milli / 1e3, (unsigned long long)l->n_turns,
                (unsigned long long)l->n_warning, (unsigned long long)l->n_critical);
    }
    fprintf(f, "],\"blocking_spans\":%llu,\"last_span\":", (unsigned long long)s->n_spans);
    if (s->last_span_unix_ns) {
        uint64_t now = unix_ns();
        fprintf(f, "{\"duration_ms\":%llu,\"ongoing\":%s,\"tid\":%d,\"age_s\":%.3f,\"culprit\":",
                (unsigned long long)span_ms(s, now), s->last_span_ongoing ? "true" : "false", s->last_span_tid,
                now > s->last_span_unix_ns ? (double)(now - s->last_span_unix_ns) / 1e9 : 0.0);
        json_put_str(f, s->last_culprit[0] ? s->last_culprit : NULL);
        fputs("}", f);
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
}

static int parse_pid(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v <= 0 || v > PID_LIMIT)
        return -1;
    return (int)v;
}

/* The one-line reason pid has no stats we can read; always exit 1. */
static int explain_missing(const char *dir, int pid, int stale)
{
    char comm[64];
    long uid = proc_uid(pid, comm, sizeof comm);
    if (uid < 0)
        fprintf(stderr, "elmon stat: no process %d%s\n", pid, stale ? " (its stale stats file was removed)" : "");
    else if (uid != (long)geteuid())
        fprintf(stderr, "elmon stat: process %d (%s) belongs to another user (uid %ld); elmon reads only your own processes\n",
                pid, esc(comm), uid);
    else
        fprintf(stderr, "elmon stat: process %d (%s) is not monitored by libelmon (no live stats in %s: not started under libelmon, no event loop yet, or ELMON_STATS=0)\n",
                pid, esc(comm), esc(dir));
    return ELMON_EXIT_FAILURE;
}

/* The one line for a stats file that cannot be shown. */
static void print_bad(FILE *f, const char *who, const struct live *lv)
{
    fprintf(f, "elmon %s: %s: unreadable stats file: %s\n", who, esc(lv->path), lv->why);
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Sleep up to ms; returns the key pressed on a terminal stdin, 0 if none. */
static int wait_key(int ms, int tty)
{
    struct pollfd p = {0, POLLIN, 0};
    int r = poll(&p, tty ? 1 : 0, ms);
    if (r > 0 && tty) {
        char c;
        if (read(0, &c, 1) == 1)
            return c;
    }
    return 0;
}

/* Attach and take the first checked copy: LIVE_OK, or what live_attach
 * said, or LIVE_BAD with lv->why. */
static int live_open(struct live *lv, const char *dir, int pid)
{
    int rc = live_attach(lv, dir, pid, geteuid());
    if (rc != LIVE_OK)
        return rc;
    live_refresh(lv, 1);
    return lv->bad ? LIVE_BAD : LIVE_OK;
}

int cmd_stat(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"watch", required_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, c;
    double watch = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hjw:", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'w': {
            char *end;
            watch = strtod(optarg, &end);
            if (*end || end == optarg || !(watch >= 0.1 && watch <= 86400)) {
                fprintf(stderr, "elmon stat: --watch: seconds between 0.1 and 86400, not '%s'\n", optarg);
                return ELMON_EXIT_USAGE;
            }
            break;
        }
        case 'h': usage("stat"); return ELMON_EXIT_OK;
        default:
            fprintf(stderr, "Try 'elmon stat --help'.\n");
            return ELMON_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "elmon stat: exactly one PID\nTry 'elmon stat --help'.\n");
        return ELMON_EXIT_USAGE;
    }
    int pid = parse_pid(argv[optind]);
    if (pid < 0) {
        fprintf(stderr, "elmon stat: '%s' is not a process id\n", argv[optind]);
        return ELMON_EXIT_USAGE;
    }
    char dir[4000];
    int drc = stats_dir_or_fail("stat", dir, sizeof dir);
    if (drc < 0)
        return ELMON_EXIT_FAILURE;
    if (watch > 0)
        catch_stop_signals();
    static struct live lv;
    int rc = drc ? LIVE_NONE : live_open(&lv, dir, pid);
    if (rc == LIVE_BAD) {
        print_bad(stderr, "stat", &lv);
        live_detach(&lv);
        return ELMON_EXIT_FAILURE;
    }
    if (rc != LIVE_OK)
        return explain_missing(dir, pid, rc == LIVE_STALE);
    int status = ELMON_EXIT_OK;
    for (int first = 1; !stop_requested; first = 0) {
        /* Between looks, a process that ended or exec'ed is noticed. */
        char comm[64];
        if (!first && (proc_uid(pid, comm, sizeof comm) < 0 || access(lv.path, F_OK) < 0)) {
            printf("elmon stat: process %d has exited\n", pid);
            break;
        }
        if (!first)
            live_refresh(&lv, 1);
        /* Cut short or overwritten while watched: said once, and no
         * figures of it are shown. */
        if (lv.bad) {
            fflush(stdout);
            print_bad(stderr, "stat", &lv);
            status = ELMON_EXIT_FAILURE;
            break;
        }
        if (json)
            print_stat_json(stdout, &lv);
        else
            print_stat_text(stdout, &lv);
        fflush(stdout);
        if (watch <= 0)
            break;
        if (!json)
            putchar('\n');
        wait_key((int)(watch * 1000), 0);
    }
    live_detach(&lv);
    return status;
}

struct top_row {
    const struct live *lv;
    const struct elmon_stats_loop *l;   /* NULL: a process with no loop left */
};

static int by_lag(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    uint64_t lx = x->l ? x->l->lag_now_ns : 0, ly = y->l ? y->l->lag_now_ns : 0;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->lv->pid - y->lv->pid;
}

static int wanted_pid(int pid, char **pids, int n)
{
    if (!n)
        return 1;
    for (int i = 0; i < n; i++)
        if (parse_pid(pids[i]) == pid)
            return 1;
    return 0;
}

size_t live_scan(const char *dir, uid_t uid, char **pids, int n_pids, struct live **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct live *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *dot = strrchr(e->d_name, '.');
        if (!dot || strcmp(dot, ".stats") != 0)
            continue;
        *dot = 0;
        int pid = parse_pid(e->d_name);
        if (pid < 0 || !wanted_pid(pid, pids, n_pids))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct live *nv = realloc(v, cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        int rc = live_attach(&v[n], dir, pid, uid);
        if (rc == LIVE_OK || rc == LIVE_BAD)
            n++;
    }
    closedir(d);
    *out = v;
    return n;
}

static void top_frame(FILE *f, struct live *v, size_t n, int tty, int rows_max)
{
    size_t n_rows = 0, n_loops = 0, n_procs = 0;
    for (size_t i = 0; i < n; i++)
        if (!v[i].bad) {
            n_rows += v[i].copy.n_loops ? v[i].copy.n_loops : 1;
            n_procs++;
        }
    struct top_row *rows = calloc(n_rows ? n_rows : 1, sizeof *rows);
    if (!rows)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].bad)
            continue;
        n_loops += v[i].copy.n_loops_total;
        if (!v[i].copy.n_loops)
            rows[k++] = (struct top_row){&v[i], NULL};
        for (uint32_t j = 0; j < v[i].copy.n_loops; j++)
            rows[k++] = (struct top_row){&v[i], &v[i].copy.loops[j]};
    }
    if (k)
        qsort(rows, k, sizeof *rows, by_lag);
    char stamp[16];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%H:%M:%S", localtime(&now));
    if (tty)
        fputs("\033[H\033[2J", f);
    fprintf(f, "elmon top - %s - %zu process%s, %zu loop thread%s%s\n", stamp, n_procs, n_procs == 1 ? "" : "es",
            n_loops, n_loops == 1 ? "" : "s", tty ? " - q quits" : "");
    fprintf(f, "%7s %-15s %-22s %-9s %9s %9s %6s %8s %9s  %s\n", "PID", "COMMAND", "THREAD (TID)", "STATUS",
            "LAG ms", "MAX ms", "UTIL", "TURNS/s", "SPANS", "LAST CULPRIT");
    for (size_t i = 0; i < k && (rows_max <= 0 || (int)i < rows_max); i++) {
        const struct live *lv = rows[i].lv;
        const struct elmon_stats_loop *l = rows[i].l;
        /* Host strings escaped and cut to their columns (json.h). */
        char comm[16], culprit_cut[61];
        esc_cut(comm, sizeof comm, lv->copy.comm);
        const char *culprit = lv->copy.last_culprit[0] ? esc_cut(culprit_cut, sizeof culprit_cut, lv->copy.last_culprit)
                              : lv->copy.last_span_unix_ns ? "(not captured)" : "-";
        if (!l) {
            fprintf(f, "%7d %-15s %-22s %-9s %9s %9s %6s %8s %9s  %s\n", lv->pid, comm, "-", "-", "-",
                    "-", "-", "-", "-", culprit);
            continue;
        }
        char thread[64], name[16], spans[48], status[10];
        snprintf(thread, sizeof thread, "%s (%d)", esc_cut(name, sizeof name, l->thread), l->tid);
        snprintf(spans, sizeof spans, "%llu", (unsigned long long)(l->n_warning + l->n_critical));
        fprintf(f, "%7d %-15s %-22s %-9s %9.1f %9.1f %5.1f%% %8.1f %9s  %s\n", lv->pid, comm, thread,
                lv->fresh ? esc_cut(status, sizeof status, l->status) : "stale", ms(l->lag_now_ns),
                ms(l->lag_max_ns), l->utilization_ppm / 1e4, l->turns_per_s_milli / 1e3, spans, culprit);
    }
    if (!k)
        fprintf(f, "(no monitored process of yours is running)\n");
    /* In the frame, not on stderr: a terminal's next frame would clear it. */
    for (size_t i = 0; i < n; i++)
        if (v[i].bad)
            print_bad(f, "top", &v[i]);
    fflush(f);
    free(rows);
}

int cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {
        {"delay", required_argument, 0, 'd'},
        {"iterations", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    double delay = 1;
    long iterations = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hd:n:", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            delay = strtod(optarg, &end);
            if (*end || end == optarg || !(delay >= 0.1 && delay <= 3600)) {
                fprintf(stderr, "elmon top: --delay: seconds between 0.1 and 3600, not '%s'\n", optarg);
                return ELMON_EXIT_USAGE;
            }
            break;
        case 'n':
            iterations = strtol(optarg, &end, 10);
            if (*end || end == optarg || iterations < 1) {
                fprintf(stderr, "elmon top: --iterations: a count of at least 1, not '%s'\n", optarg);
                return ELMON_EXIT_USAGE;
            }
            break;
        case 'h': usage("top"); return ELMON_EXIT_OK;
        default:
            fprintf(stderr, "Try 'elmon top --help'.\n");
            return ELMON_EXIT_USAGE;
        }
    }
    for (int i = optind; i < argc; i++)
        if (parse_pid(argv[i]) < 0) {
            fprintf(stderr, "elmon top: '%s' is not a process id\n", argv[i]);
            return ELMON_EXIT_USAGE;
        }
    char dir[4000];
    int drc = stats_dir_or_fail("top", dir, sizeof dir);
    if (drc < 0)
        return ELMON_EXIT_FAILURE;

    int tty = isatty(0) && isatty(1);
    struct termios saved;
    if (tty && tcgetattr(0, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &raw);
    } else {
        tty = 0;
    }
    catch_stop_signals();
    for (long it = 0; !stop_requested && (!iterations || it < iterations); it++) {
        struct live *v;
        size_t n = drc ? 0 : live_scan(dir, geteuid(), argv + optind, argc - optind, &v);
        if (drc)
            v = NULL;
        live_refresh(v, n);
        top_frame(stdout, v, n, tty, 0);
        for (size_t i = 0; i < n; i++)
            live_detach(&v[i]);
        free(v);
        if (iterations && it + 1 >= iterations)
            break;
        if (!tty)
            putchar('\n');
        int key = wait_key((int)(delay * 1000), tty);
        if (key == 'q' || key == 'Q')
            break;
    }
    if (tty)
        tcsetattr(0, TCSANOW, &saved);
    return ELMON_EXIT_OK;
}
