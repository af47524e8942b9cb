/*
 * The live stats file: the contract between libelmon (stats.c, the writer,
 * inside the monitored process) and `elmon stat` / `elmon top` (the readers,
 * cli/live.c).  Modelled on the JVM's hsperfdata: one small file per
 * process.  Neither side writes or reads it through a mapping (a file
 * truncated under a mapping faults with SIGBUS at the next access): the
 * writer uses pwrite, the readers pread and one pwrite of wanted_until_ns.
 * The writer also keeps a read-only mapping it never touches, which is how
 * readers tell a live owner.
 *
 * Where: $ELMON_STATS_DIR, else $XDG_RUNTIME_DIR/elmon, else /tmp/elmon-UID;
 * the directory is created 0700 and used only when it is a real directory
 * owned by the user with no group or other access.  The file is
 * DIR/PID.stats, mode 0600, made with O_EXCL|O_NOFOLLOW|O_CLOEXEC as
 * PID.stats.new when the process's first loop appears, renamed into place
 * once whole, and removed at exit.  A file whose
 * process no longer maps it (the process died or exec'ed) is stale; readers
 * ignore and remove it.
 *
 * Consistency: the writer is the watchdog thread alone.  It updates the
 * figures inside a seqlock (seq odd while writing); a reader copies the
 * whole file and retries until it saw the same even seq before and after.
 *
 * Cost: the figures are refreshed once a second only while
 * wanted_until_ns (CLOCK_MONOTONIC) is in the future; a reader moves it
 * forward each time it looks.  Nobody reading costs one load a second.
 * The last blocking span (and its culprit) is recorded always, since it
 * happens only on the slow path and is what a late reader wants first.
 *
 * Layout changes bump ELMON_STATS_VERSION; readers refuse other versions.
 */
#ifndef ELMON_STATS_H
#define ELMON_STATS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hist.h"

#define ELMON_STATS_MAGIC "ELMSTATS"
#define ELMON_STATS_VERSION 2
#define ELMON_STATS_MAX_LOOPS 32
#define ELMON_STATS_WANTED_NS 3000000000ull   /* a reader's look keeps figures fresh this long */

struct elmon_stats_loop {
    int32_t tid;
    uint32_t pad;
    char thread[32];
    char poller[16];                /* the call that made it a loop */
    char status[16];                /* healthy, ok, degraded, critical: from lag_recent_ns */
    uint64_t start_unix_ns;
    uint64_t n_turns;
    uint64_t n_warning, n_critical;
    uint64_t lag_now_ns;            /* the current turn so far, or the last second's max */
    uint64_t lag_recent_ns;         /* largest lag of the last 10 s: the status */
    uint64_t lag_max_ns;            /* largest lag since the loop started */
    uint64_t lag_p50_ns, lag_p99_ns;
    uint32_t utilization_ppm;       /* busy share of the last interval, parts per million */
    uint32_t turns_per_s_milli;     /* turns per second over the last interval, x1000 */
    /* Totals since the thread's first loop, for scrapers (elmon serve):
     * counters never go back while the thread lives. */
    uint64_t busy_ns, idle_ns;      /* inside turns (the current one so far) / inside the waits */
    uint64_t n_fds;                 /* descriptors registered with its loop (EXPORT.md, active_fds) */
    uint64_t lag_count, lag_sum_ns; /* lag samples, their sum */
    uint64_t lag_buckets[ELMON_LAG_BOUNDS + 1];   /* per bucket (hist.h's bounds), not cumulative */
};

struct elmon_stats_file {
    char magic[8];                  /* ELMON_STATS_MAGIC, no NUL */
    uint32_t version;               /* ELMON_STATS_VERSION */
    uint32_t size;                  /* sizeof(struct elmon_stats_file) */
    int32_t pid;
    uint32_t uid;
    char comm[16];                  /* program short name */
    char cmdline[128];              /* argv joined by spaces, cut */

    /* Written by readers (atomic store), read by the writer. */
    uint64_t wanted_until_ns;

    /* Written by the writer inside the seqlock. */
    uint32_t seq;
    uint32_t n_loops;               /* entries of loops[] in use */
    uint32_t n_loops_total;         /* loop threads alive, may exceed the array */
    uint32_t pad;
    uint64_t updated_mono_ns;       /* when the figures were last refreshed, 0 never */
    uint64_t n_spans;               /* blocking spans ended, all loops */
    uint64_t last_span_unix_ns;     /* start of the last span (ongoing or ended), 0 none */
    uint64_t last_span_ms;          /* its duration (so far) */
    int32_t last_span_tid;
    int32_t last_span_ongoing;
    char last_culprit[160];         /* "" when not captured */
    /* Set once when the file is made, from the environment as the
     * process started: ELMON_METRIC_PREFIX as given (the reader checks
     * it), OTEL_SERVICE_NAME and SERVICE_VERSION (the seed's), cut. */
    char metric_prefix[48];
    char service_name[64];
    char service_version[48];
    struct elmon_stats_loop loops[ELMON_STATS_MAX_LOOPS];
};

/* The layout both sides map: a change bumps ELMON_STATS_VERSION, and these
 * say when one was made without it.  Every field's offset and both sizes
 * are pinned; the fields are fixed-width, so the numbers hold on x86_64
 * (LP64) and on any ABI that aligns them naturally.  Whoever changes them
 * also changes the version the first assert names. */
_Static_assert(ELMON_STATS_VERSION == 2, "stats file layout changed: bump ELMON_STATS_VERSION and re-pin the offsets below");
_Static_assert(sizeof(struct elmon_stats_loop) == 328, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, tid) == 0, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, pad) == 4, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, thread) == 8, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, poller) == 40, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, status) == 56, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, start_unix_ns) == 72, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, n_turns) == 80, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, n_warning) == 88, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, n_critical) == 96, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_now_ns) == 104, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_recent_ns) == 112, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_max_ns) == 120, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_p50_ns) == 128, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_p99_ns) == 136, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, utilization_ppm) == 144, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, turns_per_s_milli) == 148, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, busy_ns) == 152, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, idle_ns) == 160, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, n_fds) == 168, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_count) == 176, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_sum_ns) == 184, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_loop, lag_buckets) == 192, "stats file loop entry layout");
_Static_assert(offsetof(struct elmon_stats_file, magic) == 0, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, version) == 8, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, size) == 12, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, pid) == 16, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, uid) == 20, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, comm) == 24, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, cmdline) == 40, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, wanted_until_ns) == 168, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, seq) == 176, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, n_loops) == 180, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, n_loops_total) == 184, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, pad) == 188, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, updated_mono_ns) == 192, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, n_spans) == 200, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, last_span_unix_ns) == 208, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, last_span_ms) == 216, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, last_span_tid) == 224, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, last_span_ongoing) == 228, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, last_culprit) == 232, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, metric_prefix) == 392, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, service_name) == 440, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, service_version) == 504, "stats file layout");
_Static_assert(offsetof(struct elmon_stats_file, loops) == 552, "stats file layout");
_Static_assert(sizeof(struct elmon_stats_file) == 552 + 328 * ELMON_STATS_MAX_LOOPS, "stats file layout");

/* The per-user directory into out, from the values of ELMON_STATS_DIR and
 * XDG_RUNTIME_DIR (NULL when unset); with create, made 0700 when missing.
 * 0, or -EPERM when it exists but is not a directory of ours closed to
 * everyone else (a planted symlink, another user's directory), or -errno.
 * Shared by the writer and the readers so both always agree on the path;
 * libelmon itself opens it component by component (sinks/stats.c). */
/* Only the path: 0 or -ENAMETOOLONG. */
static inline int elmon_stats_dir_path(char *out, size_t n, const char *dir_env, const char *xdg_env)
{
    int k;
    if (dir_env && *dir_env)
        k = snprintf(out, n, "%s", dir_env);
    else if (xdg_env && xdg_env[0] == '/')
        k = snprintf(out, n, "%s/elmon", xdg_env);
    else
        k = snprintf(out, n, "/tmp/elmon-%u", (unsigned)geteuid());
    return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

static inline int elmon_stats_dir(char *out, size_t n, int create, const char *dir_env, const char *xdg_env)
{
    if (elmon_stats_dir_path(out, n, dir_env, xdg_env) < 0)
        return -ENAMETOOLONG;
    if (create && mkdir(out, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(out, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        return -EPERM;
    return 0;
}

#endif
