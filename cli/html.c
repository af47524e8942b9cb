/*
 * `elmon report --html FILE` and `elmon run --html FILE`: one page that
 * shows where the loops blocked, when, and in which code.
 *
 * The page is self-contained: its styles and script (cli/page/report.css
 * and report.js, inlined at build time by cli/page/embed.cmake) and the
 * run's data, one JSON object in a <script type="application/json">
 * element that the script reads.  Nothing is fetched: a
 * Content-Security-Policy meta element forbids every request, so the page
 * works opened from disk, offline, and cannot call out.
 *
 * Host text (names, culprits, frames) goes only into that JSON, with '<',
 * '>' and '&' as \u escapes (json_put_str_html), so no string can end the
 * element; the script puts it into the page as text nodes and attribute
 * values, never as markup.
 *
 * Time: one pass over the spans, one over the distinct stacks, and a
 * selection (expected linear, equal lengths too) of the spans the page
 * lists when there are more than HTML_MAX_SPANS.  Memory beyond the set:
 * a string table with one slot per distinct string of the listed spans
 * and stacks, and one word per span while the selection runs.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "json.h"
#include "thresholds.h"
#include "version.h"

/* Assets of the page (page_assets.c, generated from cli/page/). */
extern const char elmon_page_css[];
extern const char elmon_page_js[];

/* The page lists (table and timeline) at most this many spans, the
 * longest; the flame graph and the counts cover every span. */
#define HTML_MAX_SPANS 20000

/* Interned strings of the set by pointer, numbered in the order met. */
struct strtab {
    const char **keys;
    size_t *idx;
    size_t cap, n;
    const char **list;
};

static int strtab_init(struct strtab *t, size_t n)
{
    t->cap = 16;
    while (t->cap < 2 * n + 2)
        t->cap *= 2;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->idx = calloc(t->cap, sizeof *t->idx);
    t->list = calloc(t->cap / 2, sizeof *t->list);
    t->n = 0;
    return t->keys && t->idx && t->list ? 0 : -1;
}

static void strtab_free(struct strtab *t)
{
    free(t->keys);
    free(t->idx);
    free(t->list);
}

/* The string's number, or -1 for NULL. */
static long strtab_id(struct strtab *t, const char *s)
{
    if (!s)
        return -1;
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9e3779b97f4a7c15ull;
    size_t k = (size_t)(h >> 20) & (t->cap - 1);
    while (t->keys[k] && t->keys[k] != s)
        k = (k + 1) & (t->cap - 1);
    if (!t->keys[k]) {
        t->keys[k] = s;
        t->idx[k] = t->n;
        t->list[t->n++] = s;
    }
    return (long)t->idx[k];
}

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* The k-th largest value of v[0..n) (k from 1), reordering v: quickselect
 * with a three-way partition, expected linear even when most values are
 * equal (spans of one length are common: a two-way partition on equal keys
 * took one step per element, n times k comparisons). */
static double kth_largest(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n, want = k - 1;   /* [lo, hi) holds the rank */
    unsigned long long seed = 0x2545f4914f6cdd1dull;
    while (hi - lo > 1) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        double pivot = v[lo + (size_t)(seed % (hi - lo))];
        /* [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot */
        size_t gt = lo, i = lo, lt = hi;
        while (i < lt) {
            if (v[i] > pivot)
                swap_d(&v[i++], &v[gt++]);
            else if (v[i] < pivot)
                swap_d(&v[i], &v[--lt]);
            else
                i++;
        }
        if (want < gt)
            hi = gt;
        else if (want >= lt)
            lo = lt;
        else
            return pivot;
    }
    return v[lo];
}

static const char *fail_on_name(int fail_on)
{
    return fail_on == 2 ? "critical" : fail_on == 1 ? "warning" : NULL;
}

static void num(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":%.6g", key, v);
}

static double rel_ms(uint64_t ns, uint64_t t0)
{
    return ns > t0 ? (double)(ns - t0) / 1e6 : 0;
}

/* The data the script draws (report.js reads exactly these members). */
static void page_data(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    size_t n_spans = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        n_spans += set->loops[i].n_spans;

    /* The time every offset counts from: the earliest loop or span. */
    uint64_t t0 = 0;
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        if (l->start_unix_ns && (!t0 || l->start_unix_ns < t0))
            t0 = l->start_unix_ns;
        for (size_t j = 0; j < l->n_spans; j++)
            if (l->spans[j].start_unix_ns && (!t0 || l->spans[j].start_unix_ns < t0))
                t0 = l->spans[j].start_unix_ns;
    }

    /* Which spans are listed: all, or the HTML_MAX_SPANS longest. */
    double cut = -1;
    size_t n_at_cut = 0;   /* spans of exactly the cut's duration still to take */
    if (n_spans > HTML_MAX_SPANS) {
        double *d = malloc(n_spans * sizeof *d);
        if (d) {
            size_t k = 0;
            for (size_t i = 0; i < set->n_loops; i++)
                for (size_t j = 0; j < set->loops[i].n_spans; j++)
                    d[k++] = set->loops[i].spans[j].duration_ms;
            cut = kth_largest(d, n_spans, HTML_MAX_SPANS);
            size_t above = 0;
            for (size_t i = 0; i < n_spans; i++)
                above += d[i] > cut;
            n_at_cut = HTML_MAX_SPANS - above;
            free(d);
        }
    }

    struct strtab st;
    size_t n_fold = 0;
    struct fold_sum *folds = summary_fold_sums(set, &n_fold);
    if (strtab_init(&st, 4 * (n_spans < HTML_MAX_SPANS ? n_spans : HTML_MAX_SPANS) + n_fold + 8) < 0) {
        strtab_free(&st);
        free(folds);
        fputs("null", f);
        return;
    }

    fprintf(f, "{\"v\":1,\"tool\":\"%s\",\"version\":\"%s\",\"generated_unix_s\":%lld,\"t0_unix_ns\":\"%llu\"",
            si->command ? "elmon run" : "elmon report", ELMON_VERSION, (long long)time(NULL),
            (unsigned long long)t0);
    fputs(",\"run\":", f);
    if (si->command) {
        fputs("{\"command\":[", f);
        for (int i = 0; si->command[i]; i++) {
            if (i)
                fputc(',', f);
            json_put_str_html(f, si->command[i]);
        }
        fprintf(f, "],\"exit_status\":%d,\"wall_s\":%.3f,\"events_dir\":", si->exit_status, si->wall_s);
        json_put_str_html(f, si->events_dir);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"budget\":{\"fail_over_ms\":", f);
    if (si->budget.fail_over_ms >= 0)
        fprintf(f, "%g", si->budget.fail_over_ms);
    else
        fputs("null", f);
    fputs(",\"fail_on\":", f);
    json_put_str(f, fail_on_name(si->budget.fail_on));
    fprintf(f, ",\"loops_over\":%zu}", summary_over_budget(set, &si->budget));
    fprintf(f, ",\"thresholds\":{\"warning_ms\":%g,\"critical_ms\":%g,\"from\":\"%s\"}",
            si->block_ms > 0 ? si->block_ms : ELMON_DEFAULT_BLOCK_MS,
            si->critical_ms > 0 ? si->critical_ms : ELMON_DEFAULT_CRITICAL_MS,
            si->block_ms > 0 ? "run" : "default");
    fprintf(f, ",\"files\":%zu,\"records\":%zu,\"skipped_malformed\":%zu,\"skipped_foreign\":%zu", set->n_files,
            set->n_records, set->n_malformed, set->n_foreign);
    fprintf(f, ",\"spans_total\":%zu,\"spans_listed\":%zu", n_spans,
            n_spans > HTML_MAX_SPANS && cut >= 0 ? (size_t)HTML_MAX_SPANS : n_spans);

    fputs(",\"loops\":[", f);
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        double w, c, blocked = 0;
        ev_loop_counts(l, &w, &c);
        for (size_t j = 0; j < l->n_spans; j++)
            blocked += l->spans[j].duration_ms;
        fprintf(f, "%s{\"pid\":%d,\"tid\":%d,\"process\":", i ? "," : "", l->pid, l->tid);
        json_put_str_html(f, l->process);
        fputs(",\"thread\":", f);
        json_put_str_html(f, l->thread);
        fputs(",\"poller\":", f);
        json_put_str_html(f, l->poller);
        fprintf(f, ",\"summary\":%s", l->has_summary ? "true" : "false");
        if (l->has_summary) {
            num(f, "turns", l->turns);
            num(f, "utilization", l->utilization);
            num(f, "p50_ms", l->lag_p50_ms);
            num(f, "p90_ms", l->lag_p90_ms);
            num(f, "p99_ms", l->lag_p99_ms);
            num(f, "max_ms", l->lag_max_ms);
            num(f, "dropped", l->spans_dropped);
            fputs(",\"status\":", f);
            json_put_str_html(f, l->status);
            num(f, "start_ms", rel_ms(l->start_unix_ns, t0));
            num(f, "end_ms", rel_ms(l->end_unix_ns, t0));
        }
        num(f, "block_ms", l->block_ms);
        num(f, "critical_ms", l->critical_ms);
        num(f, "warning", w);
        num(f, "critical", c);
        num(f, "blocked_ms", blocked);
        fprintf(f, ",\"over_budget\":%zu,\"hist\":[", ev_loop_over_budget(l, &si->budget, NULL));
        for (size_t j = 0; j < l->n_hist; j++)
            fprintf(f, "%s[%.6g,%llu]", j ? "," : "", (double)l->hist[j][0] / 1e6,
                    (unsigned long long)l->hist[j][1]);
        fputs("]}", f);
    }

    /* [loop, start_ms, duration_ms, lag_ms, critical, end, cause, culprit,
     *  stack, folded, turn, over_budget]; end: 0 at a wait, 1 at an exit,
     *  2 never ended. */
    fputs("],\"spans\":[", f);
    int first = 1;
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        for (size_t j = 0; j < l->n_spans; j++) {
            const struct ev_span *sp = &l->spans[j];
            if (cut >= 0) {
                if (sp->duration_ms < cut)
                    continue;
                if (sp->duration_ms == cut) {
                    if (!n_at_cut)
                        continue;
                    n_at_cut--;
                }
            }
            fprintf(f, "%s[%zu,%.3f,%.3f,%.3f,%d,%d,%ld,%ld,%ld,%ld,%llu,%d]", first ? "" : ",", i,
                    rel_ms(sp->start_unix_ns, t0), sp->duration_ms, sp->lag_ms, sp->critical,
                    sp->ongoing ? 2 : sp->at_exit ? 1 : 0, strtab_id(&st, sp->cause),
                    strtab_id(&st, sp->culprit), strtab_id(&st, sp->stack_text),
                    strtab_id(&st, sp->folded ? sp->folded : "?;[not captured]"), (unsigned long long)sp->turn,
                    ev_span_over_budget(sp, &si->budget) != 0);
            first = 0;
        }
    }
    /* Every distinct stack with its blocked ms: the flame graph. */
    fputs("],\"stacks\":[", f);
    for (size_t i = 0; i < n_fold; i++)
        fprintf(f, "%s[%ld,%ld]", i ? "," : "", strtab_id(&st, folds[i].stack), folds[i].weight);
    fputs("],\"strings\":[", f);
    for (size_t i = 0; i < st.n; i++) {
        if (i)
            fputc(',', f);
        json_put_str_html(f, st.list[i]);
    }
    fputs("]}", f);
    strtab_free(&st);
    free(folds);
}

void summary_html(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"elmon " ELMON_VERSION "\">\n"
          "<title>elmon report</title>\n<style>\n",
          f);
    fputs(elmon_page_css, f);
    fputs("</style>\n</head>\n<body>\n<noscript>This report draws itself with JavaScript; "
          "the same data is in `elmon report --json`.</noscript>\n"
          "<script type=\"application/json\" id=\"elmon-data\">",
          f);
    page_data(f, set, si);
    fputs("</script>\n<script>\n", f);
    fputs(elmon_page_js, f);
    fputs("</script>\n</body>\n</html>\n", f);
}
