/*
 * Structural checks of the --html page's data and the --speedscope file,
 * shared by test_cli_report (files from `elmon report`) and the fuzz target
 * fuzz_events_report (the same printers on fuzzed input).  Each returns
 * NULL when the output holds, else a static message naming what broke.
 * Header-only: both programs already build cli/json.c (jv_parse).
 *
 * Page (report_check_html): the data element is there, once, and what it
 * holds is one JSON object with no '<' at all (json_put_str_html escapes
 * '<', '>' and '&', so no string can end the element); every span row has
 * its 12 members, its loop index in range and its string indices -1 or in
 * range; every stack's string index in range; spans_listed is the rows'
 * count, at most spans_total.
 *
 * Speedscope (report_check_speedscope): one JSON object; every profile
 * evented, its events' "at" never going back, each "O" pushed and each "C"
 * closing the frame on top at or after its opening, nothing left open, no
 * event after endValue, every frame index in range of shared.frames.
 */
#ifndef ELMON_TESTS_REPORT_CHECK_H
#define ELMON_TESTS_REPORT_CHECK_H

#include <stdlib.h>
#include <string.h>
#include "json.h"

#define REPORT_DATA_OPEN "<script type=\"application/json\" id=\"elmon-data\">"

/* The page's data, parsed (the caller frees it), or NULL with *why set. */
static inline struct jval *report_html_data(const char *page, size_t len, const char **why)
{
    const char *end = page + len;
    const char *at = memmem(page, len, REPORT_DATA_OPEN, strlen(REPORT_DATA_OPEN));
    if (!at) {
        *why = "no elmon-data element";
        return NULL;
    }
    const char *data = at + strlen(REPORT_DATA_OPEN);
    if (memmem(data, (size_t)(end - data), REPORT_DATA_OPEN, strlen(REPORT_DATA_OPEN))) {
        *why = "two elmon-data elements";
        return NULL;
    }
    const char *close = memmem(data, (size_t)(end - data), "</script>", 9);
    if (!close) {
        *why = "the data element never ends";
        return NULL;
    }
    if (memchr(data, '<', (size_t)(close - data))) {
        *why = "a raw '<' inside the data element";
        return NULL;
    }
    struct jval *v = jv_parse(data, (size_t)(close - data));
    if (!v || v->type != J_OBJ) {
        jv_free(v);
        *why = "the data element is not one JSON object";
        return NULL;
    }
    return v;
}

static inline int report_index_ok(const struct jval *x, size_t n, int may_be_none)
{
    if (!x || x->type != J_NUM || x->num != (double)(long long)x->num)
        return 0;
    return (may_be_none && x->num == -1) || (x->num >= 0 && x->num < (double)n);
}

static inline const char *report_check_html_data(const struct jval *v)
{
    const struct jval *loops = jv_get(v, "loops"), *spans = jv_get(v, "spans"), *stacks = jv_get(v, "stacks"),
                      *strings = jv_get(v, "strings");
    if (!loops || loops->type != J_ARR || !spans || spans->type != J_ARR || !stacks || stacks->type != J_ARR ||
        !strings || strings->type != J_ARR)
        return "loops, spans, stacks or strings missing or not an array";
    for (size_t i = 0; i < strings->n; i++)
        if (strings->items[i]->type != J_STR)
            return "a member of strings is not a string";
    if (jv_num(v, "spans_listed", -1) != (double)spans->n)
        return "spans_listed is not the number of span rows";
    if (jv_num(v, "spans_total", -1) < (double)spans->n)
        return "more span rows than spans_total";
    for (size_t i = 0; i < spans->n; i++) {
        const struct jval *s = spans->items[i];
        if (s->type != J_ARR || s->n != 12)
            return "a span row is not an array of 12";
        if (!report_index_ok(s->items[0], loops->n, 0))
            return "a span's loop index out of range";
        for (int k = 6; k <= 9; k++)
            if (!report_index_ok(s->items[k], strings->n, k != 9))
                return "a span's string index out of range";
        if (s->items[5]->type != J_NUM || s->items[5]->num < 0 || s->items[5]->num > 2)
            return "a span's end is not 0, 1 or 2";
    }
    for (size_t i = 0; i < stacks->n; i++) {
        const struct jval *s = stacks->items[i];
        if (s->type != J_ARR || s->n != 2 || !report_index_ok(s->items[0], strings->n, 0) ||
            s->items[1]->type != J_NUM)
            return "a stack is not [string index in range, weight]";
    }
    return NULL;
}

static inline const char *report_check_html(const char *page, size_t len)
{
    const char *why = NULL;
    struct jval *v = report_html_data(page, len, &why);
    if (!v)
        return why;
    why = report_check_html_data(v);
    jv_free(v);
    return why;
}

static inline const char *report_check_speedscope_value(const struct jval *v, size_t *n_profiles)
{
    const struct jval *profiles = jv_get(v, "profiles"), *shared = jv_get(v, "shared");
    const struct jval *frames = jv_get(shared, "frames");
    if (!profiles || profiles->type != J_ARR || !frames || frames->type != J_ARR)
        return "profiles or shared.frames missing";
    for (size_t i = 0; i < frames->n; i++)
        if (jv_str(frames->items[i], "name", NULL) == NULL)
            return "a frame without a name";
    if (profiles->n && !report_index_ok(jv_get(v, "activeProfileIndex"), profiles->n, 0))
        return "activeProfileIndex out of range";
    const char *why = NULL;
    size_t cap = 64, depth = 0;
    size_t *open = malloc(cap * sizeof *open);
    double *opened = malloc(cap * sizeof *opened);
    for (size_t p = 0; p < profiles->n && !why; p++) {
        const struct jval *pr = profiles->items[p];
        const struct jval *ev = jv_get(pr, "events");
        if (strcmp(jv_str(pr, "type", ""), "evented") != 0 || !ev || ev->type != J_ARR) {
            why = "a profile not evented, or without events";
            break;
        }
        double last = jv_num(pr, "startValue", -1), endv = jv_num(pr, "endValue", -1);
        if (last < 0 || endv < last) {
            why = "a profile's startValue/endValue wrong";
            break;
        }
        depth = 0;
        for (size_t e = 0; e < ev->n && !why; e++) {
            const struct jval *x = ev->items[e];
            const char *type = jv_str(x, "type", "");
            double at = jv_num(x, "at", -1);
            if (!report_index_ok(jv_get(x, "frame"), frames->n, 0))
                why = "an event's frame index out of range";
            else if (at < last)
                why = "events not sorted by at";
            else if (at > endv)
                why = "an event after endValue";
            else if (strcmp(type, "O") == 0) {
                if (depth == cap) {
                    cap *= 2;
                    open = realloc(open, cap * sizeof *open);
                    opened = realloc(opened, cap * sizeof *opened);
                }
                opened[depth] = at;
                open[depth++] = (size_t)jv_num(x, "frame", 0);
            } else if (strcmp(type, "C") == 0) {
                if (!depth || open[depth - 1] != (size_t)jv_num(x, "frame", 0) || at < opened[depth - 1])
                    why = "a C that closes no O of its frame before it";
                else
                    depth--;
            } else {
                why = "an event neither O nor C";
            }
            last = at;
        }
        if (!why && depth)
            why = "a frame opened and never closed";
    }
    free(open);
    free(opened);
    if (n_profiles)
        *n_profiles = profiles->n;
    return why;
}

static inline const char *report_check_speedscope(const char *text, size_t len, size_t *n_profiles)
{
    struct jval *v = jv_parse(text, len);
    if (!v || v->type != J_OBJ) {
        jv_free(v);
        return "not one JSON object";
    }
    const char *why = report_check_speedscope_value(v, n_profiles);
    jv_free(v);
    return why;
}

#endif
