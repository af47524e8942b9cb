/*
 * Bounded text buffers and JSON string escaping.  Any thread but the hot
 * path.
 */
#include <stdio.h>
#include <string.h>
#include "buf.h"

void elmon_buf_putn(struct elmon_buf *b, const char *s, size_t n)
{
    if (b->truncated)
        return;
    if (b->len + n + 1 > b->cap) {
        b->truncated = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void elmon_buf_puts(struct elmon_buf *b, const char *s)
{
    elmon_buf_putn(b, s, strlen(s));
}

void elmon_buf_printf(struct elmon_buf *b, const char *fmt, ...)
{
    if (b->truncated)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->truncated = 1;
        b->p[b->len] = 0;
        return;
    }
    b->len += (size_t)n;
}

size_t elmon_utf8_decode(const unsigned char *s, size_t avail, unsigned *cp_out)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) {
        *cp_out = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; }
    else return 0;
    if (n > avail)
        return 0;
    unsigned cp = c & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_out = cp;
    return n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned cp;
    return elmon_utf8_decode(s, avail, &cp);
}

void elmon_buf_json_strn(struct elmon_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    elmon_buf_putn(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            elmon_buf_putn(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': elmon_buf_putn(b, "\\n", 2); break;
            case '\r': elmon_buf_putn(b, "\\r", 2); break;
            case '\t': elmon_buf_putn(b, "\\t", 2); break;
            default: elmon_buf_printf(b, "\\u%04x", c); break;
            }
            i++;
        } else {
            size_t k = utf8_len(u + i, n - i);
            if (k == 0) {
                elmon_buf_puts(b, "\\ufffd");
                i++;
            } else {
                elmon_buf_putn(b, s + i, k);
                i += k;
            }
        }
    }
    elmon_buf_putn(b, "\"", 1);
}

void elmon_buf_json_str(struct elmon_buf *b, const char *s)
{
    if (!s) {
        elmon_buf_puts(b, "null");
        return;
    }
    elmon_buf_json_strn(b, s, strlen(s));
}

void elmon_buf_json_key(struct elmon_buf *b, const char *key)
{
    if (b->len && b->p[b->len - 1] != '{')
        elmon_buf_putn(b, ",", 1);
    elmon_buf_json_str(b, key);
    elmon_buf_putn(b, ":", 1);
}

void elmon_buf_quote_value(struct elmon_buf *b, const char *s, size_t max)
{
    elmon_buf_putn(b, "'", 1);
    size_t i;
    for (i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
            elmon_buf_putn(b, (const char *)&c, 1);
        else
            elmon_buf_printf(b, "\\x%02x", c);
    }
    if (s[i])
        elmon_buf_puts(b, "...");
    elmon_buf_putn(b, "'", 1);
}

uint32_t elmon_arena_put(struct elmon_arena *a, const char *s, size_t n)
{
    if (!s || !a->cap || n >= a->cap - a->len)
        return 0;
    uint32_t off = a->len;
    memcpy(a->p + off, s, n);
    a->p[off + n] = 0;
    a->len += (uint32_t)n + 1;
    return off;
}
