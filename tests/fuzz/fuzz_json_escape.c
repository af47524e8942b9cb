/*
 * JSON string escaping and the quoting of values in warnings
 * (preload/buf.c), which carry outside bytes (thread names, paths, frame
 * names, environment values) into events files and logs.
 *
 * Checked: the buffer never overflows and stays NUL-terminated; a record
 * that does not fit is cut, flagged, and a prefix of the whole one; a
 * whole record is valid UTF-8 with no raw control character, and reading
 * it back with the elmon command's parser (cli/json.c) gives the input
 * with each byte that is not valid UTF-8 (and each NUL) as U+FFFD, judged
 * by an independent validator.  A quoted value is printable ASCII that
 * decodes back to the input's first max bytes, "..." exactly when cut.
 *
 * Input: one byte choosing the buffer size and quote limit, then the
 * string.
 */
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "fuzz.h"
#include "json.h"

static void check_json(const char *s, size_t n, unsigned sel)
{
    size_t big = n * 6 + 3;
    char *full = malloc(big), *small = NULL;
    FUZZ_CHECK(full);
    struct elmon_buf b;
    elmon_buf_init(&b, full, big);
    elmon_buf_json_strn(&b, s, n);
    FUZZ_CHECK(!b.truncated && b.len < big && full[b.len] == 0 && strlen(full) == b.len);
    FUZZ_CHECK(b.len >= 2 && full[0] == '"' && full[b.len - 1] == '"');
    FUZZ_CHECK(fuzz_utf8_valid(full, b.len));
    for (size_t i = 0; i < b.len; i++)
        FUZZ_CHECK((unsigned char)full[i] >= 0x20 && full[i] != 0x7f);

    /* The expected decoding. */
    char *want = malloc(n * 3 + 1);
    FUZZ_CHECK(want);
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = fuzz_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k || s[i] == 0) {
            memcpy(want + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        } else {
            memcpy(want + w, s + i, k);
            w += k;
            i += k;
        }
    }
    want[w] = 0;
    struct jval *v = jv_parse(full, b.len);
    FUZZ_CHECK(v && v->type == J_STR);
    FUZZ_CHECK(strlen(v->str) == w && memcmp(v->str, want, w) == 0);
    jv_free(v);

    /* A buffer too small: cut, flagged, a prefix, still terminated. */
    size_t cap = sel % 64;
    small = malloc(cap ? cap : 1);
    FUZZ_CHECK(small);
    elmon_buf_init(&b, small, cap);
    elmon_buf_json_strn(&b, s, n);
    if (cap) {
        FUZZ_CHECK(b.len < cap && small[b.len] == 0);
        FUZZ_CHECK(memcmp(small, full, b.len) == 0);
        FUZZ_CHECK(b.truncated == (strlen(full) + 1 > cap));
    }
    free(small);
    free(full);
    free(want);
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_quote(const char *s, size_t max)
{
    size_t n = strlen(s);
    size_t cap = (n < max ? n : max) * 4 + 8;
    char *mem = malloc(cap);
    FUZZ_CHECK(mem);
    struct elmon_buf b;
    elmon_buf_init(&b, mem, cap);
    elmon_buf_quote_value(&b, s, max);
    FUZZ_CHECK(!b.truncated && mem[b.len] == 0);
    for (size_t i = 0; i < b.len; i++)
        FUZZ_CHECK(mem[i] >= 0x20 && mem[i] < 0x7f);
    int cut = n > max;
    FUZZ_CHECK(b.len >= (cut ? 5u : 2u) && mem[0] == '\'' && mem[b.len - 1] == '\'');
    size_t end = b.len - 1 - (cut ? 3 : 0);
    FUZZ_CHECK(!cut || memcmp(mem + end, "...", 3) == 0);
    size_t k = 0;
    for (size_t i = 1; i < end; k++) {
        if (mem[i] == '\\') {
            FUZZ_CHECK(i + 3 < b.len && mem[i + 1] == 'x');
            int hi = unhex(mem[i + 2]), lo = unhex(mem[i + 3]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            FUZZ_CHECK(k < n && (unsigned char)s[k] == (unsigned)(hi * 16 + lo));
            i += 4;
        } else {
            FUZZ_CHECK(mem[i] != '\'' && k < n && s[k] == mem[i]);
            i++;
        }
    }
    FUZZ_CHECK(k == (cut ? max : n));
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    /* An exact-size copy, so reading one byte too far is caught. */
    char *s = malloc(size - 1 ? size - 1 : 1);
    FUZZ_CHECK(s);
    memcpy(s, data + 1, size - 1);
    check_json(s, size - 1, sel);
    free(s);

    char *z = fuzz_strndup(data + 1, size - 1);
    check_quote(z, (sel * 7) % 300);
    struct elmon_buf b;
    char mem[64];
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_json_str(&b, NULL);
    FUZZ_CHECK(strcmp(mem, "null") == 0);
    free(z);
    return 0;
}
