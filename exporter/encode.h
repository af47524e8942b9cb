/*
 * OTLP encoding: pure functions from figures to protobuf bytes, tested on
 * the bytes (tests/test_export_encode.c) and, through the real exporter,
 * against the official .proto definitions (tests/otlp-receiver).  They read
 * no clock, no environment and no global state.
 */
#ifndef ELMON_OTLP_ENCODE_H
#define ELMON_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include "hist.h"
#include "span.h"
#include "resource.h"

/* A growable byte buffer. */
struct otlp_bytes {
    uint8_t *p;
    size_t len, cap;
};
int otlp_bytes_reserve(struct otlp_bytes *b, size_t n);
void otlp_bytes_free(struct otlp_bytes *b);

/* A bump allocator for the message tree of one request; reset, not freed,
 * between exports so a steady exporter stops calling malloc. */
struct otlp_arena {
    struct otlp_arena_block *head;
    size_t used_total;
};
void *otlp_arena_alloc(struct otlp_arena *a, size_t n);
char *otlp_arena_strdup(struct otlp_arena *a, const char *s);
void otlp_arena_reset(struct otlp_arena *a);
void otlp_arena_free(struct otlp_arena *a);

/* The explicit bucket bounds, seconds (100 us .. 10 s). */
#define OTLP_EXPLICIT_BOUNDS ELMON_LAG_BOUNDS   /* hist.h */
extern const double otlp_explicit_bounds_s[OTLP_EXPLICIT_BOUNDS];

/* Lag histogram geometry, from the core (hist.c) through the export table. */
struct otlp_hist_geom {
    uint64_t (*lo)(unsigned i);
    uint64_t (*hi)(unsigned i);
};

/* Each core bucket (log-linear, 16 per power of two, ns) goes whole to the
 * OTLP bucket that holds its midpoint. */
void otlp_hist_explicit(const struct elmon_hist *h, const struct otlp_hist_geom *g,
                        uint64_t counts[OTLP_EXPLICIT_BOUNDS + 1]);

#define OTLP_EXP_MAX_BUCKETS 160
#define OTLP_EXP_MAX_SCALE 4     /* 16 buckets per power of two, as the core */
struct otlp_exp_hist {
    int scale;
    int32_t offset;
    size_t n;
    uint64_t counts[OTLP_EXP_MAX_BUCKETS];
    uint64_t zero_count;         /* samples of 0 ns */
};
/* Base-2 exponential buckets over seconds: scale 4 lowered until the
 * populated range fits in 160 buckets. */
void otlp_hist_exponential(const struct elmon_hist *h, const struct otlp_hist_geom *g,
                           struct otlp_exp_hist *out);

/* One loop's points for one export, already reduced to what is sent: the
 * exporter (exporter.c) applies the temporality and picks start times. */
struct otlp_loop_point {
    int tid;
    const char *thread, *poller;
    uint64_t cum_start_unix_ns;      /* start of cumulative series: loop start */
    uint64_t delta_start_unix_ns;    /* start of delta series: previous export */
    double lag_s, max_lag_s, utilization;
    uint64_t n_fds;
    int counters_delta;              /* blocking_events and turns */
    uint64_t n_warning, n_critical, n_turns;
    int time_delta;                  /* time */
    double busy_s, idle_s;
    int hist_delta;                  /* lag_distribution */
    const struct elmon_hist *hist;
};

struct otlp_metrics_in {
    const struct otlp_resource *resource;
    const char *prefix;              /* "eventloop" */
    const char *scope_version;
    int exponential;
    const struct otlp_hist_geom *geom;
    uint64_t now_unix_ns;
    const struct otlp_loop_point *loops;
    size_t n_loops;
};

/* ExportMetricsServiceRequest into out; 0, or -ENODATA for no loops (no
 * request with zero points is ever sent), or -ENOMEM. */
int otlp_encode_metrics(const struct otlp_metrics_in *in, struct otlp_arena *a, struct otlp_bytes *out);

/* One blocking span as a log record: its report (common/span.h), whose
 * capture the attributes render with common/span_json.c, never from JSON
 * text. */
struct otlp_log_in {
    const struct elmon_span_report *span;
    const char *poller;
    uint64_t observed_unix_ns;
};

/* ExportLogsServiceRequest; 0, -ENODATA for none, -ENOMEM. */
int otlp_encode_logs(const struct otlp_resource *res, const char *scope_version,
                     const struct otlp_log_in *recs, size_t n, struct otlp_arena *a,
                     struct otlp_bytes *out);


/* gRPC message framing: 1 byte compressed flag, 4 bytes big-endian length. */
void otlp_grpc_frame_header(uint8_t hdr[5], int compressed, uint32_t len);

/* gzip (RFC 1952) of in into out; 0 or -ENOMEM/-EIO. */
int otlp_gzip(const uint8_t *in, size_t n, struct otlp_bytes *out);

/* The partial_success of an Export*ServiceResponse body: rejected count and
 * message (out, NUL-terminated); 1 when present with rejections or a
 * message, 0 when absent, -EINVAL when the body does not decode. */
int otlp_partial_success(int signal, const uint8_t *body, size_t n, int64_t *rejected,
                         char *msg, size_t msg_n);

#endif
