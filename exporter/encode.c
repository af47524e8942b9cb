/*
 * OTLP encoding (see encode.h).  The message tree of one request is built
 * in an arena with protobuf-c's generated structs and packed once.  Pure:
 * any thread, no globals but constant tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "encode.h"
#include "span_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets ExpBuckets;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsRequest;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsRequest;

#define CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define DELTA OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA

/* --- buffers and arena --- */

int otlp_bytes_reserve(struct otlp_bytes *b, size_t n)
{
    if (b->cap >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void otlp_bytes_free(struct otlp_bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

struct otlp_arena_block {
    struct otlp_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *otlp_arena_alloc(struct otlp_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct otlp_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = 64 * 1024;
        while (cap < n)
            cap *= 2;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->used_total += n;
    memset(p, 0, n);
    return p;
}

char *otlp_arena_strdup(struct otlp_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = otlp_arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Keep the newest (largest) block, free the rest: a steady exporter reuses
 * one block per request kind. */
void otlp_arena_reset(struct otlp_arena *a)
{
    if (!a->head)
        return;
    struct otlp_arena_block *keep = a->head, *b = keep->next;
    while (b) {
        struct otlp_arena_block *next = b->next;
        free(b);
        b = next;
    }
    size_t total = a->used_total;
    keep->next = NULL;
    keep->used = 0;
    /* Grow the kept block to the whole last request, so the next one fits. */
    if (total > keep->cap) {
        free(keep);
        a->head = NULL;
        if (otlp_arena_alloc(a, total))
            a->head->used = 0;
    }
    a->used_total = 0;
}

void otlp_arena_free(struct otlp_arena *a)
{
    struct otlp_arena_block *b = a->head;
    while (b) {
        struct otlp_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

/* --- histograms --- */

const double otlp_explicit_bounds_s[OTLP_EXPLICIT_BOUNDS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
static uint64_t bucket_mid(const struct otlp_hist_geom *g, unsigned i)
{
    uint64_t lo = g->lo(i), hi = g->hi(i);
    return lo + (hi - lo) / 2;
}

void otlp_hist_explicit(const struct elmon_hist *h, const struct otlp_hist_geom *g,
                        uint64_t counts[OTLP_EXPLICIT_BOUNDS + 1])
{
    elmon_hist_explicit(h, g->lo, g->hi, counts);
}

/* Index of the base-2 bucket (scale s) holding x > 0: bucket i covers
 * (2^(i/2^s), 2^((i+1)/2^s)]. */
static int32_t exp_index(double x, int scale)
{
    double v = log2(x) * (double)(1 << scale);
    double c = ceil(v);
    return (int32_t)c - 1;
}

void otlp_hist_exponential(const struct elmon_hist *h, const struct otlp_hist_geom *g,
                           struct otlp_exp_hist *out)
{
    memset(out, 0, sizeof *out);
    out->scale = OTLP_EXP_MAX_SCALE;
    int32_t lo_idx = INT32_MAX, hi_idx = INT32_MIN;
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        if (!h->counts[i])
            continue;
        if (g->hi(i) == 0) {
            out->zero_count += h->counts[i];
            continue;
        }
        int32_t k = exp_index((double)bucket_mid(g, i) * 1e-9, OTLP_EXP_MAX_SCALE);
        if (k < lo_idx)
            lo_idx = k;
        if (k > hi_idx)
            hi_idx = k;
    }
    if (lo_idx > hi_idx)
        return;
    int shift = 0;
    /* Arithmetic shift is floor division: the index at a scale one lower. */
    while (((hi_idx >> shift) - (lo_idx >> shift)) + 1 > OTLP_EXP_MAX_BUCKETS)
        shift++;
    out->scale = OTLP_EXP_MAX_SCALE - shift;
    out->offset = lo_idx >> shift;
    out->n = (size_t)((hi_idx >> shift) - out->offset + 1);
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        if (!h->counts[i] || g->hi(i) == 0)
            continue;
        int32_t k = exp_index((double)bucket_mid(g, i) * 1e-9, OTLP_EXP_MAX_SCALE) >> shift;
        out->counts[k - out->offset] += h->counts[i];
    }
}

/* --- common pieces --- */

#define NEW(a, T, init) ({ T *p_ = otlp_arena_alloc((a), sizeof(T)); if (p_) { T i_ = init; *p_ = i_; } p_; })

static KeyValue *kv_str(struct otlp_arena *a, const char *k, const char *v)
{
    KeyValue *kv = NEW(a, KeyValue, OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT);
    AnyValue *av = NEW(a, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
    if (!kv || !av)
        return NULL;
    kv->key = (char *)k;
    kv->value = av;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    return kv;
}

static KeyValue *kv_int(struct otlp_arena *a, const char *k, int64_t v)
{
    KeyValue *kv = kv_str(a, k, "");
    if (kv) {
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        kv->value->int_value = v;
    }
    return kv;
}

static KeyValue *kv_double(struct otlp_arena *a, const char *k, double v)
{
    KeyValue *kv = kv_str(a, k, "");
    if (kv) {
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        kv->value->double_value = v;
    }
    return kv;
}

static Resource *make_resource(struct otlp_arena *a, const struct otlp_resource *r)
{
    Resource *res = NEW(a, Resource, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
    size_t n = r->attrs.n + (r->n_args ? 1 : 0);
    KeyValue **attrs = otlp_arena_alloc(a, (n ? n : 1) * sizeof *attrs);
    if (!res || !attrs)
        return NULL;
    for (size_t i = 0; i < r->attrs.n; i++) {
        const struct otlp_kv *kv = &r->attrs.v[i];
        attrs[i] = otlp_resource_is_int(kv->key) ? kv_int(a, kv->key, strtoll(kv->value, NULL, 10))
                                                 : kv_str(a, kv->key, kv->value);
        if (!attrs[i])
            return NULL;
    }
    if (r->n_args) {
        KeyValue *kv = kv_str(a, "process.command_args", "");
        ArrayValue *arr = NEW(a, ArrayValue, OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT);
        AnyValue **vals = otlp_arena_alloc(a, r->n_args * sizeof *vals);
        if (!kv || !arr || !vals)
            return NULL;
        for (size_t i = 0; i < r->n_args; i++) {
            vals[i] = NEW(a, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
            if (!vals[i])
                return NULL;
            vals[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            vals[i]->string_value = r->command_args[i];
        }
        arr->n_values = r->n_args;
        arr->values = vals;
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        kv->value->array_value = arr;
        attrs[r->attrs.n] = kv;
    }
    res->n_attributes = n;
    res->attributes = attrs;
    return res;
}

static Scope *make_scope(struct otlp_arena *a, const char *version)
{
    Scope *s = NEW(a, Scope, OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT);
    if (s) {
        s->name = "libelmon";
        s->version = (char *)version;
    }
    return s;
}

static int pack(const ProtobufCMessage *m, struct otlp_bytes *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (otlp_bytes_reserve(out, n ? n : 1) < 0)
        return -ENOMEM;
    out->len = protobuf_c_message_pack(m, out->p);
    return 0;
}

/* --- metrics --- */

enum { M_LAG, M_MAX_LAG, M_LAG_DIST, M_UTIL, M_BLOCKING, M_FDS, M_TIME, M_TURNS, M_COUNT };

static const struct {
    const char *suffix, *unit, *description;
} metric_defs[M_COUNT] = {
    [M_LAG] = {"lag", "s", "Largest event loop lag sample in the last export window"},
    [M_MAX_LAG] = {"max_lag", "s", "Largest event loop lag sample since the loop started"},
    [M_LAG_DIST] = {"lag_distribution", "s", "Lag of every event loop turn"},
    [M_UTIL] = {"utilization", "1", "Busy time / (busy + idle time) of the loop over the export window, 0..1"},
    [M_BLOCKING] = {"blocking_events", "{event}", "Turns that blocked the loop, by severity"},
    [M_FDS] = {"active_fds", "{fd}", "Descriptors registered with the loop"},
    [M_TIME] = {"time", "s", "Time the loop spent active (running callbacks) and idle (waiting)"},
    [M_TURNS] = {"turns", "{turn}", "Event loop turns completed"},
};

struct loop_attrs {
    KeyValue *common[3];
};

static KeyValue **attrs_with(struct otlp_arena *a, const struct loop_attrs *la, KeyValue *extra, size_t *n)
{
    KeyValue **v = otlp_arena_alloc(a, 4 * sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, la->common, sizeof la->common);
    *n = 3;
    if (extra)
        v[(*n)++] = extra;
    return v;
}

static NumberPoint *number_point(struct otlp_arena *a, const struct loop_attrs *la, KeyValue *extra,
                                 uint64_t start, uint64_t now)
{
    NumberPoint *p = NEW(a, NumberPoint, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
    if (!p || !(p->attributes = attrs_with(a, la, extra, &p->n_attributes)))
        return NULL;
    if (start) {
        p->has_start_time_unix_nano = 1;
        p->start_time_unix_nano = start;
    }
    p->has_time_unix_nano = 1;
    p->time_unix_nano = now;
    return p;
}

static void set_double(NumberPoint *p, double v)
{
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
}

static void set_int(NumberPoint *p, uint64_t v)
{
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = (int64_t)v;
}

static int hist_point(struct otlp_arena *a, const struct otlp_metrics_in *in, const struct otlp_loop_point *lp,
                      const struct loop_attrs *la, void **out)
{
    const struct elmon_hist *h = lp->hist;
    uint64_t start = lp->hist_delta ? lp->delta_start_unix_ns : lp->cum_start_unix_ns;
    double sum = (double)h->sum_ns * 1e-9;
    if (in->exponential) {
        ExpPoint *p = NEW(a, ExpPoint, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT);
        ExpBuckets *pos = NEW(a, ExpBuckets, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT);
        struct otlp_exp_hist *e = otlp_arena_alloc(a, sizeof *e);
        if (!p || !pos || !e || !(p->attributes = attrs_with(a, la, NULL, &p->n_attributes)))
            return -ENOMEM;
        otlp_hist_exponential(h, in->geom, e);
        p->has_start_time_unix_nano = p->has_time_unix_nano = p->has_count = p->has_sum = 1;
        p->start_time_unix_nano = start;
        p->time_unix_nano = in->now_unix_ns;
        p->count = h->n;
        p->sum = sum;
        p->has_scale = p->has_zero_count = 1;
        p->scale = e->scale;
        p->zero_count = e->zero_count;
        pos->has_offset = 1;
        pos->offset = e->offset;
        pos->n_bucket_counts = e->n;
        pos->bucket_counts = e->counts;
        p->positive = pos;
        if (!lp->hist_delta && h->n) {
            p->has_max = 1;
            p->max = (double)h->max_ns * 1e-9;
        }
        *out = p;
        return 0;
    }
    HistPoint *p = NEW(a, HistPoint, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
    uint64_t *counts = otlp_arena_alloc(a, (OTLP_EXPLICIT_BOUNDS + 1) * sizeof *counts);
    if (!p || !counts || !(p->attributes = attrs_with(a, la, NULL, &p->n_attributes)))
        return -ENOMEM;
    otlp_hist_explicit(h, in->geom, counts);
    p->has_start_time_unix_nano = p->has_time_unix_nano = p->has_count = p->has_sum = 1;
    p->start_time_unix_nano = start;
    p->time_unix_nano = in->now_unix_ns;
    p->count = h->n;
    p->sum = sum;
    p->n_bucket_counts = OTLP_EXPLICIT_BOUNDS + 1;
    p->bucket_counts = counts;
    p->n_explicit_bounds = OTLP_EXPLICIT_BOUNDS;
    p->explicit_bounds = (double *)otlp_explicit_bounds_s;
    /* The core keeps the exact maximum since start only; a delta point
     * carries none rather than a wrong one. */
    if (!lp->hist_delta && h->n) {
        p->has_max = 1;
        p->max = (double)h->max_ns * 1e-9;
    }
    *out = p;
    return 0;
}

int otlp_encode_metrics(const struct otlp_metrics_in *in, struct otlp_arena *a, struct otlp_bytes *out)
{
    if (!in->n_loops)
        return -ENODATA;
    size_t n = in->n_loops;
    MetricsRequest req = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    ResourceMetrics *rm = NEW(a, ResourceMetrics, OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT);
    ScopeMetrics *sm = NEW(a, ScopeMetrics, OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT);
    Metric **metrics = otlp_arena_alloc(a, M_COUNT * sizeof *metrics);
    struct loop_attrs *la = otlp_arena_alloc(a, n * sizeof *la);
    if (!rm || !sm || !metrics || !la || !(rm->resource = make_resource(a, in->resource)) ||
        !(sm->scope = make_scope(a, in->scope_version)))
        return -ENOMEM;
    req.n_resource_metrics = 1;
    req.resource_metrics = &rm;
    rm->n_scope_metrics = 1;
    rm->scope_metrics = &sm;
    sm->n_metrics = M_COUNT;
    sm->metrics = metrics;

    for (size_t i = 0; i < n; i++) {
        const struct otlp_loop_point *lp = &in->loops[i];
        if (!(la[i].common[0] = kv_int(a, "thread.id", lp->tid)) ||
            !(la[i].common[1] = kv_str(a, "thread.name", lp->thread)) ||
            !(la[i].common[2] = kv_str(a, "eventloop.poller", lp->poller)))
            return -ENOMEM;
    }
    KeyValue *sev[2] = {kv_str(a, "severity", "warning"), kv_str(a, "severity", "critical")};
    KeyValue *state[2] = {kv_str(a, "state", "active"), kv_str(a, "state", "idle")};
    if (!sev[0] || !sev[1] || !state[0] || !state[1])
        return -ENOMEM;

    for (int m = 0; m < M_COUNT; m++) {
        Metric *mt = NEW(a, Metric, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
        size_t len = strlen(in->prefix) + strlen(metric_defs[m].suffix) + 2;
        char *name = otlp_arena_alloc(a, len);
        if (!mt || !name)
            return -ENOMEM;
        snprintf(name, len, "%s.%s", in->prefix, metric_defs[m].suffix);
        mt->name = name;
        mt->unit = (char *)metric_defs[m].unit;
        mt->description = (char *)metric_defs[m].description;
        metrics[m] = mt;

        if (m == M_LAG_DIST) {
            void **pts = otlp_arena_alloc(a, n * sizeof *pts);
            if (!pts)
                return -ENOMEM;
            for (size_t i = 0; i < n; i++)
                if (hist_point(a, in, &in->loops[i], &la[i], &pts[i]) < 0)
                    return -ENOMEM;
            int temporality = in->loops[0].hist_delta ? DELTA : CUMULATIVE;
            if (in->exponential) {
                ExpHistogram *eh = NEW(a, ExpHistogram, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT);
                if (!eh)
                    return -ENOMEM;
                eh->n_data_points = n;
                eh->data_points = (ExpPoint **)pts;
                eh->has_aggregation_temporality = 1;
                eh->aggregation_temporality = temporality;
                mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
                mt->exponential_histogram = eh;
            } else {
                Histogram *hg = NEW(a, Histogram, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
                if (!hg)
                    return -ENOMEM;
                hg->n_data_points = n;
                hg->data_points = (HistPoint **)pts;
                hg->has_aggregation_temporality = 1;
                hg->aggregation_temporality = temporality;
                mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
                mt->histogram = hg;
            }
            continue;
        }

        int two = m == M_BLOCKING || m == M_TIME;
        size_t np = two ? 2 * n : n;
        NumberPoint **pts = otlp_arena_alloc(a, np * sizeof *pts);
        if (!pts)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const struct otlp_loop_point *lp = &in->loops[i];
            uint64_t now = in->now_unix_ns;
            uint64_t cstart = lp->counters_delta ? lp->delta_start_unix_ns : lp->cum_start_unix_ns;
            uint64_t tstart = lp->time_delta ? lp->delta_start_unix_ns : lp->cum_start_unix_ns;
            NumberPoint *p, *q;
            switch (m) {
            case M_LAG:
            case M_MAX_LAG:
            case M_UTIL:
                if (!(p = number_point(a, &la[i], NULL, 0, now)))
                    return -ENOMEM;
                set_double(p, m == M_LAG ? lp->lag_s : m == M_MAX_LAG ? lp->max_lag_s : lp->utilization);
                pts[i] = p;
                break;
            case M_FDS:
                if (!(p = number_point(a, &la[i], NULL, 0, now)))
                    return -ENOMEM;
                set_int(p, lp->n_fds);
                pts[i] = p;
                break;
            case M_TURNS:
                if (!(p = number_point(a, &la[i], NULL, cstart, now)))
                    return -ENOMEM;
                set_int(p, lp->n_turns);
                pts[i] = p;
                break;
            case M_BLOCKING:
                if (!(p = number_point(a, &la[i], sev[0], cstart, now)) ||
                    !(q = number_point(a, &la[i], sev[1], cstart, now)))
                    return -ENOMEM;
                set_int(p, lp->n_warning);
                set_int(q, lp->n_critical);
                pts[2 * i] = p;
                pts[2 * i + 1] = q;
                break;
            case M_TIME:
                if (!(p = number_point(a, &la[i], state[0], tstart, now)) ||
                    !(q = number_point(a, &la[i], state[1], tstart, now)))
                    return -ENOMEM;
                set_double(p, lp->busy_s);
                set_double(q, lp->idle_s);
                pts[2 * i] = p;
                pts[2 * i + 1] = q;
                break;
            }
        }
        if (m == M_LAG || m == M_MAX_LAG || m == M_UTIL || m == M_FDS) {
            Gauge *g = NEW(a, Gauge, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
            if (!g)
                return -ENOMEM;
            g->n_data_points = np;
            g->data_points = pts;
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
            mt->gauge = g;
        } else {
            Sum *s = NEW(a, Sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
            if (!s)
                return -ENOMEM;
            int delta = m == M_TIME ? in->loops[0].time_delta : in->loops[0].counters_delta;
            s->n_data_points = np;
            s->data_points = pts;
            s->has_aggregation_temporality = s->has_is_monotonic = 1;
            s->aggregation_temporality = delta ? DELTA : CUMULATIVE;
            s->is_monotonic = 1;
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
            mt->sum = s;
        }
    }
    return pack(&req.base, out);
}

/* --- logs --- */

/* One capture member as an attribute whose value is its JSON, as
 * common/span_json.c renders it from the report; an absent one (null, [])
 * is no attribute, and one too large for OTLP_CAPTURE_JSON_MAX is left out
 * rather than cut. */
#define OTLP_CAPTURE_JSON_MAX (64 * 1024)

static int capture_attr(struct otlp_arena *a, char *scratch, KeyValue **at, size_t *k, const char *key,
                        void (*render)(struct elmon_buf *, const struct elmon_span_report *),
                        const struct elmon_span_report *r)
{
    struct elmon_buf b;
    elmon_buf_init(&b, scratch, OTLP_CAPTURE_JSON_MAX);
    render(&b, r);
    if (b.truncated || strcmp(scratch, "null") == 0 || strcmp(scratch, "[]") == 0)
        return 0;
    /* The request keeps only what the value needs: a batch holds hundreds. */
    char *mem = otlp_arena_alloc(a, b.len + 1);
    if (!mem)
        return -ENOMEM;
    memcpy(mem, scratch, b.len + 1);
    KeyValue *kv = kv_str(a, key, mem);
    if (!kv)
        return -ENOMEM;
    at[(*k)++] = kv;
    return 0;
}

#define LOG_ATTRS 16

int otlp_encode_logs(const struct otlp_resource *res, const char *scope_version,
                     const struct otlp_log_in *recs, size_t n, struct otlp_arena *a,
                     struct otlp_bytes *out)
{
    if (!n)
        return -ENODATA;
    LogsRequest req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    ResourceLogs *rl = NEW(a, ResourceLogs, OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT);
    ScopeLogs *sl = NEW(a, ScopeLogs, OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT);
    LogRecord **lr = otlp_arena_alloc(a, n * sizeof *lr);
    char *scratch = otlp_arena_alloc(a, OTLP_CAPTURE_JSON_MAX);   /* one per request, reused */
    if (!rl || !sl || !lr || !scratch || !(rl->resource = make_resource(a, res)) || !(sl->scope = make_scope(a, scope_version)))
        return -ENOMEM;
    req.n_resource_logs = 1;
    req.resource_logs = &rl;
    rl->n_scope_logs = 1;
    rl->scope_logs = &sl;
    sl->n_log_records = n;
    sl->log_records = lr;
    for (size_t i = 0; i < n; i++) {
        const struct elmon_span_report *r = recs[i].span;
        const char *poller = recs[i].poller ? recs[i].poller : "";
        const char *culprit = r->captured ? elmon_span_str(r, r->culprit) : NULL;
        if (!culprit)
            culprit = "";
        LogRecord *l = NEW(a, LogRecord, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
        KeyValue **at = otlp_arena_alloc(a, LOG_ATTRS * sizeof *at);
        AnyValue *body = NEW(a, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
        char *text = otlp_arena_alloc(a, 512);
        if (!l || !at || !body || !text)
            return -ENOMEM;
        l->has_time_unix_nano = l->has_observed_time_unix_nano = l->has_severity_number = 1;
        l->time_unix_nano = r->start_unix_ns;
        l->observed_time_unix_nano = recs[i].observed_unix_ns;
        l->severity_number = r->critical ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR
                                         : OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
        l->severity_text = r->critical ? "ERROR" : "WARN";
        l->event_name = "eventloop.block";
        snprintf(text, 512, "event loop blocked for %.1f ms on thread %s (tid %d, %s)%s%s",
                 (double)r->duration_ns / 1e6, r->thread, r->tid, poller, culprit[0] ? " in " : "", culprit);
        body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        body->string_value = text;
        l->body = body;
        size_t k = 0;
        at[k++] = kv_str(a, "event.name", "eventloop.block");
        at[k++] = kv_int(a, "thread.id", r->tid);
        at[k++] = kv_str(a, "thread.name", r->thread);
        at[k++] = kv_str(a, "eventloop.poller", poller);
        at[k++] = kv_double(a, "eventloop.block.duration", (double)r->duration_ns * 1e-9);
        at[k++] = kv_double(a, "eventloop.block.lag", (double)r->lag_ns * 1e-9);
        at[k++] = kv_str(a, "eventloop.block.severity", r->critical ? "critical" : "warning");
        at[k++] = kv_int(a, "eventloop.block.turn", (int64_t)r->turn);
        if (culprit[0])
            at[k++] = kv_str(a, "eventloop.block.culprit", culprit);
        const char *task = r->captured ? elmon_span_str(r, r->task) : NULL;
        if (task && task[0])
            at[k++] = kv_str(a, "eventloop.block.task", task);
        for (size_t j = 0; j < k; j++)
            if (!at[j])
                return -ENOMEM;
        if (capture_attr(a, scratch, at, &k, "eventloop.block.cause", elmon_span_json_cause, r) < 0 ||
            capture_attr(a, scratch, at, &k, "eventloop.block.stack", elmon_span_json_stack, r) < 0 ||
            capture_attr(a, scratch, at, &k, "eventloop.block.python", elmon_span_json_python, r) < 0)
            return -ENOMEM;
        l->n_attributes = k;
        l->attributes = at;
        lr[i] = l;
    }
    return pack(&req.base, out);
}

/* --- framing, compression, responses --- */

void otlp_grpc_frame_header(uint8_t hdr[5], int compressed, uint32_t len)
{
    hdr[0] = compressed ? 1 : 0;
    hdr[1] = (uint8_t)(len >> 24);
    hdr[2] = (uint8_t)(len >> 16);
    hdr[3] = (uint8_t)(len >> 8);
    hdr[4] = (uint8_t)len;
}

int otlp_gzip(const uint8_t *in, size_t n, struct otlp_bytes *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer, not zlib's. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t bound = deflateBound(&z, n);
    if (otlp_bytes_reserve(out, bound) < 0) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out->p;
    z.avail_out = (uInt)out->cap;
    int rc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -EIO;
}

/* Both Export*ServiceResponse messages hold field 1, partial_success, whose
 * field 1 is the int64 count of rejected items and field 2 the message:
 * read through the descriptors, one path serves both signals. */
int otlp_partial_success(int signal, const uint8_t *body, size_t n, int64_t *rejected, char *msg, size_t msg_n)
{
    *rejected = 0;
    if (msg_n)
        msg[0] = 0;
    if (!n)
        return 0;
    const ProtobufCMessageDescriptor *d =
        signal == 0 ? &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor
                    : &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor;
    ProtobufCMessage *r = protobuf_c_message_unpack(d, NULL, n, body);
    if (!r)
        return -EINVAL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, 1);
    const ProtobufCMessage *ps = *(ProtobufCMessage **)((char *)r + f->offset);
    const char *text = NULL;
    if (ps) {
        const ProtobufCFieldDescriptor *fr = protobuf_c_message_descriptor_get_field(ps->descriptor, 1);
        const ProtobufCFieldDescriptor *fm = protobuf_c_message_descriptor_get_field(ps->descriptor, 2);
        *rejected = *(const int64_t *)((const char *)ps + fr->offset);
        text = *(char *const *)((const char *)ps + fm->offset);
    }
    int has = *rejected || (text && *text);
    if (msg_n)
        snprintf(msg, msg_n, "%s", text ? text : "");
    protobuf_c_message_free_unpacked(r, NULL);
    return has;
}
