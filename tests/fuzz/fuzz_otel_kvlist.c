/*
 * OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES
 * (exporter/otlp_config.c otlp_parse_kvlist, otlp_percent_decode).
 *
 * Checked: percent-decoding against an oracle (length, and a decoded NUL
 * or a bad escape refused); every pair parsed has a non-empty key, no key
 * twice, and no more pairs than '=' signs; the strict mode (resource
 * attributes) keeps nothing once anything is malformed; and the pairs,
 * percent-encoded again, parse back to themselves.
 *
 * Input: one byte (bit 0: strict), then the variable's value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "otlp_config.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    FUZZ_CHECK(out);
    int rc = otlp_percent_decode(s, n, out);
    int ok = 1;
    size_t w = 0;
    for (size_t i = 0; i < n && ok; i++, w++) {
        if (s[i] != '%')
            continue;
        ok = i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0 &&
             (hexval(s[i + 1]) | hexval(s[i + 2])) != 0;
        i += 2;
    }
    if (!ok) {
        FUZZ_CHECK(rc == -EINVAL);
    } else {
        FUZZ_CHECK(rc == 0 && out[w] == 0);
    }
    free(out);
}

/* k=v with everything but unreserved letters percent-encoded. */
static void encode(char *o, size_t *w, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            o[(*w)++] = (char)c;
        else
            *w += (size_t)sprintf(o + *w, "%%%02X", c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int strict = data[0] & 1;
    char *s = fuzz_strndup(data + 1, size - 1);
    check_decode(s, strlen(s));

    struct otlp_kvlist l = {0};
    int bad = -1;
    int rc = otlp_parse_kvlist(s, strict, &l, &bad);
    FUZZ_CHECK(rc == 0 || (strict && rc == -EINVAL));
    FUZZ_CHECK(bad >= 0);
    if (rc == -EINVAL)
        FUZZ_CHECK(bad > 0 && l.n == 0 && l.v == NULL);
    if (strict && rc == 0)
        FUZZ_CHECK(bad == 0);
    size_t eqs = 0;
    for (const char *p = s; *p; p++)
        eqs += *p == '=';
    FUZZ_CHECK(l.n <= eqs);

    size_t room = 1;
    for (size_t i = 0; i < l.n; i++) {
        FUZZ_CHECK(l.v[i].key && l.v[i].key[0] && l.v[i].value);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(l.v[i].key, l.v[j].key) != 0);
        FUZZ_CHECK(otlp_kvlist_get(&l, l.v[i].key) == l.v[i].value);
        room += (strlen(l.v[i].key) + strlen(l.v[i].value)) * 3 + 2;
    }
    char *again = malloc(room);
    FUZZ_CHECK(again);
    size_t w = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            again[w++] = ',';
        encode(again, &w, l.v[i].key);
        again[w++] = '=';
        encode(again, &w, l.v[i].value);
    }
    again[w] = 0;
    struct otlp_kvlist l2 = {0};
    FUZZ_CHECK(otlp_parse_kvlist(again, 1, &l2, &bad) == 0 && bad == 0 && l2.n == l.n);
    for (size_t i = 0; i < l.n; i++)
        FUZZ_CHECK(strcmp(l2.v[i].key, l.v[i].key) == 0 && strcmp(l2.v[i].value, l.v[i].value) == 0);
    otlp_kvlist_free(&l2);
    otlp_kvlist_free(&l);
    FUZZ_CHECK(l.n == 0 && l.v == NULL);
    free(again);
    free(s);
    return 0;
}
