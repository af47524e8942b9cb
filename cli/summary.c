/*
 * The summary of a set of events, as text, JSON, JUnit XML and folded
 * stacks.  Shared by `elmon run` and `elmon report`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "fold.h"
#include "json.h"

#define TOP_CULPRITS 10
#define WORST_SPANS 5

static const char *fail_on_name(int fail_on)
{
    return fail_on == 2 ? "critical" : fail_on == 1 ? "warning" : NULL;
}

static int has_budget(const struct ev_budget *b)
{
    return b->fail_over_ms >= 0 || b->fail_on;
}

size_t summary_over_budget(const struct ev_set *set, const struct ev_budget *b)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        n += ev_loop_over_budget(&set->loops[i], b, NULL) > 0;
    return n;
}

/* Indices of a loop's longest spans, longest first; returns how many. */
static size_t worst_spans(const struct ev_loop *l, size_t *idx, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_spans; i++) {
        size_t at = n < max ? n++ : max;
        if (at == max) {
            if (l->spans[i].duration_ms <= l->spans[idx[max - 1]].duration_ms)
                continue;
            at = max - 1;
        }
        while (at > 0 && l->spans[idx[at - 1]].duration_ms < l->spans[i].duration_ms) {
            idx[at] = idx[at - 1];
            at--;
        }
        idx[at] = i;
    }
    return n;
}

static void budget_text(char *out, size_t n, const struct ev_budget *b)
{
    if (b->fail_over_ms >= 0 && b->fail_on)
        snprintf(out, n, "spans over %g ms or of severity %s", b->fail_over_ms, fail_on_name(b->fail_on));
    else if (b->fail_over_ms >= 0)
        snprintf(out, n, "spans over %g ms", b->fail_over_ms);
    else
        snprintf(out, n, "spans of severity %s or worse", fail_on_name(b->fail_on));
}

void summary_text(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    size_t n_pids = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        n_pids += i == 0 || set->loops[i].pid != set->loops[i - 1].pid;
    fprintf(f, "elmon: %zu process%s, %zu loop thread%s", n_pids, n_pids == 1 ? "" : "es",
            set->n_loops, set->n_loops == 1 ? "" : "s");
    if (si->events_dir)
        fprintf(f, "; events in %s", esc(si->events_dir));
    fputc('\n', f);
    if (!set->n_loops) {
        fprintf(f, "  (no event loop ran: nothing called epoll_wait, poll or select as a loop)\n");
        return;
    }
    int budget = has_budget(&si->budget);
    fprintf(f, "%-16s %7s  %-22s %9s %6s %8s %8s %8s %5s %5s  %s\n", "PROCESS", "PID", "THREAD (TID)",
            "TURNS", "UTIL", "P50 ms", "P99 ms", "MAX ms", "WARN", "CRIT", budget ? "BUDGET" : "STATUS");
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        /* Names and the status come from the files: escaped, and cut to
         * their columns on whole escapes and characters, the name before
         * its tid so that the tid stays in the 22 columns. */
        char thread[48], name[24], process[17], status[64], tid[16];
        int k = snprintf(tid, sizeof tid, " (%d)", l->tid);
        esc_cut(name, k < 22 ? (size_t)(22 - k + 1) : 1, l->thread);
        snprintf(thread, sizeof thread, "%s%s", name, tid);
        esc_cut(process, sizeof process, l->process);
        double w, c;
        ev_loop_counts(l, &w, &c);
        const char *verdict = l->has_summary ? esc_cut(status, sizeof status, l->status) : "no summary";
        if (budget)
            verdict = ev_loop_over_budget(l, &si->budget, NULL) ? "FAILED" : "ok";
        if (l->has_summary)
            fprintf(f, "%-16s %7d  %-22s %9.0f %5.1f%% %8.2f %8.2f %8.2f %5.0f %5.0f  %s\n", process,
                    l->pid, thread, l->turns, 100.0 * l->utilization, l->lag_p50_ms, l->lag_p99_ms,
                    l->lag_max_ms, w, c, verdict);
        else
            fprintf(f, "%-16s %7d  %-22s %9s %6s %8s %8s %8s %5.0f %5.0f  %s\n", process, l->pid,
                    thread, "-", "-", "-", "-", "-", w, c, verdict);
    }
    int any_unfinished = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        any_unfinished |= !set->loops[i].has_summary;
    if (any_unfinished)
        fprintf(f, "  (\"-\": the process left no summary; it was killed or is still running)\n");

    if (set->n_culprits) {
        fprintf(f, "\nTop culprits by total blocked time:\n");
        fprintf(f, "  %5s %10s %9s  %s\n", "COUNT", "TOTAL ms", "MAX ms", "CULPRIT");
        for (size_t i = 0; i < set->n_culprits && i < TOP_CULPRITS; i++) {
            const struct ev_culprit *cu = &set->culprits[i];
            fprintf(f, "  %5zu %10.1f %9.1f  %s\n", cu->count, cu->total_ms, cu->max_ms, esc(cu->name));
        }
    }
    if (budget) {
        char what[128];
        budget_text(what, sizeof what, &si->budget);
        size_t n_loops = summary_over_budget(set, &si->budget);
        if (n_loops)
            fprintf(f, "\nelmon: over budget: %s in %zu loop thread%s\n", what, n_loops,
                    n_loops == 1 ? "" : "s");
        else
            fprintf(f, "\nelmon: within budget (no %s)\n", what);
    }
}

static void json_num_field(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":%.6g", key, v);
}

void summary_json(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    fprintf(f, "{\"v\":1");
    if (si->command) {
        fputs(",\"command\":[", f);
        for (int i = 0; si->command[i]; i++) {
            if (i)
                fputc(',', f);
            json_put_str(f, si->command[i]);
        }
        fprintf(f, "],\"exit_status\":%d,\"wall_s\":%.3f,\"events_dir\":", si->exit_status, si->wall_s);
        json_put_str(f, si->events_dir);
    }
    fputs(",\"budget\":{\"fail_over_ms\":", f);
    if (si->budget.fail_over_ms >= 0)
        fprintf(f, "%g", si->budget.fail_over_ms);
    else
        fputs("null", f);
    fputs(",\"fail_on\":", f);
    json_put_str(f, fail_on_name(si->budget.fail_on));
    fprintf(f, "},\"over_budget\":%s", summary_over_budget(set, &si->budget) ? "true" : "false");
    fprintf(f, ",\"files\":%zu,\"records\":%zu,\"skipped_malformed\":%zu,\"skipped_foreign\":%zu",
            set->n_files, set->n_records, set->n_malformed, set->n_foreign);
    fputs(",\"loops\":[", f);
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        double w, c, worst;
        ev_loop_counts(l, &w, &c);
        size_t over = ev_loop_over_budget(l, &si->budget, &worst);
        fprintf(f, "%s{\"process\":", i ? "," : "");
        json_put_str(f, l->process);
        fprintf(f, ",\"pid\":%d,\"tid\":%d,\"thread\":", l->pid, l->tid);
        json_put_str(f, l->thread);
        fputs(",\"poller\":", f);
        json_put_str(f, l->poller);
        fprintf(f, ",\"summary\":%s", l->has_summary ? "true" : "false");
        if (l->has_summary) {
            json_num_field(f, "turns", l->turns);
            json_num_field(f, "utilization", l->utilization);
            json_num_field(f, "lag_p50_ms", l->lag_p50_ms);
            json_num_field(f, "lag_p90_ms", l->lag_p90_ms);
            json_num_field(f, "lag_p99_ms", l->lag_p99_ms);
            json_num_field(f, "lag_max_ms", l->lag_max_ms);
            fputs(",\"status\":", f);
            json_put_str(f, l->status);
        }
        json_num_field(f, "blocks_warning", w);
        json_num_field(f, "blocks_critical", c);
        fprintf(f, ",\"spans_over_budget\":%zu,\"worst_spans\":[", over);
        size_t idx[WORST_SPANS];
        size_t n = worst_spans(l, idx, WORST_SPANS);
        for (size_t k = 0; k < n; k++) {
            const struct ev_span *sp = &l->spans[idx[k]];
            fprintf(f, "%s{\"turn\":%llu,\"start_unix_ns\":%llu,\"duration_ms\":%.3f,\"lag_ms\":%.3f,\"severity\":\"%s\",\"ongoing\":%s,\"culprit\":",
                    k ? "," : "", (unsigned long long)sp->turn, (unsigned long long)sp->start_unix_ns,
                    sp->duration_ms, sp->lag_ms, sp->critical ? "critical" : "warning",
                    sp->ongoing ? "true" : "false");
            json_put_str(f, sp->culprit);
            fputc('}', f);
        }
        fputs("]}", f);
    }
    fputs("],\"culprits\":[", f);
    for (size_t i = 0; i < set->n_culprits; i++) {
        const struct ev_culprit *cu = &set->culprits[i];
        fprintf(f, "%s{\"culprit\":", i ? "," : "");
        json_put_str(f, cu->name);
        fprintf(f, ",\"count\":%zu,\"total_ms\":%.3f,\"max_ms\":%.3f}", cu->count, cu->total_ms, cu->max_ms);
    }
    fputs("]}\n", f);
}

/* Text for an XML attribute or element: XML-escaped, and host text
 * escaped as for a terminal (json.h), since `--junit -` may be one and
 * XML 1.0 cannot carry most C0 controls nor invalid UTF-8 at all.  Newline
 * and tab stay: the failure text is one frame per line. */
static void xml_put(FILE *f, const char *s)
{
    while (s && *s) {
        char unit[ESC_UNIT_MAX];
        if (*s == '\n' || *s == '\t') {
            unit[0] = *s++;
            unit[1] = 0;
        } else {
            s += esc_unit(s, unit);
        }
        switch (unit[1] ? 0 : unit[0]) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputs(unit, f);
        }
    }
}

void summary_junit(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    char name[512] = "elmon report";
    if (si->command) {
        size_t len = (size_t)snprintf(name, sizeof name, "elmon run:");
        for (int i = 0; si->command[i] && len < sizeof name; i++)
            len += (size_t)snprintf(name + len, sizeof name - len, " %s", si->command[i]);
    }
    size_t failures = summary_over_budget(set, &si->budget);
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", gmtime(&now));
    char what[128] = "";
    if (has_budget(&si->budget))
        budget_text(what, sizeof what, &si->budget);

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"elmon\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n",
            set->n_loops, failures, si->wall_s);
    fprintf(f, "  <testsuite name=\"");
    xml_put(f, name);
    fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.3f\" timestamp=\"%s\">\n",
            set->n_loops, failures, si->wall_s, stamp);
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        double secs = l->end_unix_ns > l->start_unix_ns ? (double)(l->end_unix_ns - l->start_unix_ns) / 1e9 : 0;
        fprintf(f, "    <testcase classname=\"elmon.");
        xml_put(f, l->process);
        fprintf(f, "\" name=\"");
        xml_put(f, l->process);
        fprintf(f, " pid %d thread ", l->pid);
        xml_put(f, l->thread);
        fprintf(f, " (tid %d)\" time=\"%.3f\"", l->tid, secs);
        double worst;
        size_t over = ev_loop_over_budget(l, &si->budget, &worst);
        if (!over) {
            fprintf(f, "/>\n");
            continue;
        }
        fprintf(f, ">\n      <failure type=\"elmon.over_budget\" message=\"%zu span%s breaking the budget (%s); longest %.1f ms\">",
                over, over == 1 ? "" : "s", what, worst);
        size_t idx[WORST_SPANS];
        size_t n = worst_spans(l, idx, WORST_SPANS);
        for (size_t k = 0; k < n; k++) {
            const struct ev_span *sp = &l->spans[idx[k]];
            char line[256];
            snprintf(line, sizeof line, "%sturn %llu: blocked %.1f ms (%s%s) in ", k ? "\n" : "",
                     (unsigned long long)sp->turn, sp->duration_ms, sp->critical ? "critical" : "warning",
                     sp->ongoing || sp->at_exit ? ", still running at exit" : "");
            xml_put(f, line);
            xml_put(f, sp->culprit);
            if (sp->stack_text) {
                fputc('\n', f);
                xml_put(f, sp->stack_text);
            }
        }
        fprintf(f, "</failure>\n    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
}

static int by_stack(const void *a, const void *b)
{
    return strcmp(((const struct fold_sum *)a)->stack, ((const struct fold_sum *)b)->stack);
}

struct fold_sum *summary_fold_sums(const struct ev_set *set, size_t *n_out)
{
    /* Stacks are interned (events.h): summed by pointer in a table sized
     * by the distinct strings (not the spans), then the distinct ones
     * sorted, so the work grows with the spans once and with the distinct
     * stacks for the sort. */
    size_t n = ev_distinct_strings(set) + 1;   /* stacks are interned, or the one literal */
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    struct fold_sum *tab = calloc(cap, sizeof *tab);
    if (!tab) {
        fprintf(stderr, "elmon: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < set->n_loops; i++) {
        const struct ev_loop *l = &set->loops[i];
        for (size_t j = 0; j < l->n_spans; j++) {
            const char *stack = l->spans[j].folded ? l->spans[j].folded : "?;[not captured]";
            uint64_t h = (uint64_t)(uintptr_t)stack * 0x9e3779b97f4a7c15ull;
            size_t at = (size_t)(h >> 20) & (cap - 1);
            while (tab[at].stack && tab[at].stack != stack)
                at = (at + 1) & (cap - 1);
            if (!tab[at].stack)
                tab[at].stack = stack;
            tab[at].weight += elmon_fold_weight(l->spans[j].duration_ms);
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < cap; i++)
        if (tab[i].stack)
            tab[m++] = tab[i];
    if (m)
        qsort(tab, m, sizeof *tab, by_stack);
    *n_out = m;
    return tab;
}

/* One line per distinct stack, weighted by blocked milliseconds: the input
 * of flamegraph.pl, inferno and speedscope.  Each span weighs what its line
 * in ELMON_FOLDED weighs (common/fold.h), so the sum of that file's lines
 * by stack is this output. */
void summary_folded(FILE *f, const struct ev_set *set)
{
    size_t m;
    struct fold_sum *v = summary_fold_sums(set, &m);
    if (!v)
        return;
    /* Machine-read, yet often paged or catted: no raw control either. */
    for (size_t i = 0; i < m; i++)
        fprintf(f, "%s %ld\n", esc(v[i].stack), v[i].weight);
    free(v);
}

/* A private file: created 0600 (an existing file is truncated and keeps
 * its mode), never through a symlink at path, which could make elmon
 * overwrite a file of the link's choosing. */
static FILE *open_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            fprintf(stderr, "elmon: cannot write %s: it is a symbolic link, not followed\n", esc(path));
        else
            fprintf(stderr, "elmon: cannot write %s: %s\n", esc(path), strerror(errno));
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "elmon: cannot write %s: %s\n", esc(path), strerror(errno));
        close(fd);
    }
    return f;
}

int summary_to_file(const char *path, const struct ev_set *set, const struct summary_info *si,
                    void (*fn)(FILE *, const struct ev_set *, const struct summary_info *))
{
    int to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : open_private(path);
    if (!f)
        return -1;
    fn(f, set, si);
    int bad = ferror(f);
    if (to_stdout ? fflush(f) != 0 : fclose(f) != 0)
        bad = 1;
    if (bad) {
        fprintf(stderr, "elmon: writing %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
