/*
 * The contract between libelmon.so and the OTLP exporter it dlopens
 * (exporter/, libelmon-exporter.so).
 *
 * libelmon.so is built with -fvisibility=hidden and links libc alone, so the
 * exporter cannot call the core by name: the core hands it one table of
 * function pointers (struct elmon_export_core) and gets one back (struct
 * elmon_exporter_ops) from the exporter's only exported symbol,
 * elmon_exporter_entry().  Both tables start with their size and a version;
 * a mismatched exporter is refused, never called.
 *
 * Threads: start() runs on the watchdog thread, on_span() on the watchdog
 * thread for every ended span, shutdown() on the exiting thread, and
 * atfork_child() in the forking thread of a new child.  Everything else the
 * exporter does runs on its own single background thread.
 */
#ifndef ELMON_EXPORT_API_H
#define ELMON_EXPORT_API_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"
#include "span.h"

#define ELMON_EXPORT_API_VERSION 5
#define ELMON_EXPORTER_SONAME "libelmon-exporter.so"

/* What each signal is sent to (OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER). */
enum elmon_export_sink { ELMON_SINK_NONE = 0, ELMON_SINK_OTLP, ELMON_SINK_CONSOLE };

struct elmon_export_plan {
    int metrics, logs;           /* enum elmon_export_sink */
};

struct elmon_export_core {
    unsigned size, version;
    const char *elmon_version;
    int verbose;                          /* ELMON_VERBOSE */
    uint64_t block_ns, critical_ns;
    /* The loop table. */
    int (*loop_index)(const struct elmon_loop *l);   /* the slot's index, below ELMON_MAX_LOOPS */
    int (*loops_foreach)(int (*fn)(struct elmon_loop *l, void *arg), void *arg);
    void (*loop_snapshot)(struct elmon_loop *l, struct elmon_loop_snapshot *out);
    uint64_t (*take_window_max)(struct elmon_loop *l);
    const char *(*poller_name)(int poller);
    /* The human log (ELMON_LOG). */
    void (*log_line)(const char *s, size_t n);
    void (*logf)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
    void (*warn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
    /* Strict environment parsing (config.h). */
    int (*parse_uint)(const char *s, uint64_t min, uint64_t max, uint64_t *out);
    int (*parse_bool)(const char *s, int *out);
    int (*parse_enum)(const char *s, const char *const *choices);
    uint64_t (*env_uint)(const char *name, uint64_t def, uint64_t min, uint64_t max, const char *unit);
    int (*env_bool)(const char *name, int def);
    int (*env_enum)(const char *name, const char *const *choices, int def);
    const char *(*env_str)(const char *name);
    /* Which signals go where; the same answer that decided to load us. */
    void (*export_plan)(struct elmon_export_plan *out);
    /* A thread with every signal blocked; 0 or -errno. */
    int (*thread_start)(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);
    /* Lag histogram geometry (hist.h). */
    uint64_t (*hist_bucket_lo)(unsigned i);
    uint64_t (*hist_bucket_hi)(unsigned i);
    /* libelmon's own descriptors (preload/core/ownfd.h), for the
     * exporter's sockets: adopt_fd moves one out of the host's reach and
     * returns the number to use (-1: closed, no room); release_fd closes it
     * if it is still libelmon's. */
    int (*adopt_fd)(int fd);
    void (*release_fd)(int fd);
};

struct elmon_exporter_ops {
    unsigned size, version;
    /* 0: running; -errno: nothing will be exported (already logged). */
    int (*start)(const struct elmon_export_core *core);
    /* An ended span's report (common/span.h), read during the call only:
     * the exporter copies what it keeps.  Never blocks: the record is
     * queued or counted as dropped. */
    void (*on_span)(const struct elmon_span_report *r);
    /* Flush the last interval once, bounded by the flush timeout. */
    void (*shutdown)(void);
    /* In a new child: forget the parent's thread, queue and connections. */
    void (*atfork_child)(void);
};

/* The tables cross the .so boundary, so both sides must agree on every
 * offset.  These pin the layout of version 5 on x86_64 (LP64): a field
 * added, removed, moved or retyped fails here, and whoever fixes the
 * numbers bumps ELMON_EXPORT_API_VERSION (the first assert) so an old
 * exporter is refused rather than called through the wrong slot. */
#if defined(__x86_64__) && defined(__LP64__)
_Static_assert(ELMON_EXPORT_API_VERSION == 5, "export ABI layout changed: bump ELMON_EXPORT_API_VERSION and re-pin the offsets below");
_Static_assert(sizeof(struct elmon_export_plan) == 8, "export plan layout");
_Static_assert(offsetof(struct elmon_export_plan, metrics) == 0, "export plan layout");
_Static_assert(offsetof(struct elmon_export_plan, logs) == 4, "export plan layout");
_Static_assert(sizeof(struct elmon_export_core) == 208, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, size) == 0, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, version) == 4, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, elmon_version) == 8, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, verbose) == 16, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, block_ns) == 24, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, critical_ns) == 32, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, loop_index) == 40, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, loops_foreach) == 48, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, loop_snapshot) == 56, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, take_window_max) == 64, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, poller_name) == 72, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, log_line) == 80, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, logf) == 88, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, warn) == 96, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, parse_uint) == 104, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, parse_bool) == 112, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, parse_enum) == 120, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, env_uint) == 128, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, env_bool) == 136, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, env_enum) == 144, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, env_str) == 152, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, export_plan) == 160, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, thread_start) == 168, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, hist_bucket_lo) == 176, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, hist_bucket_hi) == 184, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, adopt_fd) == 192, "export core table layout");
_Static_assert(offsetof(struct elmon_export_core, release_fd) == 200, "export core table layout");
_Static_assert(sizeof(struct elmon_exporter_ops) == 40, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, size) == 0, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, version) == 4, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, start) == 8, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, on_span) == 16, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, shutdown) == 24, "exporter ops table layout");
_Static_assert(offsetof(struct elmon_exporter_ops, atfork_child) == 32, "exporter ops table layout");
#endif

typedef const struct elmon_exporter_ops *(*elmon_exporter_entry_fn)(void);

#endif
