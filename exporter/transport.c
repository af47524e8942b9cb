/*
 * OTLP over libcurl (see transport.h).  Exporter thread only.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "now.h"
#include "transport.h"

/* The most of a response body the exporter reads; past it the transfer is
 * cut and its connection closed.  A collector's answer is an
 * Export*ServiceResponse: empty, or a partial_success holding a count and
 * one error message, a line of text from every collector we know of (the
 * warning prints 256 bytes of it).  16 KiB holds a message sixty times that
 * long, so a partial success within reason is still decoded, and it is
 * libcurl's own write chunk (CURL_MAX_WRITE_SIZE), so the cut comes within
 * one read of the bound.  Reading on, as this once did to the end with the
 * first 64 KiB kept, let a peer answering 200 with an endless body hold the
 * exporter thread at half a core until the export timeout, every export. */
#define RESPONSE_BODY_MAX_BYTES (16 * 1024)

static uint64_t mono_ns(void)
{
    return elmon_now_ns(CLOCK_MONOTONIC);
}

int otlp_http_retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

int otlp_grpc_retryable(int code)
{
    /* CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
     * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS: the OTLP specification's list. */
    return code == 1 || code == 4 || code == 8 || code == 10 || code == 11 || code == 14 || code == 15;
}

/* A collector asking for more than a year is not asking for a retry: such a
 * value is ignored like one that does not parse (the backoff applies). */
#define RETRY_AFTER_MAX_S (86400LL * 365)

int64_t otlp_parse_retry_after(const char *v, time_t now)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || errno || s > (unsigned long long)RETRY_AFTER_MAX_S)
            return -1;
        return (int64_t)s * 1000;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end)
        return -1;
    /* Trailing text after the date is tolerated as before; a date beyond
     * the cap (year 9999 included, whose milliseconds from now would
     * overflow the caller's nanosecond arithmetic) is not. */
    time_t when = timegm(&tm);
    if (when == (time_t)-1)
        return -1;
    if (when <= now)
        return 0;
    if ((uint64_t)when - (uint64_t)now > (uint64_t)RETRY_AFTER_MAX_S)
        return -1;
    return (int64_t)(when - now) * 1000;
}

uint64_t otlp_backoff_ms(int retry, double r)
{
    uint64_t base = 1000;
    for (int i = 1; i < retry && base < 32000; i++)
        base *= 2;
    if (base > 32000)
        base = 32000;
    if (r < 0)
        r = 0;
    if (r >= 1)
        r = 0.999999;
    return (uint64_t)((double)base * (0.5 + r / 2));
}

int otlp_transport_init(struct otlp_transport *t)
{
    for (int s = 0; s < OTLP_NSIGNALS; s++) {
        t->easy[s] = curl_easy_init();
        if (!t->easy[s])
            return -ENOMEM;
    }
    /* Out of memory here, transfers run through curl_easy_perform: the
     * old way, with the wakeup pair below polled. */
    t->multi = curl_multi_init();
    return 0;
}

/* The multi handle (and with it libcurl's wakeup socketpair) is never
 * cleaned up, here or at exit: curl_multi_cleanup would close that pair,
 * whose numbers a host that closed every descriptor may have reused. */
void otlp_transport_abandon(struct otlp_transport *t)
{
    for (int s = 0; s < OTLP_NSIGNALS; s++)
        t->easy[s] = NULL;
    t->multi = NULL;
    memset(&t->gz, 0, sizeof t->gz);
    memset(&t->frame, 0, sizeof t->frame);
}

/* The exporter's sockets are libelmon's own descriptors (core/ownfd.h):
 * moved above the host's range, and out of reach of a host that closes
 * every descriptor it did not open.  libcurl would otherwise go on
 * writing requests to whatever the host opened at the old number. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    const struct otlp_transport *t = arg;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd >= 0 && t->core && t->core->adopt_fd)
        fd = t->core->adopt_fd(fd);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int close_socket(void *arg, curl_socket_t fd)
{
    const struct otlp_transport *t = arg;
    if (t->core && t->core->release_fd)
        t->core->release_fd(fd);
    else
        close(fd);
    return 0;
}

/* One transfer through the transport's multi handle.  curl_multi_wait,
 * not curl_multi_poll (which curl_easy_perform uses): _poll also watches
 * and reads the multi's wakeup socketpair, which libcurl makes itself,
 * bound past libelmon's interposition, so it cannot be adopted; a host
 * that closed every descriptor could have its own socket at that number.
 * _wait never touches it. */
static CURLcode perform(struct otlp_transport *t, CURL *e)
{
    CURLM *m = t->multi;
    if (!m)
        return curl_easy_perform(e);
    if (curl_multi_add_handle(m, e) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    int running = 1;
    CURLMcode mc;
    for (;;) {
        mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK || !running)
            break;
        mc = curl_multi_wait(m, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK)
            break;
    }
    CURLcode rc = mc == CURLM_OK ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
            rc = msg->data.result;
    curl_multi_remove_handle(m, e);
    return rc;
}

struct response {
    struct otlp_bytes body;
    size_t total;              /* body bytes received, kept or not (out of memory) */
    int cut;                   /* the body would pass RESPONSE_BODY_MAX_BYTES: the transfer was ended */
    int long_body;             /* this response's Content-Length passes RESPONSE_BODY_MAX_BYTES */
    char retry_after[64];
    int grpc_status;
    char grpc_message[128];
    const struct otlp_transport *t;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (n > RESPONSE_BODY_MAX_BYTES - r->total) {
        /* Returning short ends the transfer (CURLE_WRITE_ERROR), which
         * attempt() reads as a response whose body is not kept. */
        r->cut = 1;
        return 0;
    }
    r->total += n;
    if (r->body.len + n == r->total && otlp_bytes_reserve(&r->body, r->body.len + n) == 0) {
        memcpy(r->body.p + r->body.len, p, n);
        r->body.len += n;
    }
    return n;
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    size_t m = n - k - 1;
    while (m && (*v == ' ' || *v == '\t'))
        v++, m--;
    while (m && (v[m - 1] == '\r' || v[m - 1] == '\n' || v[m - 1] == ' '))
        m--;
    *val = v;
    *vn = m;
    return 1;
}

/* Headers and, for gRPC over HTTP/2, trailers: libcurl passes both here. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    const char *v;
    size_t vn;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A status line: a new response (after a 1xx, the final one).  By
         * now libcurl has its status for CURLINFO_RESPONSE_CODE. */
        r->long_body = 0;
    } else if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
        /* The end of the headers.  A body longer than the bound would be
         * cut unread anyway: end the transfer now rather than wait, up to
         * the export timeout, for a body (10^12 bytes, say) that may never
         * come.  The status and headers are all in hand. */
        if (r->long_body) {
            r->cut = 1;
            return 0;
        }
    } else if (header_is(p, n, "content-length", &v, &vn)) {
        char num[24];
        snprintf(num, sizeof num, "%.*s", (int)(vn < sizeof num - 1 ? vn : sizeof num - 1), v);
        char *end;
        errno = 0;
        unsigned long long len = strtoull(num, &end, 10);
        r->long_body = end != num && (errno == ERANGE || len > RESPONSE_BODY_MAX_BYTES);
    }
    if (header_is(p, n, "retry-after", &v, &vn))
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)vn, v);
    else if (header_is(p, n, "grpc-status", &v, &vn))
        r->grpc_status = atoi(v);
    else if (header_is(p, n, "grpc-message", &v, &vn))
        snprintf(r->grpc_message, sizeof r->grpc_message, "%.*s", (int)vn, v);
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const struct otlp_transport *t = ((struct response *)arg)->t;
    uint64_t at = t->abort_at_ns ? __atomic_load_n(t->abort_at_ns, __ATOMIC_ACQUIRE) : 0;
    return at && mono_ns() >= at;
}

static const char *const signal_names[] = {"metrics", "logs"};

/* After a transfer cut mid-response: the peer may still be sending, and
 * its connection must not be read again.  libcurl closes an HTTP/1.1
 * connection whose transfer ended early, but an HTTP/2 one (https by ALPN)
 * would only have its stream reset and stay in the multi handle's cache:
 * the next attempt makes a fresh connection and prunes every idle one
 * (CURLOPT_MAXAGE_CONN 0), closing it. */
static void drop_connections(struct otlp_transport *t, int signal)
{
    t->prune[signal] = 1;
}

/* One attempt.  Returns 1 delivered, 0 retryable failure, -1 final failure. */
static int attempt(struct otlp_transport *t, const struct otlp_target *tg, int signal, const uint8_t *body,
                   size_t n, uint64_t timeout_ms, struct response *r, struct otlp_send_result *res)
{
    CURL *e = t->easy[signal];
    struct curl_slist *hdrs = NULL;
    char line[4096];
    char detail[CURL_ERROR_SIZE];
    int grpc = tg->protocol == OTLP_GRPC;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, tg->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t);
    if (t->prune[signal]) {
        t->prune[signal] = 0;
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 0L);
    }
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* curl_easy_strerror() alone says "Failure when receiving data from the
     * peer" for a handshake the collector refused for want of a client
     * certificate; the error buffer has the cause (OpenSSL's "tlsv13 alert
     * certificate required", a key file that does not load).  It names
     * hosts and files, never a header. */
    detail[0] = 0;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, detail);
    snprintf(line, sizeof line, "libelmon/%s OTel-OTLP-Exporter-C", t->core ? t->core->elmon_version : "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, line);
    if (tg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, tg->ca_file);
    if (tg->client_cert)
        curl_easy_setopt(e, CURLOPT_SSLCERT, tg->client_cert);
    if (tg->client_key)
        curl_easy_setopt(e, CURLOPT_SSLKEY, tg->client_key);
    if (grpc) {
        int https = strncasecmp(tg->url, "https:", 6) == 0;
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                         https ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* libcurl 7.88 fails the second request on a reused HTTP/2
         * connection to a gRPC server ("Error in the HTTP2 framing layer",
         * nothing sent): one connection per export, which at one export a
         * minute costs nothing that matters. */
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/grpc");
        hdrs = curl_slist_append(hdrs, "TE: trailers");
        if (tg->gzip)
            hdrs = curl_slist_append(hdrs, "grpc-encoding: gzip");
        snprintf(line, sizeof line, "grpc-timeout: %llum", (unsigned long long)timeout_ms);
        hdrs = curl_slist_append(hdrs, line);
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-protobuf");
        if (tg->gzip)
            hdrs = curl_slist_append(hdrs, "Content-Encoding: gzip");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (size_t i = 0; i < tg->headers.n; i++) {
        /* A value with a line break would smuggle a header: skip it. */
        if (strpbrk(tg->headers.v[i].key, "\r\n:") || strpbrk(tg->headers.v[i].value, "\r\n"))
            continue;
        snprintf(line, sizeof line, "%s: %s", tg->headers.v[i].key, tg->headers.v[i].value);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = perform(t, e);
    explicit_bzero(line, sizeof line);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);   /* detail is this call's stack */
    /* Drop the header list: it holds credentials. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    for (struct curl_slist *h = hdrs; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
    if (r->cut)
        drop_connections(t, signal);
    res->http_status = status;
    res->grpc_status = r->grpc_status;

    /* Cut by on_body or on_header at the bound: the response is judged by
     * its status and headers, its body is not decoded. */
    int cut = rc == CURLE_WRITE_ERROR && r->cut;
    if (rc != CURLE_OK && !cut) {
        size_t k = strlen(detail);
        while (k && (detail[k - 1] == '\n' || detail[k - 1] == '\r'))
            detail[--k] = 0;
        if (rc == CURLE_OPERATION_TIMEDOUT && status >= 200 && status < 300) {
            /* A peer trickling its body: said as such, since a bare
             * "Timeout was reached" reads as a collector that never
             * answered.  Not retried: the attempt had all the time left,
             * and over http the 200 says the collector has the data. */
            snprintf(res->error, sizeof res->error, "HTTP status %ld, then the response did not end within the export "
                     "timeout (%s)", status, k ? detail : curl_easy_strerror(rc));
            return -1;
        }
        if (k && strcmp(detail, curl_easy_strerror(rc)) != 0)
            snprintf(res->error, sizeof res->error, "%s (%s)", curl_easy_strerror(rc), detail);
        else
            snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
        if (rc == CURLE_ABORTED_BY_CALLBACK) {
            /* Only on_progress aborts: the exit's flush deadline passed. */
            res->cut_at_exit = 1;
            return -1;
        }
        return 0;   /* network failures are retried */
    }
    if (grpc) {
        if (status != 200) {
            snprintf(res->error, sizeof res->error, "HTTP status %ld", status);
            return otlp_http_retryable(status) ? 0 : -1;
        }
        if (r->grpc_status < 0 && cut) {
            /* The status is in the trailers after the body.  Not retried:
             * a peer sending that much would do it again. */
            snprintf(res->error, sizeof res->error, "response over %d bytes, cut before its grpc-status",
                     RESPONSE_BODY_MAX_BYTES);
            return -1;
        }
        if (r->grpc_status < 0) {
            snprintf(res->error, sizeof res->error, "no grpc-status in the response");
            return 0;
        }
        if (r->grpc_status != 0) {
            snprintf(res->error, sizeof res->error, "grpc-status %d%s%s", r->grpc_status,
                     r->grpc_message[0] ? ": " : "", r->grpc_message);
            return otlp_grpc_retryable(r->grpc_status) ? 0 : -1;
        }
        return 1;
    }
    if (status >= 200 && status < 300)
        return 1;
    snprintf(res->error, sizeof res->error, "HTTP status %ld", status);
    return otlp_http_retryable(status) ? 0 : -1;
}

static double jitter(void)
{
    static __thread unsigned seed;
    if (!seed)
        seed = (unsigned)mono_ns() ^ (unsigned)(uintptr_t)&seed;
    return (double)rand_r(&seed) / ((double)RAND_MAX + 1.0);
}

void otlp_send(struct otlp_transport *t, const struct otlp_target *tg, int signal, const uint8_t *body,
               size_t n, uint64_t deadline_ns, struct otlp_send_result *res)
{
    const struct elmon_export_core *c = t->core;
    char where[512];
    memset(res, 0, sizeof *res);
    res->grpc_status = -1;
    otlp_url_printable(tg->url, where, sizeof where);

    const uint8_t *payload = body;
    size_t len = n;
    if (tg->gzip) {
        if (otlp_gzip(body, n, &t->gz) < 0) {
            c->warn("OTLP %s export to %s: cannot compress the request; sent uncompressed", signal_names[signal], where);
        } else {
            payload = t->gz.p;
            len = t->gz.len;
        }
    }
    int compressed = payload != body;
    if (tg->protocol == OTLP_GRPC) {
        if (otlp_bytes_reserve(&t->frame, len + 5) < 0) {
            snprintf(res->error, sizeof res->error, "out of memory");
            goto fail;
        }
        otlp_grpc_frame_header(t->frame.p, compressed, (uint32_t)len);
        memcpy(t->frame.p + 5, payload, len);
        payload = t->frame.p;
        len += 5;
    }

    struct response r = {.t = t};
    for (;;) {
        uint64_t now = mono_ns();
        if (now >= deadline_ns) {
            if (!res->attempts)
                snprintf(res->error, sizeof res->error, "no time left to send");
            break;
        }
        uint64_t left_ms = (deadline_ns - now) / 1000000;
        if (!left_ms)
            left_ms = 1;
        r.body.len = 0;
        r.total = 0;
        r.cut = r.long_body = 0;
        r.retry_after[0] = 0;
        r.grpc_status = -1;
        r.grpc_message[0] = 0;
        res->attempts++;
        int rc = attempt(t, tg, signal, payload, len, left_ms, &r, res);
        if (rc > 0) {
            res->ok = 1;
            int64_t rejected;
            char msg[256];
            const uint8_t *rb = r.body.p;
            size_t rn = r.body.len;
            if (tg->protocol == OTLP_GRPC && rn >= 5 && rb[0] == 0) {
                rb += 5;
                rn -= 5;
            }
            if (!r.cut && r.body.len == r.total && otlp_partial_success(signal, rb, rn, &rejected, msg, sizeof msg) > 0)
                c->warn("OTLP %s export to %s partially rejected: %lld %s rejected%s%s (not retried)",
                        signal_names[signal], where, (long long)rejected,
                        signal == OTLP_METRICS ? "data points" : "log records", msg[0] ? ": " : "", msg);
            break;
        }
        if (rc < 0)
            break;
        uint64_t wait_ms = otlp_backoff_ms(res->attempts, jitter());
        if (r.retry_after[0]) {
            int64_t ra = otlp_parse_retry_after(r.retry_after, time(NULL));
            if (ra >= 0)
                wait_ms = (uint64_t)ra;
        }
        now = mono_ns();
        if (now >= deadline_ns || wait_ms >= (deadline_ns - now) / 1000000) {
            size_t k = strlen(res->error);
            snprintf(res->error + k, sizeof res->error - k, "; the next retry would pass the export timeout");
            break;
        }
        if (t->sleep_ms(wait_ms))
            break;
    }
    otlp_bytes_free(&r.body);
    if (res->ok) {
        if (t->failed_in_row[signal])
            c->logf("OTLP %s export to %s delivered again after %u failed export%s (the last: %s)",
                    signal_names[signal], where, t->failed_in_row[signal], t->failed_in_row[signal] == 1 ? "" : "s",
                    t->last_cause[signal]);
        t->failed_in_row[signal] = t->unlogged[signal] = 0;
        return;
    }
fail:;
    /* The process is exiting and its flush deadline (ELMON_EXPORT_FLUSH_MS)
     * cut this export: what the user chose, said as a fact, not a
     * collector's failure. */
    if (res->cut_at_exit) {
        c->logf("OTLP %s export to %s cut short at exit by the flush deadline (ELMON_EXPORT_FLUSH_MS); dropped",
                signal_names[signal], where);
        return;
    }
    const char *why = res->error[0] ? res->error : "unknown error";
    otlp_failure_cause(why, t->last_cause[signal], sizeof t->last_cause[signal]);
    if (t->failed_in_row[signal]++) {
        t->unlogged[signal]++;
        return;
    }
    c->warn("OTLP %s export to %s failed after %d attempt%s: %s; dropped (further failures are counted, not "
            "logged, until an export succeeds)",
            signal_names[signal], where, res->attempts, res->attempts == 1 ? "" : "s", why);
}

void otlp_failure_cause(const char *error, char *out, size_t n)
{
    size_t k = strcspn(error, ";:");
    const char *paren = strstr(error, " (");
    if (paren && (size_t)(paren - error) < k)
        k = (size_t)(paren - error);
    snprintf(out, n, "%.*s", (int)k, error);
}

void otlp_transport_final_report(struct otlp_transport *t, const struct otlp_target *tg)
{
    for (int s = 0; s < OTLP_NSIGNALS; s++) {
        if (!t->unlogged[s])
            continue;
        char where[512];
        otlp_url_printable(tg[s].url, where, sizeof where);
        t->core->warn("OTLP %s export to %s: %u more failed export%s since the warning, all dropped (the last: %s)",
                      signal_names[s], where, t->unlogged[s], t->unlogged[s] == 1 ? "" : "s", t->last_cause[s]);
        t->unlogged[s] = 0;
    }
}
