/*
 * Escaping host- and file-supplied text for a terminal (see escape.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "escape.h"

/* Length of the valid UTF-8 character at s and its code point, or 0: not
 * a lead byte, a continuation missing (a NUL stops the scan: never read
 * past the string), overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_char(const unsigned char *s, unsigned *cp_out)
{
    unsigned c = s[0], cp, min;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
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

size_t esc_unit(const char *s, char out[ESC_UNIT_MAX])
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0], cp;
    if (c < 0x20 || c == 0x7f) {
        snprintf(out, ESC_UNIT_MAX, "\\x%02x", c);
        return 1;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        out[1] = 0;
        return 1;
    }
    size_t n = utf8_char(u, &cp);
    if (!n) {
        snprintf(out, ESC_UNIT_MAX, "\\x%02x", c);
        return 1;
    }
    if (cp <= 0x9f) {
        snprintf(out, ESC_UNIT_MAX, "\\u%04x", cp);
        return n;
    }
    memcpy(out, s, n);
    out[n] = 0;
    return n;
}

char *esc_cut(char *out, size_t size, const char *s)
{
    size_t len = 0;
    out[0] = 0;
    while (s && *s) {
        char unit[ESC_UNIT_MAX];
        size_t took = esc_unit(s, unit), k = strlen(unit);
        if (len + k >= size)
            break;
        memcpy(out + len, unit, k + 1);
        len += k;
        s += took;
    }
    return out;
}

const char *esc(const char *s)
{
    static char *slot[ESC_SLOTS];
    static size_t cap[ESC_SLOTS];
    static unsigned next;
    if (!s)
        return "";
    unsigned i = next++ % ESC_SLOTS;
    /* A byte escapes to at most four ("\x1b"); a C1 character's two bytes
     * to six. */
    size_t need = strlen(s) * 4 + 1;
    if (need > cap[i]) {
        char *p = realloc(slot[i], need);
        if (!p)
            return "(out of memory)";
        slot[i] = p;
        cap[i] = need;
    }
    return esc_cut(slot[i], need, s);
}
