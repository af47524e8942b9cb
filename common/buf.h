/*
 * A bounded text buffer for building log lines and JSON records without
 * malloc.  Once full it stays full and says so (truncated), so a caller
 * drops the record instead of writing half a line.
 */
#ifndef ELMON_BUF_H
#define ELMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct elmon_buf {
    char *p;
    size_t len, cap;
    int truncated;
};

static inline void elmon_buf_init(struct elmon_buf *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->truncated = 0;
    if (cap)
        mem[0] = 0;
}

void elmon_buf_putn(struct elmon_buf *b, const char *s, size_t n);
void elmon_buf_puts(struct elmon_buf *b, const char *s);
void elmon_buf_printf(struct elmon_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included: control characters as \u00XX,
 * each byte that is not part of valid UTF-8 as U+FFFD. */
void elmon_buf_json_str(struct elmon_buf *b, const char *s);
void elmon_buf_json_strn(struct elmon_buf *b, const char *s, size_t n);
/* "key": prefix with a comma when the object already has members. */
void elmon_buf_json_key(struct elmon_buf *b, const char *key);
/* Printable form of an outside value for a warning: at most max bytes,
 * anything unprintable as \xNN, "..." when cut. */
void elmon_buf_quote_value(struct elmon_buf *b, const char *s, size_t max);

/* Strings copied one after another into fixed memory, NUL-terminated:
 * the capture's Python frames, the span report's text.  Offset 0 is kept
 * empty, so that 0 can stand for "none" in a flat structure. */
struct elmon_arena {
    char *p;
    uint32_t len, cap;
};

static inline void elmon_arena_init(struct elmon_arena *a, char *mem, uint32_t cap)
{
    a->p = mem;
    a->cap = cap;
    a->len = cap ? 1 : 0;
    if (cap)
        mem[0] = 0;
}

/* The offset of a copy of s[0..n) (NUL added); 0 when s is NULL or the
 * arena is full. */
uint32_t elmon_arena_put(struct elmon_arena *a, const char *s, size_t n);

/* The valid UTF-8 character at s (at most avail bytes; a NUL ends the
 * scan as a missing continuation): its length 1..4 and code point, or 0
 * for a bad lead byte, a missing continuation, an overlong form, a
 * surrogate or anything beyond U+10FFFF. */
size_t elmon_utf8_decode(const unsigned char *s, size_t avail, unsigned *cp_out);

#endif
