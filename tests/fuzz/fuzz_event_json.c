/*
 * The elmon command's JSON reader (cli/json.c jv_parse), which reads every
 * line of an events file.
 *
 * Checked: it never reads past the line; a value it accepts is written
 * back out (numbers as %.17g, strings with libelmon's own escaping) and
 * read again to the same tree, strings byte for byte when they are valid
 * UTF-8; no string holds a NUL; nesting beyond 64 is refused.
 *
 * Input: one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "fuzz.h"
#include "json.h"

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = realloc(o->p, o->cap);
        FUZZ_CHECK(o->p);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void put_str(struct out *o, const char *s)
{
    size_t cap = strlen(s) * 6 + 3;
    char *mem = malloc(cap);
    FUZZ_CHECK(mem);
    struct elmon_buf b;
    elmon_buf_init(&b, mem, cap);
    elmon_buf_json_str(&b, s);
    FUZZ_CHECK(!b.truncated);
    put(o, b.p, b.len);
    free(mem);
}

static int depth_of(const struct jval *v)
{
    int d = 0;
    for (size_t i = 0; i < v->n; i++) {
        int k = depth_of(v->items[i]);
        d = k > d ? k : d;
    }
    return v->type == J_ARR || v->type == J_OBJ ? d + 1 : 0;
}

static void write_value(struct out *o, const struct jval *v)
{
    char num[64];
    switch (v->type) {
    case J_NULL: put(o, "null", 4); break;
    case J_TRUE: put(o, "true", 4); break;
    case J_FALSE: put(o, "false", 5); break;
    case J_NUM: put(o, num, (size_t)snprintf(num, sizeof num, "%.17g", v->num)); break;
    case J_STR: put_str(o, v->str); break;
    case J_ARR:
    case J_OBJ:
        put(o, v->type == J_ARR ? "[" : "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                put(o, ",", 1);
            if (v->type == J_OBJ) {
                put_str(o, v->keys[i]);
                put(o, ":", 1);
            }
            write_value(o, v->items[i]);
        }
        put(o, v->type == J_ARR ? "]" : "}", 1);
        break;
    }
}

static void same(const struct jval *a, const struct jval *b)
{
    FUZZ_CHECK(a->type == b->type && a->n == b->n);
    if (a->type == J_NUM)
        FUZZ_CHECK(a->num == b->num);
    if (a->type == J_STR && fuzz_utf8_valid(a->str, strlen(a->str)))
        FUZZ_CHECK(strcmp(a->str, b->str) == 0);
    for (size_t i = 0; i < a->n; i++) {
        if (a->type == J_OBJ && fuzz_utf8_valid(a->keys[i], strlen(a->keys[i])))
            FUZZ_CHECK(strcmp(a->keys[i], b->keys[i]) == 0);
        same(a->items[i], b->items[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: one byte read too far is an ASan report. */
    char *s = malloc(size ? size : 1);
    FUZZ_CHECK(s);
    memcpy(s, data, size);
    struct jval *v = jv_parse(s, size);
    if (v) {
        FUZZ_CHECK(depth_of(v) <= 65);
        struct out o = {0};
        write_value(&o, v);
        struct jval *w = jv_parse(o.p, o.len);
        FUZZ_CHECK(w);
        same(v, w);
        /* The accessors on whatever came out. */
        jv_str(v, "type", NULL);
        jv_num(v, "v", 0);
        jv_bool(v, "exited", 0);
        jv_free(w);
        free(o.p);
    }
    jv_free(v);
    free(s);
    return 0;
}
