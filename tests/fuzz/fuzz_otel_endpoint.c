/*
 * OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal endpoints
 * (exporter/otlp_config.c otlp_endpoint_url, otlp_url_printable).
 *
 * Checked: a URL or -EINVAL, never both or neither; every URL is http(s)
 * with a host free of blanks and control characters; a per-signal HTTP
 * endpoint is used as is, the generic one gets exactly one slash and the
 * signal's path, gRPC gets the service method; and the printable form
 * (what warnings and ELMON_VERBOSE show) fits its buffer and carries no
 * userinfo, query or fragment: credentials in a URL never reach a log.
 *
 * Input: one byte (signal, protocol, insecure, which endpoints are set,
 * printable buffer size), then "GENERIC\nPER_SIGNAL".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fuzz.h"
#include "otlp_config.h"

static void check_printable(const char *url, size_t n)
{
    char *out = malloc(n ? n : 1);
    FUZZ_CHECK(out);
    otlp_url_printable(url, out, n);
    if (n) {
        size_t len = strnlen(out, n);
        FUZZ_CHECK(len < n);
        FUZZ_CHECK(!memchr(out, '?', len) && !memchr(out, '#', len));
        const char *host = strstr(out, "://");
        if (host) {
            host += 3;
            size_t auth = strcspn(host, "/");
            FUZZ_CHECK(!memchr(host, '@', auth));
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    int signal = sel & 1, protocol = (sel >> 1) % 3, insecure = (sel >> 3) & 1;
    char *s = fuzz_strndup(data + 1, size - 1);
    char *nl = strchr(s, '\n');
    const char *generic = s, *per = NULL;
    if (nl) {
        *nl = 0;
        per = nl + 1;
    }
    if (!(sel & 0x10))
        generic = NULL;
    if (!(sel & 0x20))
        per = NULL;

    int err = 1;
    char *url = otlp_endpoint_url(generic, per, signal, protocol, insecure, &err);
    FUZZ_CHECK(url ? err == 0 : err == -EINVAL);
    if (url) {
        int https = strncasecmp(url, "https://", 8) == 0;
        FUZZ_CHECK(https || strncasecmp(url, "http://", 7) == 0);
        const char *host = url + (https ? 8 : 7);
        size_t auth = strcspn(host, "/?#");
        FUZZ_CHECK(auth > 0);
        for (size_t i = 0; i < auth; i++)
            FUZZ_CHECK((unsigned char)host[i] > ' ' && host[i] != 0x7f);
        static const char *const paths[] = {"v1/metrics", "v1/logs"};
        static const char *const methods[] = {
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        };
        size_t n = strlen(url);
        if (protocol == OTLP_GRPC) {
            size_t m = strlen(methods[signal]);
            FUZZ_CHECK(n > m && strcmp(url + n - m, methods[signal]) == 0);
            FUZZ_CHECK(strcspn(host, "/?#") == n - m - (size_t)(host - url));
        } else if (per) {
            FUZZ_CHECK(strcmp(url, per) == 0);
        } else {
            size_t m = strlen(paths[signal]);
            FUZZ_CHECK(n > m + 1 && strcmp(url + n - m, paths[signal]) == 0 && url[n - m - 1] == '/');
            const char *ep = generic ? generic : "http://localhost:4318";
            size_t e = strlen(ep);
            FUZZ_CHECK(strncmp(url, ep, e) == 0);
            FUZZ_CHECK(e == n - m || (e == n - m - 1 && ep[e - 1] != '/'));
        }
        check_printable(url, sel % 97);
        check_printable(url, 512);
    }
    check_printable(s, 512);
    if (per)
        check_printable(per, 64);
    free(url);
    free(s);
    return 0;
}
