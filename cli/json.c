/*
 * JSON reading and string writing for the elmon command, and escaping for
 * a terminal (see json.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include "buf.h"
#include "json.h"

#define MAX_DEPTH 64

/* Every value, key, string and member array of one document comes from
 * one arena, freed at once by jv_free: a record of 20 frames is some 500
 * small objects, and a malloc and free of each was most of a report's
 * time.  Chunks double from 16 KB; a member array that grows is copied
 * and its old copy left in the chunk (at most as much again). */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct jdoc {
    struct chunk *chunks;
    struct jval root;
};

struct parser {
    const char *p, *end;
    struct jdoc *doc;
};

static void *alloc(struct parser *ps, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct chunk *c = ps->doc->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? 2 * c->cap : 16384;
        while (cap < n)
            cap *= 2;
        struct chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->next = c, nc->used = 0, nc->cap = cap;
        ps->doc->chunks = c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int literal(struct parser *ps, const char *word)
{
    size_t k = strlen(word);
    if ((size_t)(ps->end - ps->p) < k || memcmp(ps->p, word, k) != 0)
        return -1;
    ps->p += k;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The string starting at the opening quote; malloc'd, or NULL. */
static char *parse_string(struct parser *ps)
{
    if (ps->p >= ps->end || *ps->p != '"')
        return NULL;
    ps->p++;
    /* Unescaping never makes a string longer than its literal. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"')
        q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end)
        return NULL;
    char *out = alloc(ps, (size_t)(q - ps->p) + 1), *o = out;
    if (!out)
        return NULL;
    while (ps->p < q) {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20)
            goto bad;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (q - ps->p < 4 || hex4(ps->p, &cp) < 0)
                goto bad;
            ps->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && q - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' &&
                hex4(ps->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                ps->p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            /* \u0000 would end the C string early; it never names a frame. */
            o += utf8_put(o, cp ? cp : 0xfffd);
            break;
        }
        default:
            goto bad;
        }
    }
    *o = 0;
    ps->p = q + 1;
    return out;
bad:
    return NULL;
}

static struct jval *parse_value(struct parser *ps, int depth);

static int add_item(struct parser *ps, struct jval *v, char *key, struct jval *item)
{
    if (v->n >= 4 && (v->n & (v->n - 1)) == 0) {   /* grow at powers of two */
        size_t cap = v->n * 2;
        struct jval **items = alloc(ps, cap * sizeof *items);
        if (!items)
            return -1;
        memcpy(items, v->items, v->n * sizeof *items);
        v->items = items;
        if (v->type == J_OBJ) {
            char **keys = alloc(ps, cap * sizeof *keys);
            if (!keys)
                return -1;
            memcpy(keys, v->keys, v->n * sizeof *keys);
            v->keys = keys;
        }
    } else if (v->n == 0) {
        if (!(v->items = alloc(ps, 4 * sizeof *v->items)))
            return -1;
        if (v->type == J_OBJ && !(v->keys = alloc(ps, 4 * sizeof *v->keys)))
            return -1;
    }
    if (v->type == J_OBJ)
        v->keys[v->n] = key;
    v->items[v->n++] = item;
    return 0;
}

static struct jval *parse_container(struct parser *ps, struct jval *v, int depth)
{
    char close = v->type == J_OBJ ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        if (v->type == J_OBJ) {
            skip_ws(ps);
            key = parse_string(ps);
            skip_ws(ps);
            if (!key || ps->p >= ps->end || *ps->p != ':')
                goto bad;
            ps->p++;
        }
        struct jval *item = parse_value(ps, depth + 1);
        if (!item || add_item(ps, v, key, item) < 0)
            goto bad;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return v;
        }
        goto bad;
    }
bad:
    return NULL;   /* the arena holds what was made */
}

static struct jval *parse_number(struct parser *ps, struct jval *v)
{
    const char *s = ps->p;
    if (s < ps->end && *s == '-')
        s++;
    if (s >= ps->end || *s < '0' || *s > '9')
        goto bad;
    while (s < ps->end && ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' ||
                           *s == '+' || *s == '-'))
        s++;
    char tmp[64];
    size_t k = (size_t)(s - ps->p);
    if (k >= sizeof tmp)
        goto bad;
    memcpy(tmp, ps->p, k);
    tmp[k] = 0;
    char *endp;
    v->num = strtod(tmp, &endp);
    if (*endp || !isfinite(v->num))
        goto bad;
    ps->p = s;
    return v;
bad:
    return NULL;
}

static struct jval *parse_value(struct parser *ps, int depth)
{
    if (depth > MAX_DEPTH)
        return NULL;
    skip_ws(ps);
    if (ps->p >= ps->end)
        return NULL;
    struct jval *v = depth ? alloc(ps, sizeof *v) : &ps->doc->root;
    if (!v)
        return NULL;
    memset(v, 0, sizeof *v);
    switch (*ps->p) {
    case '{':
        v->type = J_OBJ;
        return parse_container(ps, v, depth);
    case '[':
        v->type = J_ARR;
        return parse_container(ps, v, depth);
    case '"':
        v->type = J_STR;
        v->str = parse_string(ps);
        return v->str ? v : NULL;
    case 't':
        v->type = J_TRUE;
        break;
    case 'f':
        v->type = J_FALSE;
        break;
    case 'n':
        v->type = J_NULL;
        break;
    default:
        v->type = J_NUM;
        return parse_number(ps, v);
    }
    static const char *const words[] = {[J_TRUE] = "true", [J_FALSE] = "false", [J_NULL] = "null"};
    return literal(ps, words[v->type]) < 0 ? NULL : v;
}

static void doc_free(struct jdoc *d)
{
    for (struct chunk *c = d->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(d);
}

struct jval *jv_parse(const char *s, size_t n)
{
    struct jdoc *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    struct parser ps = {s, s + n, d};
    struct jval *v = parse_value(&ps, 0);
    skip_ws(&ps);
    if (!v || ps.p != ps.end) {
        doc_free(d);
        return NULL;
    }
    return v;
}

void jv_free(struct jval *v)
{
    if (v)
        doc_free((struct jdoc *)((char *)v - offsetof(struct jdoc, root)));
}

const struct jval *jv_get(const struct jval *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    /* The first byte first: most keys differ there, and a report looks up
     * a dozen keys in each of hundreds of thousands of records. */
    for (size_t i = 0; i < o->n; i++)
        if (o->keys[i][0] == key[0] && strcmp(o->keys[i], key) == 0)
            return o->items[i];
    return NULL;
}

const char *jv_str(const struct jval *o, const char *key, const char *def)
{
    const struct jval *v = jv_get(o, key);
    return v && v->type == J_STR ? v->str : def;
}

double jv_num(const struct jval *o, const char *key, double def)
{
    const struct jval *v = jv_get(o, key);
    return v && v->type == J_NUM ? v->num : def;
}

int jv_bool(const struct jval *o, const char *key, int def)
{
    const struct jval *v = jv_get(o, key);
    return v && (v->type == J_TRUE || v->type == J_FALSE) ? v->type == J_TRUE : def;
}

static void put_str(FILE *f, const char *s, int in_html)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    /* Escaping grows a byte to at most six ("\u00XX", or "\ufffd"). */
    size_t cap = strlen(s) * 6 + 3;
    char *mem = malloc(cap);
    if (!mem) {
        fputs("null", f);
        return;
    }
    struct elmon_buf b;
    elmon_buf_init(&b, mem, cap);
    elmon_buf_json_str(&b, s);
    /* The shared writer escapes C0 and DEL; C1 controls (U+0080-U+009F)
     * are valid JSON raw, yet some terminals act on them (U+009B is CSI)
     * when the output is only looked at: escaped here too.  The writer's
     * output is valid UTF-8, so a 0xc2 byte always leads a character. */
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        if (c == 0xc2 && i + 1 < b.len && (unsigned char)b.p[i + 1] <= 0x9f) {
            fprintf(f, "\\u%04x", (unsigned char)b.p[i + 1]);
            i++;
        } else if (in_html && (c == '<' || c == '>' || c == '&')) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    free(mem);
}

void json_put_str(FILE *f, const char *s)
{
    put_str(f, s, 0);
}

void json_put_str_html(FILE *f, const char *s)
{
    put_str(f, s, 1);
}

/* Escaping for a terminal (json.h). */


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
    size_t n = elmon_utf8_decode(u, 4, &cp);   /* a NUL stops it: never past the string */
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
