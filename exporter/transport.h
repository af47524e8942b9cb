/*
 * OTLP transport over libcurl: http/protobuf (HTTP/1.1, or HTTP/2 by ALPN)
 * and gRPC (HTTP/2; h2c with prior knowledge for http:// endpoints).  Runs
 * on the exporter's one background thread only; the retry policy helpers
 * are pure and unit-tested.
 */
#ifndef ELMON_OTLP_TRANSPORT_H
#define ELMON_OTLP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "encode.h"
#include "otlp_config.h"

struct otlp_transport {
    void *easy[OTLP_NSIGNALS];       /* CURL *, one per signal */
    void *multi;                     /* CURLM *, holds the connections for reuse; never cleaned up */
    int prune[OTLP_NSIGNALS];        /* the last transfer was cut: the next one drops idle connections */
    struct otlp_bytes gz;            /* compressed body */
    struct otlp_bytes frame;         /* gRPC frame */
    /* Waits for ms, returning early (non-zero) when the exporter is told
     * to stop; supplied by the exporter so a retry sleep never holds up
     * exit. */
    int (*sleep_ms)(uint64_t ms);
    /* CLOCK_MONOTONIC ns past which every transfer is cut (exit's flush
     * deadline), 0 for none; read with an atomic load. */
    const uint64_t *abort_at_ns;
    const struct elmon_export_core *core;
    /* Per signal: failed exports in a row, and the cause of the last one
     * ("HTTP status 503", "Couldn't connect to server").  A dead collector
     * gets one warning, not one per export interval for the life of the
     * host: the first failure of a run is logged, the rest counted (a
     * refused TLS handshake alone fails as a send or as a receive, by
     * timing, so "the same cause" would not keep a run quiet); the first
     * success, or exit, says how many were lost and the last cause.
     * Inherited by a forked child, which the parent's warning covers. */
    unsigned failed_in_row[OTLP_NSIGNALS];
    unsigned unlogged[OTLP_NSIGNALS];        /* failures since the warning */
    char last_cause[OTLP_NSIGNALS][64];
};

struct otlp_send_result {
    int ok;                          /* delivered (2xx / grpc-status 0) */
    int attempts;
    long http_status;                /* last one, 0 if none */
    int grpc_status;                 /* -1 if none */
    char error[512];                 /* why the last attempt failed, no secrets */
    int cut_at_exit;                 /* the exit's flush deadline ended it */
};

int otlp_transport_init(struct otlp_transport *t);
/* At exit: one line per signal whose failures since its warning were not
 * logged, with their count and last cause. */
void otlp_transport_final_report(struct otlp_transport *t, const struct otlp_target *tg);
/* A failure's cause as the counts name it: its error text up to the
 * first " (", ";" or ":" ("Couldn't connect to server", "HTTP status
 * 503", "grpc-status 14"), into out. */
void otlp_failure_cause(const char *error, char *out, size_t n);
/* Forget connections without closing them (a forked child must not talk
 * over its parent's sockets or TLS sessions). */
void otlp_transport_abandon(struct otlp_transport *t);

/* Send one request body, retrying within deadline_ns (CLOCK_MONOTONIC).
 * Logs one line at the first failure after a success (or start), when
 * it is partially rejected, and when export succeeds again after
 * failures. */
void otlp_send(struct otlp_transport *t, const struct otlp_target *tg, int signal, const uint8_t *body,
               size_t n, uint64_t deadline_ns, struct otlp_send_result *res);

/* --- retry policy (pure) --- */
int otlp_http_retryable(long status);       /* 429, 502, 503, 504 */
int otlp_grpc_retryable(int code);          /* UNAVAILABLE, RESOURCE_EXHAUSTED, ... */
/* Retry-After as delta-seconds or an HTTP-date, in ms from now (0 for a
 * date past); -1 when it does not parse or asks for more than a year. */
int64_t otlp_parse_retry_after(const char *v, time_t now);
/* Backoff before retry number `retry` (1-based): 1 s doubling up to 32 s,
 * times a jitter factor in [0.5, 1) from r in [0, 1). */
uint64_t otlp_backoff_ms(int retry, double r);

#endif
