/*
 * The exporter's settings: the OTEL_* variables of the OpenTelemetry SDK
 * environment specification (and the seed's aliases), read once at start.
 *
 * The parsers are pure functions of strings, tested table-driven in
 * tests/test_export_config.c; otlp_config_load() only reads the environment
 * and applies the spec's rule for bad values: one warning, then the default.
 * Header values are secrets: no function here ever prints one.
 */
#ifndef ELMON_OTLP_CONFIG_H
#define ELMON_OTLP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "export_api.h"

enum otlp_signal { OTLP_METRICS = 0, OTLP_LOGS = 1, OTLP_NSIGNALS };
enum otlp_protocol { OTLP_HTTP_PROTOBUF = 0, OTLP_GRPC, OTLP_HTTP_JSON };
enum otlp_temporality { OTLP_CUMULATIVE = 0, OTLP_DELTA, OTLP_LOWMEMORY };
enum otlp_histogram { OTLP_HIST_EXPLICIT = 0, OTLP_HIST_EXPONENTIAL };

/* A list of key=value pairs, both percent-decoded, owned (malloc). */
struct otlp_kv {
    char *key, *value;
};
struct otlp_kvlist {
    struct otlp_kv *v;
    size_t n, cap;
};

void otlp_kvlist_free(struct otlp_kvlist *l);
/* Set key to value, replacing an earlier value; 0 or -ENOMEM. */
int otlp_kvlist_set(struct otlp_kvlist *l, const char *key, const char *value);
const char *otlp_kvlist_get(const struct otlp_kvlist *l, const char *key);

/* Per-signal transport settings. */
struct otlp_target {
    int sink;                    /* enum elmon_export_sink (bit set) */
    int protocol;                /* enum otlp_protocol */
    char *url;                   /* full URL of the request (malloc) */
    struct otlp_kvlist headers;
    uint64_t timeout_ms;
    int gzip;
    char *ca_file, *client_cert, *client_key;
};

struct otlp_config {
    struct otlp_target t[OTLP_NSIGNALS];
    uint64_t interval_ms, export_timeout_ms, flush_ms;
    int temporality;             /* enum otlp_temporality */
    int histogram;               /* enum otlp_histogram */
    char prefix[64];             /* ELMON_METRIC_PREFIX */
    uint64_t logs_delay_ms, logs_queue, logs_batch;
    int command_args;            /* process.command_args opt-in */
};

/* --- pure parsers --- */

/* The request URL for signal from the spec's rules: a per-signal endpoint
 * is used as is; the generic one gets "v1/metrics" or "v1/logs" appended
 * after exactly one slash; with neither, http://localhost:4318/v1/... .
 * gRPC uses the endpoint's scheme://host:port and appends the service
 * method; a gRPC endpoint without a scheme is https unless insecure.
 * Returns a malloc'd URL, or NULL (-EINVAL in *err) when the endpoint is not
 * a URL libelmon can use. */
char *otlp_endpoint_url(const char *generic, const char *per_signal, int signal, int protocol,
                        int insecure, int *err);

/* "k1=v1, k2=v2" as in OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES: keys and values are trimmed and percent-decoded.
 * strict (resource attributes): any malformed pair rejects the whole string
 * (-EINVAL, list left empty); otherwise (headers) a malformed pair is
 * skipped and counted in *n_bad.  0 or -errno. */
int otlp_parse_kvlist(const char *s, int strict, struct otlp_kvlist *out, int *n_bad);

/* Percent-decode into out (NUL-terminated, at most strlen(s) + 1 bytes);
 * -EINVAL on a bad %XX escape or a decoded NUL. */
int otlp_percent_decode(const char *s, size_t n, char *out);

/* Protocol names: "http/protobuf", "grpc", "http/json". */
int otlp_parse_protocol(const char *s);
int otlp_parse_temporality(const char *s);
int otlp_parse_histogram(const char *s);

/* --- environment --- */

/* Read every variable (one warning per bad value) into cfg.  0, or -errno
 * when nothing can be exported (already logged). */
int otlp_config_load(const struct elmon_export_core *core, struct otlp_config *cfg);
void otlp_config_free(struct otlp_config *cfg);

/* The URL as it may be printed: userinfo and query removed. */
void otlp_url_printable(const char *url, char *out, size_t n);

#endif
