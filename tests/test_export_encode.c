/*
 * OTLP encoding on bytes: requests built by encode.c are unpacked again
 * (protobuf-c) and every field compared; histogram conversion, JSON member
 * splitting, gzip, gRPC framing and partial_success decoding.  The same
 * bytes are checked against the official protos by test_export_otlp.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "encode.h"
#include "buf.h"
#include "hist.h"
#include "span.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "support.h"

static const struct otlp_hist_geom geom = {elmon_hist_bucket_lo, elmon_hist_bucket_hi};

static void fill_resource(struct otlp_resource *r)
{
    memset(r, 0, sizeof *r);
    otlp_kvlist_set(&r->attrs, "service.name", "svc");
    otlp_kvlist_set(&r->attrs, "process.pid", "4242");
    r->command_args = calloc(2, sizeof(char *));
    r->command_args[0] = strdup("prog");
    r->command_args[1] = strdup("--flag");
    r->n_args = 2;
}

static const Opentelemetry__Proto__Common__V1__AnyValue *attr(
    Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0)
            return kv[i]->value;
    return NULL;
}

static void hist_of(struct elmon_hist *h, const uint64_t *v_ns, size_t n)
{
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < n; i++)
        elmon_hist_record(h, v_ns[i]);
}

START_TEST(explicit_buckets)
{
    /* One sample per explicit bucket, on either side of each bound. */
    static const uint64_t v[] = {0, 50000, 95000, 150000, 260000, 900000, 1000000, 2000000, 4000000,
                                 9000000, 20000000, 49000000, 99000000, 200000000, 400000000,
                                 900000000, 2000000000, 4000000000u, 9000000000u, 60000000000u};
    static const uint64_t want[OTLP_EXPLICIT_BOUNDS + 1] = {3, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    struct elmon_hist h;
    hist_of(&h, v, sizeof v / sizeof v[0]);
    uint64_t c[OTLP_EXPLICIT_BOUNDS + 1];
    otlp_hist_explicit(&h, &geom, c);
    uint64_t total = 0;
    for (int i = 0; i <= OTLP_EXPLICIT_BOUNDS; i++) {
        ck_assert_msg(c[i] == want[i], "bucket %d: %llu want %llu", i, (unsigned long long)c[i],
                      (unsigned long long)want[i]);
        total += c[i];
    }
    ck_assert_uint_eq(total, h.n);
    ck_assert_double_eq(otlp_explicit_bounds_s[0], 0.0001);
    ck_assert_double_eq(otlp_explicit_bounds_s[OTLP_EXPLICIT_BOUNDS - 1], 10.0);
}
END_TEST

START_TEST(exponential_buckets)
{
    struct elmon_hist h;
    struct otlp_exp_hist e;
    /* A narrow range keeps scale 4; each sample lands in the bucket whose
     * (lower, upper] range holds it. */
    static const uint64_t narrow[] = {1000000, 1100000, 1500000, 1900000, 3000000};
    hist_of(&h, narrow, 5);
    otlp_hist_exponential(&h, &geom, &e);
    ck_assert_int_eq(e.scale, 4);
    uint64_t total = 0;
    for (size_t i = 0; i < e.n; i++)
        total += e.counts[i];
    ck_assert_uint_eq(total, 5);
    ck_assert_uint_eq(e.zero_count, 0);
    for (size_t k = 0; k < 5; k++) {
        double x = (double)narrow[k] * 1e-9;
        double lo = pow(2, (double)e.offset / 16), hi = pow(2, (double)(e.offset + (int)e.n) / 16);
        ck_assert_msg(x > lo * 0.97 && x <= hi * 1.03, "sample %zu outside the buckets", k);
    }
    ck_assert_uint_gt(e.counts[0], 0);
    ck_assert_uint_gt(e.counts[e.n - 1], 0);

    /* 1 ns .. 100 s spans 37 powers of two: scale lowered to fit 160. */
    static const uint64_t wide[] = {0, 0, 1, 1000, 1000000, 1000000000, 100000000000ull};
    hist_of(&h, wide, 7);
    otlp_hist_exponential(&h, &geom, &e);
    ck_assert_int_lt(e.scale, 4);
    ck_assert_uint_le(e.n, OTLP_EXP_MAX_BUCKETS);
    ck_assert_uint_gt(e.n, OTLP_EXP_MAX_BUCKETS / 2 - 1);   /* the largest scale that fits */
    ck_assert_uint_eq(e.zero_count, 2);
    total = e.zero_count;
    for (size_t i = 0; i < e.n; i++)
        total += e.counts[i];
    ck_assert_uint_eq(total, 7);

    hist_of(&h, NULL, 0);
    otlp_hist_exponential(&h, &geom, &e);
    ck_assert_uint_eq(e.n, 0);
}
END_TEST

START_TEST(metrics_request_fields)
{
    struct otlp_resource res;
    fill_resource(&res);
    static const uint64_t lags[] = {200000, 300000, 70000000, 800000000};
    struct elmon_hist h;
    hist_of(&h, lags, 4);
    struct otlp_loop_point pts[2] = {
        {.tid = 11, .thread = "main", .poller = "epoll_wait", .cum_start_unix_ns = 1000, .delta_start_unix_ns = 5000,
         .lag_s = 0.07, .max_lag_s = 0.8, .utilization = 0.25, .n_fds = 7, .n_warning = 1, .n_critical = 1,
         .n_turns = 4, .busy_s = 1.5, .idle_s = 4.5, .hist = &h},
        {.tid = 12, .thread = "worker", .poller = "poll", .cum_start_unix_ns = 2000, .delta_start_unix_ns = 6000,
         .counters_delta = 1, .time_delta = 0, .hist_delta = 1, .n_turns = 9, .hist = &h},
    };
    struct otlp_metrics_in in = {.resource = &res, .prefix = "asyncio.eventloop", .scope_version = "9.9",
                                 .geom = &geom, .now_unix_ns = 9000, .loops = pts, .n_loops = 2};
    struct otlp_arena a = {0};
    struct otlp_bytes out = {0};
    ck_assert_int_eq(otlp_encode_metrics(&in, &a, &out), 0);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, out.len, out.p);
    ck_assert_ptr_nonnull(req);
    ck_assert_uint_eq(req->n_resource_metrics, 1);
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[0];
    const Opentelemetry__Proto__Common__V1__AnyValue *v =
        attr(rm->resource->attributes, rm->resource->n_attributes, "process.pid");
    ck_assert_int_eq(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ck_assert_int_eq(v->int_value, 4242);
    v = attr(rm->resource->attributes, rm->resource->n_attributes, "service.name");
    ck_assert_str_eq(v->string_value, "svc");
    v = attr(rm->resource->attributes, rm->resource->n_attributes, "process.command_args");
    ck_assert_uint_eq(v->array_value->n_values, 2);
    ck_assert_str_eq(v->array_value->values[1]->string_value, "--flag");
    ck_assert_str_eq(rm->scope_metrics[0]->scope->name, "libelmon");
    ck_assert_str_eq(rm->scope_metrics[0]->scope->version, "9.9");

    static const struct { const char *name, *unit; int kind; size_t points; } want[] = {
        {"asyncio.eventloop.lag", "s", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE, 2},
        {"asyncio.eventloop.max_lag", "s", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE, 2},
        {"asyncio.eventloop.lag_distribution", "s", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM, 2},
        {"asyncio.eventloop.utilization", "1", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE, 2},
        {"asyncio.eventloop.blocking_events", "{event}", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM, 4},
        {"asyncio.eventloop.active_fds", "{fd}", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE, 2},
        {"asyncio.eventloop.time", "s", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM, 4},
        {"asyncio.eventloop.turns", "{turn}", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM, 2},
    };
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[0];
    ck_assert_uint_eq(sm->n_metrics, 8);
    for (size_t m = 0; m < 8; m++) {
        Opentelemetry__Proto__Metrics__V1__Metric *mt = sm->metrics[m];
        ck_assert_str_eq(mt->name, want[m].name);
        ck_assert_str_eq(mt->unit, want[m].unit);
        ck_assert_int_eq(mt->data_case, want[m].kind);
        ck_assert(mt->description && *mt->description);
        size_t np = mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ? mt->gauge->n_data_points
                    : mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM ? mt->sum->n_data_points
                                                                                          : mt->histogram->n_data_points;
        ck_assert_uint_eq(np, want[m].points);
        if (mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
            ck_assert(mt->sum->is_monotonic);
            Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = mt->sum->data_points[0];
            if (m != 7) {
                ck_assert_uint_eq(p->n_attributes, 4);
                ck_assert_str_eq(p->attributes[3]->key, m == 4 ? "severity" : "state");
                ck_assert_str_eq(p->attributes[3]->value->string_value, m == 4 ? "warning" : "active");
                ck_assert_str_eq(mt->sum->data_points[1]->attributes[3]->value->string_value,
                                 m == 4 ? "critical" : "idle");
            } else {
                ck_assert_uint_eq(p->n_attributes, 3);
            }
            ck_assert_uint_eq(p->start_time_unix_nano, 1000);
            ck_assert_uint_eq(p->time_unix_nano, 9000);
        }
    }
    /* Loop 0: gauges and attributes. */
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *lag = sm->metrics[0]->gauge->data_points[0];
    ck_assert_double_eq(lag->as_double, 0.07);
    ck_assert(!lag->has_start_time_unix_nano);
    ck_assert_int_eq(attr(lag->attributes, lag->n_attributes, "thread.id")->int_value, 11);
    ck_assert_str_eq(attr(lag->attributes, lag->n_attributes, "thread.name")->string_value, "main");
    ck_assert_str_eq(attr(lag->attributes, lag->n_attributes, "eventloop.poller")->string_value, "epoll_wait");
    ck_assert_double_eq(sm->metrics[3]->gauge->data_points[0]->as_double, 0.25);
    ck_assert_int_eq(sm->metrics[5]->gauge->data_points[0]->as_int, 7);
    ck_assert_double_eq(sm->metrics[6]->sum->data_points[1]->as_double, 4.5);
    ck_assert_int_eq(sm->metrics[7]->sum->data_points[0]->as_int, 4);
    /* Temporality comes from the first loop (all loops share it); loop 1's
     * delta counters start at its previous export. */
    ck_assert_int_eq(sm->metrics[7]->sum->aggregation_temporality,
                     OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    ck_assert_uint_eq(sm->metrics[7]->sum->data_points[1]->start_time_unix_nano, 6000);
    ck_assert_uint_eq(sm->metrics[6]->sum->data_points[2]->start_time_unix_nano, 2000);
    /* The histogram. */
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = sm->metrics[2]->histogram->data_points[0];
    ck_assert_uint_eq(hp->count, 4);
    ck_assert(fabs(hp->sum - 0.8705) < 1e-9);
    ck_assert_uint_eq(hp->n_explicit_bounds, 16);
    ck_assert_uint_eq(hp->n_bucket_counts, 17);
    ck_assert_uint_eq(hp->bucket_counts[1] + hp->bucket_counts[2], 2);
    ck_assert_uint_eq(hp->bucket_counts[9], 1);
    ck_assert_uint_eq(hp->bucket_counts[12], 1);
    ck_assert(hp->has_max && fabs(hp->max - 0.8) < 1e-9);
    ck_assert(!sm->metrics[2]->histogram->data_points[1]->has_max);   /* delta: no max */
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(req, NULL);

    /* Exponential, and no request for no loops. */
    in.exponential = 1;
    out.len = 0;
    otlp_arena_reset(&a);
    ck_assert_int_eq(otlp_encode_metrics(&in, &a, &out), 0);
    req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, out.len, out.p);
    Opentelemetry__Proto__Metrics__V1__Metric *em = req->resource_metrics[0]->scope_metrics[0]->metrics[2];
    ck_assert_int_eq(em->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    ck_assert_uint_eq(em->exponential_histogram->data_points[0]->count, 4);
    ck_assert_int_le(em->exponential_histogram->data_points[0]->scale, 4);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(req, NULL);
    in.n_loops = 0;
    ck_assert_int_eq(otlp_encode_metrics(&in, &a, &out), -ENODATA);
    otlp_arena_free(&a);
    otlp_bytes_free(&out);
    otlp_resource_free(&res);
}
END_TEST

/* A span report as libelmon's interpret stage makes one. */
static struct elmon_span_report *report(int tid, const char *thread, uint64_t turn, uint64_t start, uint64_t dur,
                                        uint64_t lag, int critical, const char *culprit)
{
    struct elmon_span_report *r = calloc(1, sizeof *r);
    struct elmon_arena a;
    elmon_arena_init(&a, r->text, sizeof r->text);
    r->size = sizeof *r;
    r->version = ELMON_SPAN_REPORT_VERSION;
    r->tid = tid;
    snprintf(r->thread, sizeof r->thread, "%s", thread);
    r->turn = turn;
    r->start_unix_ns = start;
    r->duration_ns = dur;
    r->lag_ns = lag;
    r->critical = critical;
    r->phase = ELMON_SPAN_END;
    r->culprit_frame = -1;
    r->stack_ms = r->handler_us = r->handler_cpu_us = r->py_read_us = r->cause.cpu_ms = -1;
    if (culprit) {
        r->captured = 1;
        r->culprit_kind = ELMON_CULPRIT_NATIVE;
        r->culprit = elmon_arena_put(&a, culprit, strlen(culprit));
        snprintf(r->how, sizeof r->how, "signal");
        snprintf(r->cause.cls, sizeof r->cause.cls, "sleep");
        snprintf(r->cause.syscall, sizeof r->cause.syscall, "clock_nanosleep");
        r->cause.state = 'S';
        r->cause.nr = 230;
        r->handler_us = 12;
        r->n_frames = 1;
        r->frames[0].addr = 1;
        r->frames[0].function = elmon_arena_put(&a, "f,g]", 4);
        r->task = elmon_arena_put(&a, "main (app.py:9)", 15);
    }
    r->text_len = a.len;
    return r;
}

START_TEST(logs_request_fields)
{
    struct otlp_resource res;
    fill_resource(&res);
    struct elmon_span_report *r0 = report(7, "loop", 3, 100, 60000000, 61000000, 0, "slow (app.py:4)");
    struct elmon_span_report *r1 = report(8, "w", 9, 300, 900000000, 900000000, 1, NULL);
    struct otlp_log_in recs[2] = {
        {.span = r0, .poller = "epoll_wait", .observed_unix_ns = 200},
        {.span = r1, .poller = "poll", .observed_unix_ns = 400},
    };
    struct otlp_arena a = {0};
    struct otlp_bytes out = {0};
    ck_assert_int_eq(otlp_encode_logs(&res, "1.0", recs, 2, &a, &out), 0);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, out.len, out.p);
    ck_assert_ptr_nonnull(req);
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = req->resource_logs[0]->scope_logs[0];
    ck_assert_uint_eq(sl->n_log_records, 2);
    Opentelemetry__Proto__Logs__V1__LogRecord *l = sl->log_records[0];
    ck_assert_str_eq(l->event_name, "eventloop.block");
    ck_assert_uint_eq(l->time_unix_nano, 100);
    ck_assert_uint_eq(l->observed_time_unix_nano, 200);
    ck_assert_int_eq(l->severity_number, OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN);
    ck_assert_str_eq(l->severity_text, "WARN");
    ck_assert(strstr(l->body->string_value, "60.0 ms") && strstr(l->body->string_value, "slow (app.py:4)"));
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "event.name")->string_value, "eventloop.block");
    ck_assert_int_eq(attr(l->attributes, l->n_attributes, "thread.id")->int_value, 7);
    ck_assert(fabs(attr(l->attributes, l->n_attributes, "eventloop.block.duration")->double_value - 0.06) < 1e-12);
    ck_assert(fabs(attr(l->attributes, l->n_attributes, "eventloop.block.lag")->double_value - 0.061) < 1e-12);
    ck_assert_int_eq(attr(l->attributes, l->n_attributes, "eventloop.block.turn")->int_value, 3);
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "eventloop.block.culprit")->string_value, "slow (app.py:4)");
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "eventloop.block.task")->string_value, "main (app.py:9)");
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "eventloop.block.cause")->string_value,
                     "{\"class\":\"sleep\",\"state\":\"S\",\"syscall\":\"clock_nanosleep\",\"cpu_ms\":null,"
                     "\"capture\":\"signal\",\"note\":null,\"stack_ms\":null,\"handler_us\":12.0,\"handler_cpu_us\":null,"
                     "\"python_read_us\":null}");
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "eventloop.block.stack")->string_value,
                     "[{\"addr\":\"0x1\",\"module\":null,\"build_id\":null,\"offset\":\"0x0\",\"function\":\"f,g]\","
                     "\"symbol\":null,\"file\":null,\"line\":null}]");
    ck_assert_ptr_null(attr(l->attributes, l->n_attributes, "eventloop.block.python"));
    l = sl->log_records[1];
    ck_assert_int_eq(l->severity_number, OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR);
    ck_assert_str_eq(attr(l->attributes, l->n_attributes, "eventloop.block.severity")->string_value, "critical");
    ck_assert_ptr_null(attr(l->attributes, l->n_attributes, "eventloop.block.culprit"));
    ck_assert_ptr_null(attr(l->attributes, l->n_attributes, "eventloop.block.task"));
    ck_assert_ptr_null(attr(l->attributes, l->n_attributes, "eventloop.block.cause"));
    ck_assert_ptr_null(attr(l->attributes, l->n_attributes, "eventloop.block.stack"));
    free(r0);
    free(r1);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
    ck_assert_int_eq(otlp_encode_logs(&res, "1.0", recs, 0, &a, &out), -ENODATA);
    otlp_arena_free(&a);
    otlp_bytes_free(&out);
    otlp_resource_free(&res);
}
END_TEST


START_TEST(gzip_and_framing)
{
    uint8_t in[10000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i % 17);
    struct otlp_bytes gz = {0};
    ck_assert_int_eq(otlp_gzip(in, sizeof in, &gz), 0);
    ck_assert_uint_lt(gz.len, sizeof in / 4);
    ck_assert(gz.p[0] == 0x1f && gz.p[1] == 0x8b);   /* gzip magic, not zlib */
    uint8_t back[sizeof in + 16];
    z_stream z = {0};
    ck_assert_int_eq(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = gz.p;
    z.avail_in = (uInt)gz.len;
    z.next_out = back;
    z.avail_out = sizeof back;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(z.total_out, sizeof in);
    inflateEnd(&z);
    ck_assert_int_eq(memcmp(in, back, sizeof in), 0);
    otlp_bytes_free(&gz);

    uint8_t hdr[5];
    otlp_grpc_frame_header(hdr, 1, 0x01020304);
    static const uint8_t want[5] = {1, 1, 2, 3, 4};
    ck_assert_int_eq(memcmp(hdr, want, 5), 0);
    otlp_grpc_frame_header(hdr, 0, 5);
    ck_assert(hdr[0] == 0 && hdr[4] == 5);
}
END_TEST

START_TEST(partial_success_decoding)
{
    /* field 1 { field 1: 3, field 2: "bad" } */
    static const uint8_t body[] = {0x0a, 0x07, 0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
    int64_t rej;
    char msg[64];
    ck_assert_int_eq(otlp_partial_success(0, body, sizeof body, &rej, msg, sizeof msg), 1);
    ck_assert_int_eq(rej, 3);
    ck_assert_str_eq(msg, "bad");
    ck_assert_int_eq(otlp_partial_success(1, body, sizeof body, &rej, msg, sizeof msg), 1);
    ck_assert_int_eq(otlp_partial_success(0, body, 0, &rej, msg, sizeof msg), 0);
    static const uint8_t empty_ps[] = {0x0a, 0x00};
    ck_assert_int_eq(otlp_partial_success(0, empty_ps, 2, &rej, msg, sizeof msg), 0);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(otlp_partial_success(0, garbage, sizeof garbage, &rej, msg, sizeof msg), -EINVAL);
}
END_TEST

/* A full batch of captured spans costs the request what their attribute
 * values need, not a 64 KiB rendering buffer each (512 records would have
 * held 96 MiB). */
START_TEST(logs_batch_memory_bounded)
{
    struct otlp_resource res;
    fill_resource(&res);
    enum { N = 512 };
    static struct otlp_log_in recs[N];
    struct elmon_span_report *r = report(7, "loop", 3, 100, 60000000, 61000000, 0, "slow (app.py:4)");
    for (int i = 0; i < N; i++)
        recs[i] = (struct otlp_log_in){.span = r, .poller = "epoll_wait", .observed_unix_ns = 200};
    struct otlp_arena a = {0};
    struct otlp_bytes out = {0};
    ck_assert_int_eq(otlp_encode_logs(&res, "1.0", recs, N, &a, &out), 0);
    ck_assert_msg(a.used_total < 4u << 20, "%zu bytes of arena for %d records", a.used_total, N);
    free(r);
    otlp_arena_free(&a);
    otlp_bytes_free(&out);
    otlp_resource_free(&res);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("export_encode");
    TCase *tc = tcase_create("bytes");
    tcase_add_test(tc, explicit_buckets);
    tcase_add_test(tc, exponential_buckets);
    tcase_add_test(tc, metrics_request_fields);
    tcase_add_test(tc, logs_request_fields);
    tcase_add_test(tc, logs_batch_memory_bounded);
    tcase_add_test(tc, gzip_and_framing);
    tcase_add_test(tc, partial_success_decoding);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
