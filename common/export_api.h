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

typedef const struct elmon_exporter_ops *(*elmon_exporter_entry_fn)(void);

#endif
