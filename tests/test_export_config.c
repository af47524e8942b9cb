/*
 * The exporter's configuration, table-driven: endpoint joining, header and
 * resource-attribute parsing with percent-decoding, protocol/temporality/
 * histogram names, the core's bool/number/enum parsers, which exporters the
 * OTEL_* variables select, the retry policy, and the resource helpers.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "config.h"
#include "otlp.h"
#include "otlp_config.h"
#include "resource.h"
#include "support.h"
#include "transport.h"

static const struct {
    const char *generic, *per_signal;
    int signal, protocol, insecure;
    const char *want;            /* NULL: rejected */
} endpoint_cases[] = {
    {NULL, NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, "http://localhost:4318/v1/metrics"},
    {NULL, NULL, OTLP_LOGS, OTLP_HTTP_PROTOBUF, 0, "http://localhost:4318/v1/logs"},
    {"http://c:4318", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, "http://c:4318/v1/metrics"},
    {"http://c:4318/", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, "http://c:4318/v1/metrics"},
    {"https://c/otlp", NULL, OTLP_LOGS, OTLP_HTTP_PROTOBUF, 0, "https://c/otlp/v1/logs"},
    {"https://c/otlp/", NULL, OTLP_LOGS, OTLP_HTTP_PROTOBUF, 0, "https://c/otlp/v1/logs"},
    {"http://c:4318", "http://m:9/custom", OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, "http://m:9/custom"},
    {"http://c:4318", "http://m:9", OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, "http://m:9"},
    {"http://c:4318", "http://l:9/x/", OTLP_LOGS, OTLP_HTTP_PROTOBUF, 0, "http://l:9/x/"},
    {"c:4318", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, NULL},
    {"ftp://c", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, NULL},
    {"http://", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, NULL},
    {"http://bad host", NULL, OTLP_METRICS, OTLP_HTTP_PROTOBUF, 0, NULL},
    {NULL, NULL, OTLP_METRICS, OTLP_GRPC, 0,
     "http://localhost:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"},
    {"http://g:4317", NULL, OTLP_LOGS, OTLP_GRPC, 0,
     "http://g:4317/opentelemetry.proto.collector.logs.v1.LogsService/Export"},
    {"https://g:4317/ignored/path", NULL, OTLP_METRICS, OTLP_GRPC, 0,
     "https://g:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"},
    {"g:4317", NULL, OTLP_METRICS, OTLP_GRPC, 0,
     "https://g:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"},
    {"g:4317", NULL, OTLP_METRICS, OTLP_GRPC, 1,
     "http://g:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"},
    {"http://g:1", "http://s:2", OTLP_LOGS, OTLP_GRPC, 0,
     "http://s:2/opentelemetry.proto.collector.logs.v1.LogsService/Export"},
};

START_TEST(endpoint_joining)
{
    for (size_t i = 0; i < sizeof endpoint_cases / sizeof endpoint_cases[0]; i++) {
        int err = 0;
        char *u = otlp_endpoint_url(endpoint_cases[i].generic, endpoint_cases[i].per_signal,
                                    endpoint_cases[i].signal, endpoint_cases[i].protocol,
                                    endpoint_cases[i].insecure, &err);
        if (!endpoint_cases[i].want) {
            ck_assert_msg(!u && err == -EINVAL, "case %zu: accepted %s", i, u ? u : "");
        } else {
            ck_assert_msg(u && strcmp(u, endpoint_cases[i].want) == 0, "case %zu: got %s want %s", i,
                          u ? u : "(null)", endpoint_cases[i].want);
        }
        free(u);
    }
}
END_TEST

START_TEST(printable_url_hides_credentials)
{
    char out[256];
    otlp_url_printable("https://user:secret@host:443/v1/metrics?token=abc", out, sizeof out);
    ck_assert_str_eq(out, "https://host:443/v1/metrics");
    otlp_url_printable("http://h:1/x", out, sizeof out);
    ck_assert_str_eq(out, "http://h:1/x");
}
END_TEST

static const struct {
    const char *in;
    int strict;
    int rc, n_bad;
    const char *pairs;           /* "k=v;k=v" expected, decoded */
} kv_cases[] = {
    {"a=1,b=2", 0, 0, 0, "a=1;b=2"},
    {" a = 1 , b=2 ", 0, 0, 0, "a=1;b=2"},
    {"Authorization=Basic%20dXNlcjpwYXNz", 0, 0, 0, "Authorization=Basic dXNlcjpwYXNz"},
    {"k%3Dx=v%2Cw", 0, 0, 0, "k=x=v,w"},
    {"a=1,,b=2,", 0, 0, 0, "a=1;b=2"},
    {"a=x=y", 0, 0, 0, "a=x=y"},
    {"a=", 0, 0, 0, "a="},
    {"a=1,a=2", 0, 0, 0, "a=2"},
    {"novalue,b=2", 0, 0, 1, "b=2"},
    {"=v,b=2", 0, 0, 1, "b=2"},
    {"a=%zz,b=2", 0, 0, 1, "b=2"},
    {"a=%4,b=2", 0, 0, 1, "b=2"},
    {"a=%00,b=2", 0, 0, 1, "b=2"},
    {"service.name=x,team=pay%20ments", 1, 0, 0, "service.name=x;team=pay ments"},
    {"service.name=x,broken", 1, -EINVAL, 1, ""},
    {"a=%g1", 1, -EINVAL, 1, ""},
    {"", 1, 0, 0, ""},
};

START_TEST(kvlist_parsing)
{
    for (size_t i = 0; i < sizeof kv_cases / sizeof kv_cases[0]; i++) {
        struct otlp_kvlist l = {0};
        int bad = -1;
        int rc = otlp_parse_kvlist(kv_cases[i].in, kv_cases[i].strict, &l, &bad);
        ck_assert_msg(rc == kv_cases[i].rc, "case %zu (%s): rc %d", i, kv_cases[i].in, rc);
        ck_assert_msg(bad == kv_cases[i].n_bad, "case %zu (%s): %d bad", i, kv_cases[i].in, bad);
        char got[512] = "";
        for (size_t k = 0; k < l.n; k++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, "%s%s=%s", k ? ";" : "", l.v[k].key, l.v[k].value);
        }
        ck_assert_msg(strcmp(got, kv_cases[i].pairs) == 0, "case %zu (%s): got '%s'", i, kv_cases[i].in, got);
        otlp_kvlist_free(&l);
    }
}
END_TEST

START_TEST(percent_decoding)
{
    char out[64];
    ck_assert_int_eq(otlp_percent_decode("a%2Fb%2fc", 9, out), 0);
    ck_assert_str_eq(out, "a/b/c");
    ck_assert_int_eq(otlp_percent_decode("%E2%9C%93", 9, out), 0);
    ck_assert_str_eq(out, "\xe2\x9c\x93");
    ck_assert_int_eq(otlp_percent_decode("100%", 4, out), -EINVAL);
    ck_assert_int_eq(otlp_percent_decode("%x1", 3, out), -EINVAL);
    ck_assert_int_eq(otlp_percent_decode("plain", 5, out), 0);
    ck_assert_str_eq(out, "plain");
}
END_TEST

START_TEST(enum_names)
{
    ck_assert_int_eq(otlp_parse_protocol("http/protobuf"), OTLP_HTTP_PROTOBUF);
    ck_assert_int_eq(otlp_parse_protocol("GRPC"), OTLP_GRPC);
    ck_assert_int_eq(otlp_parse_protocol("http/json"), OTLP_HTTP_JSON);
    ck_assert_int_eq(otlp_parse_protocol("http"), -EINVAL);
    ck_assert_int_eq(otlp_parse_protocol(NULL), -EINVAL);
    ck_assert_int_eq(otlp_parse_temporality("cumulative"), OTLP_CUMULATIVE);
    ck_assert_int_eq(otlp_parse_temporality("Delta"), OTLP_DELTA);
    ck_assert_int_eq(otlp_parse_temporality("lowmemory"), OTLP_LOWMEMORY);
    ck_assert_int_eq(otlp_parse_temporality("low_memory"), -EINVAL);
    ck_assert_int_eq(otlp_parse_histogram("explicit_bucket_histogram"), OTLP_HIST_EXPLICIT);
    ck_assert_int_eq(otlp_parse_histogram("base2_exponential_bucket_histogram"), OTLP_HIST_EXPONENTIAL);
    ck_assert_int_eq(otlp_parse_histogram("exponential"), -EINVAL);
}
END_TEST

/* The core's parsers, as the exporter uses them for OTEL_* values. */
START_TEST(bool_number_enum)
{
    static const struct { const char *s; int rc, v; } bools[] = {
        {"true", 0, 1}, {"TRUE", 0, 1}, {"1", 0, 1}, {"on", 0, 1}, {"false", 0, 0}, {"0", 0, 0},
        {"no", 0, 0}, {"", -EINVAL, 0}, {"yes please", -EINVAL, 0}, {"2", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        int v = -1;
        ck_assert_msg(elmon_parse_bool(bools[i].s, &v) == bools[i].rc, "bool '%s'", bools[i].s);
        if (!bools[i].rc)
            ck_assert_int_eq(v, bools[i].v);
    }
    static const struct { const char *s; int rc; uint64_t v; } nums[] = {
        {"60000", 0, 60000}, {"1", 0, 1}, {"0", -ERANGE, 0}, {"3600001", -ERANGE, 0}, {"-5", -EINVAL, 0},
        {"10s", -EINVAL, 0}, {" 5", -EINVAL, 0}, {"99999999999999999999999", -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        uint64_t v = 0;
        ck_assert_msg(elmon_parse_uint(nums[i].s, 1, 3600000, &v) == nums[i].rc, "uint '%s'", nums[i].s);
        if (!nums[i].rc)
            ck_assert_uint_eq(v, nums[i].v);
    }
    static const char *const comp[] = {"none", "gzip", 0};
    ck_assert_int_eq(elmon_parse_enum("gzip", comp), 1);
    ck_assert_int_eq(elmon_parse_enum("GZIP", comp), 1);
    ck_assert_int_eq(elmon_parse_enum("none", comp), 0);
    ck_assert_int_eq(elmon_parse_enum("deflate", comp), -EINVAL);
}
END_TEST

/* Which exporters the OTEL_* variables select; each row runs in a fresh
 * process (the plan is decided once per process). */
static const struct {
    const char *env[4];
    int metrics, logs;
} plan_cases[] = {
    {{NULL}, ELMON_SINK_NONE, ELMON_SINK_NONE},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"}, ELMON_SINK_OTLP, ELMON_SINK_OTLP},
    {{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://c:4318/m"}, ELMON_SINK_OTLP, ELMON_SINK_NONE},
    {{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://c:4318/l"}, ELMON_SINK_NONE, ELMON_SINK_OTLP},
    {{"OTEL_METRICS_EXPORTER=otlp"}, ELMON_SINK_OTLP, ELMON_SINK_NONE},
    {{"OTEL_METRICS_EXPORTER=console", "OTEL_LOGS_EXPORTER=console"}, ELMON_SINK_CONSOLE, ELMON_SINK_CONSOLE},
    {{"OTEL_METRICS_EXPORTER=otlp,console"}, ELMON_SINK_OTLP | ELMON_SINK_CONSOLE, ELMON_SINK_NONE},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c", "OTEL_LOGS_EXPORTER=none"}, ELMON_SINK_OTLP, ELMON_SINK_NONE},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c", "OTEL_METRICS_EXPORTER=prometheus"}, ELMON_SINK_NONE, ELMON_SINK_OTLP},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c", "OTEL_SDK_DISABLED=true"}, ELMON_SINK_NONE, ELMON_SINK_NONE},
    {{"OTEL_METRICS_EXPORTER=console", "OTEL_SDK_DISABLED=TRUE"}, ELMON_SINK_NONE, ELMON_SINK_NONE},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c", "OTEL_SDK_DISABLED=false"}, ELMON_SINK_OTLP, ELMON_SINK_OTLP},
    {{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c", "OTEL_SDK_DISABLED=maybe"}, ELMON_SINK_OTLP, ELMON_SINK_OTLP},
};

START_TEST(export_plan)
{
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    for (int k = 0; k < 4 && plan_cases[_i].env[k]; k++)
        putenv((char *)plan_cases[_i].env[k]);
    struct elmon_export_plan p;
    elmon_export_plan(&p);
    ck_assert_msg(p.metrics == plan_cases[_i].metrics && p.logs == plan_cases[_i].logs,
                  "row %d: metrics %d logs %d", _i, p.metrics, p.logs);
}
END_TEST

START_TEST(retry_policy)
{
    for (long s = 100; s < 600; s++)
        ck_assert_int_eq(otlp_http_retryable(s), s == 429 || s == 502 || s == 503 || s == 504);
    static const int grpc_retry[] = {1, 4, 8, 10, 11, 14, 15};
    for (int code = 0; code <= 16; code++) {
        int want = 0;
        for (size_t i = 0; i < sizeof grpc_retry / sizeof grpc_retry[0]; i++)
            want |= grpc_retry[i] == code;
        ck_assert_int_eq(otlp_grpc_retryable(code), want);
    }
    time_t now = 1700000000;   /* Tue, 14 Nov 2023 22:13:20 GMT */
    ck_assert_int_eq(otlp_parse_retry_after("3", now), 3000);
    ck_assert_int_eq(otlp_parse_retry_after(" 0 ", now), 0);
    ck_assert_int_eq(otlp_parse_retry_after("Tue, 14 Nov 2023 22:13:25 GMT", now), 5000);
    ck_assert_int_eq(otlp_parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now), 0);
    ck_assert_int_eq(otlp_parse_retry_after("soon", now), -1);
    ck_assert_int_eq(otlp_parse_retry_after("-1", now), -1);
    ck_assert_int_eq(otlp_parse_retry_after("1.5", now), -1);
    /* More than a year away is no retry hint (and would overflow ns). */
    ck_assert_int_eq(otlp_parse_retry_after("31536000", now), 31536000000LL);
    ck_assert_int_eq(otlp_parse_retry_after("31536001", now), -1);
    ck_assert_int_eq(otlp_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), -1);
    /* 1 s doubling to 32 s, jittered into [50%, 100%). */
    static const uint64_t base[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000};
    for (int r = 1; r <= 8; r++) {
        ck_assert_uint_eq(otlp_backoff_ms(r, 0.0), base[r - 1] / 2);
        ck_assert_uint_lt(otlp_backoff_ms(r, 0.9999999), base[r - 1]);
        ck_assert_uint_ge(otlp_backoff_ms(r, 0.9999999), base[r - 1] * 99 / 100);
    }
}
END_TEST

START_TEST(resource_helpers)
{
    static const struct { const char *text, *want; } cg[] = {
        {"12:memory:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"0::/system.slice/docker-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope\n",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"0::/kubepods/besteffort/pod1/cri-containerd-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.scope",
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
        {"/var/lib/docker/containers/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc/hostname /etc/hostname",
         "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},
        {"0::/\n", NULL},
        {"0::/user.slice/user-1000.slice/session-2.scope\n", NULL},
        {"1:name=x:/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd0\n", NULL},
    };
    for (size_t i = 0; i < sizeof cg / sizeof cg[0]; i++) {
        char id[65];
        int rc = otlp_container_id(cg[i].text, id);
        if (cg[i].want) {
            ck_assert_msg(rc == 0, "cgroup case %zu not found", i);
            ck_assert_str_eq(id, cg[i].want);
        } else {
            ck_assert_msg(rc == -ENOENT, "cgroup case %zu: found %s", i, id);
        }
    }
    ck_assert_str_eq(otlp_host_arch("x86_64"), "amd64");
    ck_assert_str_eq(otlp_host_arch("aarch64"), "arm64");
    ck_assert_str_eq(otlp_host_arch("riscv64"), "riscv64");
    char a[37], b[37];
    otlp_uuid4(a);
    otlp_uuid4(b);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                             REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(regexec(&re, a, 0, NULL, 0), 0);
    ck_assert_int_eq(regexec(&re, b, 0, NULL, 0), 0);
    regfree(&re);
    ck_assert_str_ne(a, b);
}
END_TEST

/* node::per_process::metadata begins with versions.node, a libstdc++
 * std::string; only its inline form is read, and anything else is left
 * out rather than guessed. */
START_TEST(node_version_layout)
{
    struct fake { const char *data; size_t len; char buf[16]; } m;
    char out[16];
    memset(&m, 0, sizeof m);
    strcpy(m.buf, "20.20.2");
    m.data = m.buf;
    m.len = 7;
    ck_assert_int_eq(otlp_node_version(&m, out, sizeof out), 0);
    ck_assert_str_eq(out, "20.20.2");
    ck_assert_int_eq(otlp_node_version(&m, out, 7), -1);      /* no room for it */
    m.len = 6;                                           /* length and NUL disagree */
    ck_assert_int_eq(otlp_node_version(&m, out, sizeof out), -1);
    m.len = 7;
    static const char heap[] = "20.20.2";
    m.data = heap;                                       /* not inline: never followed */
    ck_assert_int_eq(otlp_node_version(&m, out, sizeof out), -1);
    m.data = m.buf;
    strcpy(m.buf, "v20.1.0");                            /* not a bare version */
    ck_assert_int_eq(otlp_node_version(&m, out, sizeof out), -1);
    m.len = 0;
    m.buf[0] = 0;
    ck_assert_int_eq(otlp_node_version(&m, out, sizeof out), -1);
    ck_assert_int_eq(otlp_node_version(NULL, out, sizeof out), -1);
}
END_TEST

/* The cause a failure streak is keyed by: the same for every failure of
 * one kind, whatever the detail (ports, timings) says. */
START_TEST(failure_cause_keys)
{
    static const struct { const char *error, *cause; } k[] = {
        {"Couldn't connect to server (Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server)",
         "Couldn't connect to server"},
        {"HTTP status 503; the next retry would pass the export timeout", "HTTP status 503"},
        {"HTTP status 400", "HTTP status 400"},
        {"grpc-status 14: unavailable", "grpc-status 14"},
        {"Timeout was reached (Operation timed out after 500 milliseconds with 0 bytes received)",
         "Timeout was reached"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char out[64];
        otlp_failure_cause(k[i].error, out, sizeof out);
        ck_assert_str_eq(out, k[i].cause);
    }
    char small[8];
    otlp_failure_cause("HTTP status 503", small, sizeof small);
    ck_assert_str_eq(small, "HTTP st");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("export_config");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, endpoint_joining);
    tcase_add_test(tc, printable_url_hides_credentials);
    tcase_add_test(tc, kvlist_parsing);
    tcase_add_test(tc, percent_decoding);
    tcase_add_test(tc, enum_names);
    tcase_add_test(tc, bool_number_enum);
    tcase_add_loop_test(tc, export_plan, 0, (int)(sizeof plan_cases / sizeof plan_cases[0]));
    tcase_add_test(tc, retry_policy);
    tcase_add_test(tc, resource_helpers);
    tcase_add_test(tc, node_version_layout);
    tcase_add_test(tc, failure_cause_keys);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
