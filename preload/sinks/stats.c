/*
 * The live stats sink (layout and rules in common/statsfile.h): created at the first
 * tick or span of a process with a loop, refreshed once a second while a
 * reader wants it, removed at exit.
 *
 * Owns: the process's stats file: its descriptor and its directory's, the
 * read-only marker mapping, the copy it is written from (st_mem), its
 * names, and the figures of the previous refresh (for the rates).
 * Threads: the watchdog thread (tick, spans: the only writer of the
 * file), the exiting thread (shutdown, and the last spans once the
 * watchdog has stopped), the forking thread in the child (atfork).
 * May not: write or read the file through a mapping (pwrite from st_mem
 * only: a truncated mapping faults), be reached from the hot path, or make
 * a file for a process that runs no loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "outfile.h"
#include "ownfd.h"
#include "real.h"
#include "registry.h"
#include "sink.h"
#include "snapshot.h"
#include "statsfile.h"

/* All of it is the writer's (watchdog thread) state, except st_state,
 * which the exiting thread also sets (atomic) to stop further writes. */
static int st_state;                     /* 0 not tried, 1 open, -1 off or failed */
static int st_dirfd = -1;               /* the directory, O_PATH, one of libelmon's own (ownfd.h) */
/* The file is written with pwrite from this copy, never mapped: another
 * process of the user that truncates a mapped file would make the next
 * store through the mapping a SIGBUS in the host.  Readers read it with
 * pread under the seqlock (seq odd while an update is being written). */
static struct elmon_stats_file st_mem;
static struct elmon_stats_file *st_map;  /* &st_mem once the file exists */
static int st_fd = -1;                   /* the file, one of libelmon's own (ownfd.h) */
static void *st_marker = MAP_FAILED;     /* PROT_READ, never touched: see stats_create */

/* Bytes [off, off + n) of st_mem into the file; -1 and errno when the file
 * is no longer ours or the write fails. */
static int put(size_t off, size_t n)
{
    if (!elmon_own_ok(st_fd)) {
        errno = EBADF;
        return -1;
    }
    const char *p = (const char *)&st_mem + off;
    while (n) {
        ssize_t w = pwrite(st_fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        off += (size_t)w;
        n -= (size_t)w;
    }
    return 0;
}

#define SEQ_OFF offsetof(struct elmon_stats_file, seq)
#define BODY_OFF (SEQ_OFF + sizeof st_mem.seq)
static char st_path[4096];              /* for messages; the work is relative to st_dirfd */
static char st_name[32], st_tmp[40];
static uint64_t st_prev_mono_ns;         /* the previous refresh */
static struct {
    uint32_t generation;
    uint64_t n_turns, busy_ns;
} st_prev[ELMON_MAX_LOOPS];

static void read_cmdline(char *out, size_t n)
{
    long k = elmon_read_small("/proc/self/cmdline", out, n);
    if (k <= 0) {
        out[0] = 0;
        return;
    }
    for (ssize_t i = 0; i < k; i++)
        if (out[i] == 0 || out[i] == '\n')
            out[i] = ' ';
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = 0;
}

/* The per-user directory (common/statsfile.h names it), reached without
 * following a symlink anywhere and checked on the opened descriptor, not
 * by name: a directory another user can write to (XDG_RUNTIME_DIR of
 * theirs) could swap the name between a check and a use. */
static int stats_dir_open(char *dir, size_t n)
{
    int rc = elmon_stats_dir_path(dir, n, elmon_env_str("ELMON_STATS_DIR"), elmon_env_str("XDG_RUNTIME_DIR"));
    if (rc < 0)
        return rc;
    char last[256];
    int parent = elmon_open_parent(dir, last, sizeof last);
    if (parent < 0)
        return parent;
    if (mkdirat(parent, last, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        elmon_real.close(parent);
        return rc;
    }
    int dfd = openat(parent, last, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    rc = dfd < 0 ? (errno == ENOTDIR ? -ELOOP : -errno) : 0;
    elmon_real.close(parent);
    if (dfd < 0)
        return rc;
    struct stat st;
    if (fstat(dfd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        elmon_real.close(dfd);
        return -EPERM;
    }
    dfd = elmon_own_adopt(dfd);
    return dfd < 0 ? -EMFILE : dfd;
}

static int stats_create(void)
{
    char dir[4000];
    /* From the environment as the process started (config.c's snapshot):
     * servers may have rewritten theirs by now. */
    int dfd = stats_dir_open(dir, sizeof dir);
    if (dfd < 0) {
        /* Named by the variable that chose it, as every refused path is. */
        const char *var = elmon_env_str("ELMON_STATS_DIR") && *elmon_env_str("ELMON_STATS_DIR") ? "ELMON_STATS_DIR"
                          : elmon_env_str("XDG_RUNTIME_DIR") && elmon_env_str("XDG_RUNTIME_DIR")[0] == '/'
                              ? "XDG_RUNTIME_DIR"
                              : "the default /tmp/elmon-UID";
        elmon_warn("no live stats for elmon stat/top: directory %.200s (from %s) unusable (%s)", dir, var,
                   dfd == -EPERM ? "not a private directory of this user" : elmon_open_out_why(dfd));
        return dfd;
    }
    int rc;
    snprintf(st_path, sizeof st_path, "%s/%d.stats", dir, (int)getpid());
    snprintf(st_name, sizeof st_name, "%d.stats", (int)getpid());
    /* Made complete and mapped under a name of its own, then renamed into
     * place: a reader that finds PID.stats before this process maps it
     * takes it for a dead process's leftover and removes it. */
    snprintf(st_tmp, sizeof st_tmp, "%s.new", st_name);
    char tmp[sizeof st_path + 8];
    snprintf(tmp, sizeof tmp, "%s.new", st_path);
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = openat(dfd, st_tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        /* Our pid's file in our private directory can only be left over
         * by a dead process that had this pid, or by this process before
         * an exec: replace it. */
        if (fd < 0 && errno == EEXIST && attempt == 0)
            unlinkat(dfd, st_tmp, 0);
    }
    if (fd < 0) {
        rc = -errno;
        elmon_own_release(dfd);
        elmon_warn("no live stats for elmon stat/top: cannot create %.200s (%s)", tmp, strerror(-rc));
        return rc;
    }
    /* The blocks are allocated before anything is written, not left
     * sparse: on a full filesystem (the default directory is on the small
     * /run/user tmpfs) a later write would fail half done. */
    struct elmon_stats_file *m = &st_mem;
    memset(m, 0, sizeof *m);
    int err = posix_fallocate(fd, 0, sizeof *m);
    if (err == 0)
        fd = elmon_own_adopt(fd);
    if (err || fd < 0) {
        rc = err ? -err : -EMFILE;
        unlinkat(dfd, st_tmp, 0);
        if (fd >= 0)
            elmon_real.close(fd);
        elmon_own_release(dfd);
        elmon_warn("no live stats for elmon stat/top: cannot allocate %.200s (%s)", tmp, strerror(-rc));
        return rc;
    }
    m->version = ELMON_STATS_VERSION;
    m->size = sizeof *m;
    m->pid = (int32_t)getpid();
    m->uid = (uint32_t)geteuid();
    snprintf(m->comm, sizeof m->comm, "%s", elmon_program());
    read_cmdline(m->cmdline, sizeof m->cmdline);
    const char *prefix = elmon_env_str("ELMON_METRIC_PREFIX"), *svc = elmon_env_str("OTEL_SERVICE_NAME"),
               *ver = elmon_env_str("SERVICE_VERSION");
    snprintf(m->metric_prefix, sizeof m->metric_prefix, "%s", prefix ? prefix : "");
    snprintf(m->service_name, sizeof m->service_name, "%s", svc ? svc : "");
    snprintf(m->service_version, sizeof m->service_version, "%s", ver ? ver : "");
    /* Whole, magic included, before the name appears: a reader that finds
     * the file finds a complete header. */
    memcpy(m->magic, ELMON_STATS_MAGIC, sizeof m->magic);
    st_fd = fd;
    /* A read-only mapping, never read: the readers' sign that a live
     * process owns the file (a file no process maps is a dead one's
     * leftover, cli/live.c).  Untouched, it cannot fault when the file is
     * truncated. */
    st_marker = mmap(NULL, sizeof *m, PROT_READ, MAP_SHARED, fd, 0);
    if (st_marker == MAP_FAILED || put(0, sizeof *m) < 0) {
        rc = -errno;
        unlinkat(dfd, st_tmp, 0);
        elmon_own_release(fd);
        st_fd = -1;
        elmon_own_release(dfd);
        if (st_marker != MAP_FAILED)
            munmap(st_marker, sizeof *m);
        st_marker = MAP_FAILED;
        elmon_warn("no live stats for elmon stat/top: cannot write or map %.200s (%s)", tmp, strerror(-rc));
        return rc;
    }
    /* rename replaces a leftover PID.stats of a dead process atomically. */
    if (renameat(dfd, st_tmp, dfd, st_name) < 0) {
        rc = -errno;
        unlinkat(dfd, st_tmp, 0);
        elmon_own_release(st_fd);
        st_fd = -1;
        elmon_own_release(dfd);
        elmon_warn("no live stats for elmon stat/top: cannot publish %.200s (%s)", st_path, strerror(-rc));
        return rc;
    }
    st_dirfd = dfd;
    st_map = m;
    return 0;
}

static int stats_ensure(void)
{
    int s = __atomic_load_n(&st_state, __ATOMIC_ACQUIRE);
    if (s)
        return s > 0 ? 0 : -1;
    if (!elmon_env_bool("ELMON_STATS", 1) || stats_create() < 0) {
        __atomic_store_n(&st_state, -1, __ATOMIC_RELEASE);
        return -1;
    }
    __atomic_store_n(&st_state, 1, __ATOMIC_RELEASE);
    return 0;
}

/* seq odd, then the update's stores into st_mem, then seq_end writes the
 * body and seq even.  wanted_until_ns (before seq) is the readers' field:
 * never written here after the file is made. */
static void seq_begin(struct elmon_stats_file *m)
{
    m->seq++;
    put(SEQ_OFF, sizeof m->seq);
}

static void seq_end(struct elmon_stats_file *m)
{
    m->seq++;
    /* Someone cut the file (truncate needs only the user's rights): made
     * whole again, header included, rather than left unreadable. */
    struct stat st;
    size_t from = fstat(st_fd, &st) == 0 && st.st_size >= (off_t)sizeof *m ? BODY_OFF : 0;
    if (put(from, sizeof *m - from) == 0)
        put(SEQ_OFF, sizeof m->seq);
}

/* What a reader asked for, from the file. */
static uint64_t wanted_until(void)
{
    uint64_t w = 0;
    if (!elmon_own_ok(st_fd) || pread(st_fd, &w, sizeof w, offsetof(struct elmon_stats_file, wanted_until_ns)) != sizeof w)
        return 0;
    return w;
}

static uint64_t per_interval(uint64_t delta, uint64_t scale, uint64_t dt_ns)
{
    return dt_ns ? (uint64_t)((unsigned __int128)delta * scale / dt_ns) : 0;
}

static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One loop's entry.  Rates are over the interval since the previous
 * refresh, or since the loop started when this loop was not seen then. */
static void fill_loop(struct elmon_stats_loop *e, struct elmon_loop *l, int slot,
                      const struct elmon_loop_snapshot *s, uint64_t now_mono, uint64_t now_unix)
{
    uint64_t busy = s->busy_ns + s->ongoing_busy_ns;
    uint64_t d_turns = s->n_turns, d_busy = busy;
    uint64_t dt = now_unix > s->start_unix_ns ? now_unix - s->start_unix_ns : 0;
    if (st_prev_mono_ns && st_prev[slot].generation == s->generation) {
        d_turns = s->n_turns - st_prev[slot].n_turns;
        d_busy = busy > st_prev[slot].busy_ns ? busy - st_prev[slot].busy_ns : 0;
        dt = now_mono - st_prev_mono_ns;
    }
    st_prev[slot].generation = s->generation;
    st_prev[slot].n_turns = s->n_turns;
    st_prev[slot].busy_ns = busy;

    e->tid = s->tid;
    snprintf(e->poller, sizeof e->poller, "%s", elmon_poller_name(s->poller));
    snprintf(e->thread, sizeof e->thread, "%.31s", s->thread);
    e->start_unix_ns = s->start_unix_ns;
    e->n_turns = s->n_turns;
    e->n_warning = s->n_warning;
    e->n_critical = s->n_critical;
    /* recent_max_ns[] and recent_pos are the watchdog's, and so is this
     * thread: the last full second's maximum. */
    unsigned n = sizeof l->recent_max_ns / sizeof l->recent_max_ns[0];
    uint64_t last_second = l->recent_pos ? l->recent_max_ns[(l->recent_pos - 1) % n]
                                         : ELMON_LOAD(&l->window_max_lag_ns);
    e->lag_now_ns = s->ongoing_busy_ns > last_second ? s->ongoing_busy_ns : last_second;
    e->lag_recent_ns = s->recent_max_lag_ns;
    snprintf(e->status, sizeof e->status, "%s", elmon_status_name(s->recent_max_lag_ns));
    e->lag_max_ns = s->lag.max_ns > s->ongoing_busy_ns ? s->lag.max_ns : s->ongoing_busy_ns;
    e->lag_p50_ns = elmon_hist_quantile(&s->lag, 0.50);
    e->lag_p99_ns = elmon_hist_quantile(&s->lag, 0.99);
    uint64_t ppm = per_interval(d_busy, 1000000, dt);
    e->utilization_ppm = (uint32_t)(ppm > 1000000 ? 1000000 : ppm);
    uint64_t tps = per_interval(d_turns, 1000000000000ull, dt);
    e->turns_per_s_milli = (uint32_t)(tps > UINT32_MAX ? UINT32_MAX : tps);
    e->busy_ns = busy;
    e->idle_ns = s->idle_ns;
    e->n_fds = s->n_fds;
    /* The histogram's own count and sum, so that _count equals the sum of
     * the buckets and _sum their samples, as a scraper checks. */
    elmon_hist_explicit(&s->lag, elmon_hist_bucket_lo, elmon_hist_bucket_hi, e->lag_buckets);
    e->lag_count = 0;
    for (unsigned b = 0; b <= ELMON_LAG_BOUNDS; b++)
        e->lag_count += e->lag_buckets[b];
    e->lag_sum_ns = s->lag.sum_ns;
}

static void refresh(uint64_t now_mono)
{
    struct elmon_stats_file *m = st_map;
    static struct elmon_loop_snapshot snap;   /* 8 KB: off the watchdog's stack */
    uint64_t now_unix = unix_now_ns();
    seq_begin(m);
    uint32_t used = 0, total = 0;
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_loop *l = &elmon_loops[i];
        if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) != ELMON_SLOT_ACTIVE)
            continue;
        total++;
        elmon_loop_snapshot(l, &snap);
        if (used < ELMON_STATS_MAX_LOOPS)
            fill_loop(&m->loops[used++], l, i, &snap, now_mono, now_unix);
    }
    memset(&m->loops[used], 0, (ELMON_STATS_MAX_LOOPS - used) * sizeof m->loops[0]);
    m->n_loops = used;
    m->n_loops_total = total;
    m->updated_mono_ns = now_mono;
    seq_end(m);
    st_prev_mono_ns = now_mono;
}

static void stats_tick(void)
{
    if (stats_ensure() < 0)
        return;
    uint64_t now = elmon_mono_ns();
    if (now < wanted_until())
        refresh(now);
    else
        st_prev_mono_ns = 0;   /* rates restart from the loop's start when wanted again */
}

static void stats_span(const struct elmon_span_report *r, int flags)
{
    (void)flags;
    if (stats_ensure() < 0)
        return;
    char culprit[sizeof st_map->last_culprit];
    const char *c = r->captured ? elmon_span_str(r, r->culprit) : NULL;
    snprintf(culprit, sizeof culprit, "%s", c ? c : "");
    int ongoing = r->phase == ELMON_SPAN_BEGIN;
    struct elmon_stats_file *m = st_map;
    seq_begin(m);
    if (!ongoing)
        m->n_spans++;
    m->last_span_unix_ns = r->start_unix_ns;
    m->last_span_ms = r->duration_ns / 1000000;
    m->last_span_tid = r->tid;
    m->last_span_ongoing = ongoing;
    /* The crossing usually has the culprit; an end without one keeps it. */
    if (culprit[0] || ongoing)
        memcpy(m->last_culprit, culprit, sizeof culprit);
    seq_end(m);
}

/* The descriptor stays open: a watchdog that did not stop in time may
 * still be writing through it, and the process is about to go anyway. */
static void stats_shutdown(int fast)
{
    (void)fast;
    if (__atomic_exchange_n(&st_state, -1, __ATOMIC_ACQ_REL) != 1)
        return;
    if (elmon_own_ok(st_dirfd))
        unlinkat(st_dirfd, st_name, 0);
    elmon_own_release(st_dirfd);
    st_dirfd = -1;
}

/* The child shares the parent's file: drop it without a write, and make
 * a file of its own once it runs a loop. */
static void stats_atfork_child(void)
{
    if (st_marker != MAP_FAILED)
        munmap(st_marker, sizeof st_mem);
    st_marker = MAP_FAILED;
    if (st_fd >= 0)
        elmon_own_release(st_fd);
    st_fd = -1;
    if (st_dirfd >= 0)
        elmon_own_release(st_dirfd);
    st_map = NULL;
    st_dirfd = -1;
    st_state = 0;
    st_prev_mono_ns = 0;
    memset(st_prev, 0, sizeof st_prev);
}

static const char *stats_off(void)
{
    const char *v = elmon_env_str("ELMON_STATS");
    int on = 1;
    if (v && elmon_parse_bool(v, &on) == 0 && !on)
        return "ELMON_STATS=0";
    return st_state < 0 ? "the stats file could not be made" : NULL;
}

const struct elmon_sink elmon_sink_stats = {
    .name = "stats",
    .off = stats_off,
    .span = stats_span,
    .tick = stats_tick,
    .atfork_child = stats_atfork_child,
    .shutdown = stats_shutdown,
};
