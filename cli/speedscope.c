/*
 * `elmon report --speedscope FILE` and `elmon run --speedscope FILE`: the
 * run in speedscope's file format (https://www.speedscope.app/, schema
 * file-format-schema.json; tests/fixtures holds the published copy the
 * tests validate against).
 *
 * One evented profile per loop thread that blocked, in milliseconds from
 * the run's first record; each span is its stack opened at the span's
 * start and closed at its end, outermost frame first (the folded stack's
 * frames after the process name: the frames of common/fold.c, so the
 * names are those of `--folded` and the HTML flame graph).  Spans of a
 * thread are in time order and never overlap: one that begins before the
 * previous one ended (a clock step between processes' records, a corrupt
 * file) is moved to that end, so the events always nest as the format
 * requires.
 *
 * Time and memory: the frames of each distinct stack are split and named
 * once (a table by stack pointer, sized by the set's distinct strings),
 * frame names once (a table by text); each thread's spans are ordered by
 * start (16 bytes a span of that thread, while it is written; no sort
 * when they already are) and their events written as they are walked: the
 * output, every span's frames opened and closed, is the only thing that
 * grows with the spans, and it goes to the stream, not to memory.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "json.h"
#include "version.h"

struct frames {             /* the frame numbers of one distinct stack */
    const char *stack;
    size_t *ids, n;
};

struct names {              /* frame name -> number */
    char **keys;
    size_t *ids, cap, n;
    char **list;            /* by number */
    size_t cap_list;
};

static uint64_t hash_text(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(ELMON_EXIT_FAILURE);
    }
    return p;
}

static size_t name_id(struct names *t, const char *s, size_t len)
{
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        char **keys = must(calloc(cap, sizeof *keys));
        size_t *ids = must(calloc(cap, sizeof *ids));
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->keys[i])
                continue;
            size_t k = hash_text(t->keys[i], strlen(t->keys[i])) & (cap - 1);
            while (keys[k])
                k = (k + 1) & (cap - 1);
            keys[k] = t->keys[i];
            ids[k] = t->ids[i];
        }
        free(t->keys);
        free(t->ids);
        t->keys = keys;
        t->ids = ids;
        t->cap = cap;
    }
    size_t k = hash_text(s, len) & (t->cap - 1);
    for (; t->keys[k]; k = (k + 1) & (t->cap - 1))
        if (strncmp(t->keys[k], s, len) == 0 && t->keys[k][len] == 0)
            return t->ids[k];
    if (t->n == t->cap_list) {
        t->cap_list = t->cap_list ? 2 * t->cap_list : 1024;
        t->list = must(realloc(t->list, t->cap_list * sizeof *t->list));
    }
    t->keys[k] = must(strndup(s, len));
    t->ids[k] = t->n;
    t->list[t->n] = t->keys[k];
    return t->n++;
}

/* The frames of a folded stack ("process;outer;...;inner"). */
static void split(struct frames *fr, struct names *names, const char *stack)
{
    fr->stack = stack;
    fr->n = 0;
    size_t cap = 8;
    fr->ids = must(malloc(cap * sizeof *fr->ids));
    const char *p = strchr(stack, ';');
    p = p ? p + 1 : stack + strlen(stack);
    while (*p) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (fr->n == cap) {
            cap *= 2;
            fr->ids = must(realloc(fr->ids, cap * sizeof *fr->ids));
        }
        fr->ids[fr->n++] = name_id(names, p, len);
        p += len + (e != NULL);
    }
    if (!fr->n)   /* no frame after the process: the span still shows */
        fr->ids[fr->n++] = name_id(names, "[not captured]", 14);
}

/* head, the frame number, ",\"at\":", then at (which ends the object). */
static void put_event(FILE *f, const char *head, size_t frame, const char *at)
{
    char buf[128], num[24];
    size_t n = strlen(head), k = sizeof num;
    memcpy(buf, head, n);
    do
        num[--k] = (char)('0' + frame % 10);
    while (frame /= 10);
    memcpy(buf + n, num + k, sizeof num - k);
    n += sizeof num - k;
    memcpy(buf + n, ",\"at\":", 6);
    n += 6;
    size_t a = strlen(at);
    memcpy(buf + n, at, a);
    fwrite_unlocked(buf, 1, n + a, f);
}

struct order {
    double start;
    size_t i;
};

static int by_start(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void summary_speedscope(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    uint64_t t0 = 0;
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        for (size_t j = 0; j < l->n_spans; j++)
            if (l->spans[j].start_unix_ns && (!t0 || l->spans[j].start_unix_ns < t0))
                t0 = l->spans[j].start_unix_ns;
    }
    /* Distinct stacks by pointer (interned, or the one literal): split
     * once; the table is sized by the distinct strings, not the spans. */
    size_t cap = 16;
    while (cap < 2 * (ev_distinct_strings(set) + 1) + 2)
        cap *= 2;
    struct frames *tab = must(calloc(cap, sizeof *tab));
    struct names names = {0};

    fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"elmon " ELMON_VERSION
          "\",\"name\":",
          f);
    if (si->command) {
        char name[512];
        size_t len = (size_t)snprintf(name, sizeof name, "elmon run:");
        for (int i = 0; si->command[i] && len < sizeof name; i++)
            len += (size_t)snprintf(name + len, sizeof name - len, " %s", si->command[i]);
        json_put_str(f, name);
    } else {
        json_put_str(f, "elmon report");
    }
    /* The profile shown first: the thread that blocked longest. */
    size_t active = 0, k = 0;
    double most = -1;
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        if (!l->n_spans)
            continue;
        double blocked = 0;
        for (size_t j = 0; j < l->n_spans; j++)
            blocked += l->spans[j].duration_ms;
        if (blocked > most) {
            most = blocked;
            active = k;
        }
        k++;
    }
    fprintf(f, ",\"activeProfileIndex\":%zu,\"profiles\":[", active);
    int first_profile = 1;
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        if (!l->n_spans)
            continue;
        struct order *ord = must(malloc(l->n_spans * sizeof *ord));
        int sorted = 1;
        for (size_t j = 0; j < l->n_spans; j++) {
            uint64_t s = l->spans[j].start_unix_ns;
            ord[j] = (struct order){s > t0 ? (double)(s - t0) / 1e6 : 0, j};
            sorted &= !j || by_start(&ord[j - 1], &ord[j]) < 0;
        }
        if (!sorted)   /* files are in time order: most loops need no sort */
            qsort(ord, l->n_spans, sizeof *ord, by_start);
        char name[200];
        snprintf(name, sizeof name, "%s %d / %s (%d)", l->process, l->pid, l->thread, l->tid);
        fprintf(f, "%s{\"type\":\"evented\",\"name\":", first_profile ? "" : ",");
        json_put_str(f, name);
        fputs(",\"unit\":\"milliseconds\",\"startValue\":0,\"events\":[", f);
        first_profile = 0;
        double last_end = 0;
        int first_event = 1;
        for (size_t j = 0; j < l->n_spans; j++) {
            const struct ev_span *sp = &l->spans[ord[j].i];
            const char *stack = sp->folded ? sp->folded : "?;[not captured]";
            uint64_t h = (uint64_t)(uintptr_t)stack * 0x9e3779b97f4a7c15ull;
            size_t at = (size_t)(h >> 20) & (cap - 1);
            while (tab[at].stack && tab[at].stack != stack)
                at = (at + 1) & (cap - 1);
            if (!tab[at].stack)
                split(&tab[at], &names, stack);
            const struct frames *fr = &tab[at];
            double start = ord[j].start < last_end ? last_end : ord[j].start;
            double end = start + sp->duration_ms;
            /* The two times formatted once for the span's 2n events, and
             * the events put together by hand: a printf per event was
             * most of the run on large sets. */
            char at_open[48], at_close[48];
            snprintf(at_open, sizeof at_open, "%.3f}", start);
            snprintf(at_close, sizeof at_close, "%.3f}", end);
            for (size_t m = 0; m < fr->n; m++) {
                if (!first_event)
                    putc_unlocked(',', f);
                first_event = 0;
                put_event(f, "{\"type\":\"O\",\"frame\":", fr->ids[m], at_open);
            }
            for (size_t m = fr->n; m-- > 0;) {
                putc_unlocked(',', f);
                put_event(f, "{\"type\":\"C\",\"frame\":", fr->ids[m], at_close);
            }
            last_end = end;
        }
        fprintf(f, "],\"endValue\":%.3f}", last_end);
        free(ord);
    }
    fputs("],\"shared\":{\"frames\":[", f);
    for (size_t i = 0; i < names.n; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        json_put_str(f, names.list[i]);
        fputc('}', f);
    }
    fputs("]}}\n", f);
    for (size_t i = 0; i < cap; i++)
        free(tab[i].ids);
    free(tab);
    for (size_t i = 0; i < names.cap; i++)
        free(names.keys[i]);
    free(names.keys);
    free(names.ids);
    free(names.list);
}
