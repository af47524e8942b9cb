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
    void *easy[OTLP_NSIGNALS];       /* CURL *, kept for connection reuse */
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
};

struct otlp_send_result {
    int ok;                          /* delivered (2xx / grpc-status 0) */
    int attempts;
    long http_status;                /* last one, 0 if none */
    int grpc_status;                 /* -1 if none */
    char error[512];                 /* why the last attempt failed, no secrets */
};

int otlp_transport_init(struct otlp_transport *t);
/* Forget connections without closing them (a forked child must not talk
 * over its parent's sockets or TLS sessions). */
void otlp_transport_abandon(struct otlp_transport *t);

/* Send one request body, retrying within deadline_ns (CLOCK_MONOTONIC).
 * Logs one line when the export fails or is partially rejected. */
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
