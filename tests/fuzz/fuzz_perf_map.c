/*
 * JIT perf maps, /tmp/perf-PID.map, which any process of the user can
 * write (preload/symbolize.c jit_read, jit_lookup).
 *
 * Checked: the table is exactly the file's lines that parse, each name the
 * rest of its line without the newline, cut to 1023 bytes (the rest of a
 * longer line is no line of its own); a
 * lookup only ever answers with a symbol that contains the address; and
 * when the symbols do not overlap, each one is found at its start and its
 * last byte under its own name.
 *
 * Input: the file.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "symbolize.h"
#include "fuzz.h"

struct want {
    uintptr_t start, end;
    char name[1024];
};

static int by_start(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int by_all(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void check_hit(uintptr_t addr)
{
    const struct jit_sym *j = jit_lookup(addr);
    if (j) {
        FUZZ_CHECK(j->start <= addr && addr < j->end && j->name);
        FUZZ_CHECK(strlen(j->name) < 1024 && !strchr(j->name, '\n'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    FUZZ_CHECK(f);
    jit_read(f);
    fclose(f);

    /* The same lines, split in memory the documented way, for the oracle:
     * each line without its newline, cut to its first 1023 bytes. */
    size_t n = 0, cap = 64;
    struct want *w = malloc(cap * sizeof *w);
    FUZZ_CHECK(w);
    for (size_t at = 0; at < size;) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        char line[1024];
        size_t keep = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, data + at, keep);
        line[keep] = 0;
        at += len + 1;
        unsigned long start, sz;
        int off = 0;
        if (sscanf(line, "%lx %lx %n", &start, &sz, &off) < 2 || !off)
            continue;
        if (n == cap) {
            cap *= 2;
            w = realloc(w, cap * sizeof *w);
            FUZZ_CHECK(w);
        }
        w[n].start = start;
        w[n].end = start + sz;
        snprintf(w[n].name, sizeof w[n].name, "%s", line + off);
        n++;
    }
    /* The table holds exactly the oracle's symbols: none missing, and
     * none made up (the tail of a long line once was one). */
    size_t nt;
    const struct jit_sym *t = jit_table(&nt);
    FUZZ_CHECK(nt == n);
    struct want *got = malloc((nt ? nt : 1) * sizeof *got);
    FUZZ_CHECK(got);
    for (size_t i = 0; i < nt; i++) {
        got[i].start = t[i].start;
        got[i].end = t[i].end;
        snprintf(got[i].name, sizeof got[i].name, "%s", t[i].name);
    }
    qsort(got, nt, sizeof *got, by_all);
    qsort(w, n, sizeof *w, by_all);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(got[i].start == w[i].start && got[i].end == w[i].end && strcmp(got[i].name, w[i].name) == 0);
    free(got);
    qsort(w, n, sizeof *w, by_start);
    int disjoint = 1;
    for (size_t i = 0; i < n; i++) {
        disjoint &= w[i].start < w[i].end && (i == 0 || w[i - 1].end <= w[i].start);
        check_hit(w[i].start);
        check_hit(w[i].end - 1);
        check_hit(w[i].end);
        check_hit(w[i].start + (w[i].end - w[i].start) / 2);
    }
    if (disjoint) {
        for (size_t i = 0; i < n; i++) {
            const struct jit_sym *j = jit_lookup(w[i].start);
            FUZZ_CHECK(j && j->start == w[i].start && strcmp(j->name, w[i].name) == 0);
            j = jit_lookup(w[i].end - 1);
            FUZZ_CHECK(j && j->start == w[i].start);
        }
    }
    free(w);
    return 0;
}
