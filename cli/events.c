/*
 * Reading events files into the summary model (see events.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "events.h"
#include "culprit.h"
#include "fold.h"
#include "json.h"
#include "span.h"

struct ev_pending {
    int pid, tid;
    char process[64], thread[64], poller[16];
    struct ev_span span;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(p, c * size);
    if (!q) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(125);
    }
    *cap = c;
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(125);
    }
    return d;
}

static struct ev_loop *find_loop(struct ev_set *set, int pid, int tid, const char *process,
                                 const char *thread, const char *poller)
{
    for (size_t i = 0; i < set->n_loops; i++)
        if (set->loops[i].pid == pid && set->loops[i].tid == tid)
            return &set->loops[i];
    set->loops = grow(set->loops, &set->cap_loops, set->n_loops, sizeof *set->loops);
    struct ev_loop *l = &set->loops[set->n_loops++];
    memset(l, 0, sizeof *l);
    l->pid = pid;
    l->tid = tid;
    snprintf(l->process, sizeof l->process, "%s", process);
    snprintf(l->thread, sizeof l->thread, "%s", thread);
    snprintf(l->poller, sizeof l->poller, "%s", poller);
    return l;
}

/* "function (file:line)", or what there is of it. */
static char *frame_name(const struct jval *f)
{
    const char *fn = jv_str(f, "function", NULL);
    const char *file = jv_str(f, "file", NULL);
    double line = jv_num(f, "line", -1);
    const char *module = jv_str(f, "module", NULL);
    const char *offset = jv_str(f, "offset", NULL);
    char *out = NULL;
    int rc;
    if (fn && file && line >= 0)
        rc = asprintf(&out, "%s (%s:%.0f)", fn, elmon_base_name(file), line);
    else if (fn && file)
        rc = asprintf(&out, "%s (%s)", fn, elmon_base_name(file));
    else if (fn && module)
        rc = asprintf(&out, "%s (%s)", fn, elmon_base_name(module));
    else if (fn)
        rc = asprintf(&out, "%s", fn);
    else if (module)
        rc = asprintf(&out, "%s+%s", elmon_base_name(module), offset ? offset : "?");
    else
        rc = asprintf(&out, "%s", jv_str(f, "addr", "?"));
    if (rc < 0) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(125);
    }
    return out;
}

static void append(char **s, size_t *len, const char *add, const char *sep)
{
    size_t k = strlen(add), ks = *len ? strlen(sep) : 0;
    char *n = realloc(*s, *len + ks + k + 1);
    if (!n) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(125);
    }
    memcpy(n + *len, sep, ks);
    memcpy(n + *len + ks, add, k + 1);
    *s = n;
    *len += ks + k;
}

/* Up to this many frames of a record are read into views for the culprit
 * rule and the fold (libelmon writes at most 64). */
#define EV_MAX_FRAMES 256

static uint64_t hex_u64(const char *s)
{
    return s ? (uint64_t)strtoull(s, NULL, 16) : 0;
}

/* The culprit, the folded stack and the printable stack of a block record:
 * the record's own culprit when the capture named one, else the culprit
 * rule libelmon applies (common/culprit.c) on the record's frames; the
 * folded stack in the format ELMON_FOLDED writes (common/fold.c). */
static void span_frames(struct ev_span *sp, const struct jval *rec, const char *process)
{
    const struct jval *py = jv_get(rec, "python");
    const struct jval *st = jv_get(rec, "stack");
    size_t n_py = py && py->type == J_ARR ? py->n : 0;
    size_t n_st = st && st->type == J_ARR ? st->n : 0;
    if (n_py > EV_MAX_FRAMES)
        n_py = EV_MAX_FRAMES;
    if (n_st > EV_MAX_FRAMES)
        n_st = EV_MAX_FRAMES;
    struct elmon_py_view pv[EV_MAX_FRAMES];
    struct elmon_frame_view fv[EV_MAX_FRAMES];
    for (size_t i = 0; i < n_py; i++) {
        const struct jval *f = py->items[i];
        pv[i] = (struct elmon_py_view){jv_str(f, "file", NULL), jv_str(f, "function", NULL),
                                       (int)jv_num(f, "line", 0)};
    }
    for (size_t i = 0; i < n_st; i++) {
        const struct jval *f = st->items[i];
        fv[i] = (struct elmon_frame_view){jv_str(f, "module", NULL), jv_str(f, "function", NULL),
                                          jv_str(f, "file", NULL), (int)jv_num(f, "line", 0),
                                          hex_u64(jv_str(f, "offset", NULL))};
    }
    const char *named = jv_str(rec, "culprit", NULL);
    char *culprit = named && *named ? xstrdup(named) : NULL;
    if (!culprit) {
        char buf[512];
        int index;
        if (elmon_culprit(pv, (int)n_py, fv, (int)n_st, NULL, buf, sizeof buf, &index) != ELMON_CULPRIT_NONE)
            culprit = xstrdup(buf);
    }
    sp->culprit = culprit ? culprit : xstrdup("(not captured)");

    /* Kept at its length: a report holds every span of a run. */
    static char mem[65536];
    struct elmon_buf fold;
    elmon_buf_init(&fold, mem, sizeof mem);
    elmon_fold_stack(&fold, process, pv, (int)n_py, fv, (int)n_st, jv_str(jv_get(rec, "cause"), "syscall", NULL));
    sp->folded = xstrdup(mem);

    size_t tlen = 0;
    char *text = NULL;
    for (size_t i = 0; i < n_py; i++) {
        char *name = frame_name(py->items[i]);
        append(&text, &tlen, "    ", tlen ? "\n" : "");
        append(&text, &tlen, name, "");
        free(name);
    }
    for (size_t i = 0; i < n_st; i++) {
        char *name = frame_name(st->items[i]);
        char line[64];
        snprintf(line, sizeof line, "    #%zu ", i);
        append(&text, &tlen, line, tlen ? "\n" : "");
        append(&text, &tlen, name, "");
        free(name);
    }
    sp->stack_text = text;
}

/* A count or a time in ns from a record; converting a double outside the
 * type's range is undefined, so a corrupt number reads as 0. */
static uint64_t to_u64(double d)
{
    return d >= 0 && d < 18446744073709551616.0 ? (uint64_t)d : 0;
}

static void add_span(struct ev_loop *l, const struct ev_span *sp)
{
    l->spans = grow(l->spans, &l->cap_spans, l->n_spans, sizeof *l->spans);
    l->spans[l->n_spans++] = *sp;
}

enum { REC_OK, REC_MALFORMED, REC_FOREIGN, REC_NEWER };

static int take_record(struct ev_set *set, const struct jval *r)
{
    const struct jval *v = jv_get(r, "v");
    const char *type = jv_str(r, "type", NULL);
    if (!v || v->type != J_NUM || !type)
        return REC_FOREIGN;
    if (v->num > ELMON_EVENTS_SCHEMA)
        return REC_NEWER;
    double pid = jv_num(r, "pid", -1), tid = jv_num(r, "tid", -1);
    if (pid < 0 || tid < 0 || pid > INT_MAX || tid > INT_MAX)
        return REC_FOREIGN;
    int is_block = strcmp(type, "block") == 0, is_begin = strcmp(type, "block_begin") == 0;
    int is_summary = strcmp(type, "summary") == 0;
    /* Spans a window's report budget left out (schema 2): the loop's
     * summary counts them among its spans, and its reports_left_out adds
     * up these records, so nothing more is taken from them. */
    if (strcmp(type, "left_out") == 0)
        return REC_OK;
    if (!is_block && !is_begin && !is_summary)
        return REC_FOREIGN;
    const char *process = jv_str(r, "process", "?");
    const char *thread = jv_str(r, "thread", "?");
    const char *poller = jv_str(r, "poller", "?");

    if (is_summary) {
        struct ev_loop *l = find_loop(set, (int)pid, (int)tid, process, thread, poller);
        l->has_summary = 1;
        l->exited = jv_bool(r, "exited", 0);
        l->turns = jv_num(r, "turns", 0);
        l->utilization = jv_num(r, "utilization", 0);
        l->lag_p50_ms = jv_num(r, "lag_p50_ms", 0);
        l->lag_p90_ms = jv_num(r, "lag_p90_ms", 0);
        l->lag_p99_ms = jv_num(r, "lag_p99_ms", 0);
        l->lag_max_ms = jv_num(r, "lag_max_ms", 0);
        l->blocks_warning = jv_num(r, "blocks_warning", 0);
        l->blocks_critical = jv_num(r, "blocks_critical", 0);
        l->spans_dropped = jv_num(r, "spans_dropped", 0);
        l->start_unix_ns = to_u64(jv_num(r, "start_unix_ns", 0));
        l->end_unix_ns = to_u64(jv_num(r, "end_unix_ns", 0));
        snprintf(l->status, sizeof l->status, "%s", jv_str(r, "status", "?"));
        return REC_OK;
    }

    struct ev_span sp = {0};
    /* Longer than 30 years is no span libelmon wrote, and summing such
     * values could reach infinity, which JSON cannot carry. */
    double dur = jv_num(r, "duration_ms", -1);
    if (dur < 0 || dur > 1e12)
        return REC_FOREIGN;
    sp.duration_ms = dur;
    sp.lag_ms = jv_num(r, "lag_ms", dur);
    sp.turn = to_u64(jv_num(r, "turn", 0));
    sp.start_unix_ns = to_u64(jv_num(r, "start_unix_ns", 0));
    sp.critical = strcmp(jv_str(r, "severity", ""), "critical") == 0;
    const char *end = jv_str(r, "end", "wait");
    sp.at_exit = is_block && (strcmp(end, "exit") == 0 || strcmp(end, "thread_exit") == 0);
    span_frames(&sp, r, process);
    if (is_block) {
        add_span(find_loop(set, (int)pid, (int)tid, process, thread, poller), &sp);
        return REC_OK;
    }
    set->pending = grow(set->pending, &set->cap_pending, set->n_pending, sizeof *set->pending);
    struct ev_pending *p = &set->pending[set->n_pending++];
    p->pid = (int)pid;
    p->tid = (int)tid;
    snprintf(p->process, sizeof p->process, "%s", process);
    snprintf(p->thread, sizeof p->thread, "%s", thread);
    snprintf(p->poller, sizeof p->poller, "%s", poller);
    sp.ongoing = 1;
    p->span = sp;
    return REC_OK;
}

static int load_file(struct ev_set *set, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    set->n_files++;
    char *line = NULL;
    size_t cap = 0, lineno = 0, malformed = 0, foreign = 0, first_bad = 0;
    ssize_t k;
    while ((k = getline(&line, &cap, f)) > 0) {
        lineno++;
        /* A last line without its newline was cut short by a crash or a
         * full disk: take it only if it is still a whole record. */
        size_t n = (size_t)k;
        if (line[n - 1] == '\n')
            n--;
        if (n == 0)
            continue;
        struct jval *r = memchr(line, 0, n) ? NULL : jv_parse(line, n);
        int rc = !r ? REC_MALFORMED : r->type != J_OBJ ? REC_FOREIGN : take_record(set, r);
        if (rc == REC_NEWER && !set->newer) {
            set->newer = 1;
            snprintf(set->newer_where, sizeof set->newer_where, "%s:%zu: schema version %.0f", path,
                     lineno, jv_num(r, "v", 0));
        }
        jv_free(r);
        if (rc == REC_OK) {
            set->n_records++;
            continue;
        }
        if (rc == REC_MALFORMED)
            malformed++;
        else if (rc == REC_FOREIGN)
            foreign++;
        if (!first_bad && rc != REC_NEWER)
            first_bad = lineno;
    }
    free(line);
    fclose(f);
    if (malformed || foreign)
        fprintf(stderr, "elmon: warning: %s: skipped %zu malformed or truncated and %zu foreign lines (first at line %zu)\n",
                esc(path), malformed, foreign, first_bad);
    set->n_malformed += malformed;
    set->n_foreign += foreign;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ev_load_path(struct ev_set *set, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return load_file(set, path);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (k < 7 || strcmp(e->d_name + k - 6, ".jsonl") != 0)
            continue;
        names = grow(names, &cap, n, sizeof *names);
        if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
            exit(125);
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = load_file(set, names[i]);
        if (r < 0) {
            fprintf(stderr, "elmon: warning: %s: %s\n", esc(names[i]), strerror(-r));
            rc = r;
        }
        free(names[i]);
    }
    free(names);
    return n ? 0 : rc;
}

static int by_loop(const void *a, const void *b)
{
    const struct ev_loop *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int by_total(const void *a, const void *b)
{
    const struct ev_culprit *x = a, *y = b;
    if (x->total_ms != y->total_ms)
        return x->total_ms > y->total_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void count_culprit(struct ev_set *set, size_t *cap, const struct ev_span *sp)
{
    for (size_t i = 0; i < set->n_culprits; i++) {
        struct ev_culprit *c = &set->culprits[i];
        if (strcmp(c->name, sp->culprit) == 0) {
            c->count++;
            c->total_ms += sp->duration_ms;
            if (sp->duration_ms > c->max_ms)
                c->max_ms = sp->duration_ms;
            return;
        }
    }
    set->culprits = grow(set->culprits, cap, set->n_culprits, sizeof *set->culprits);
    set->culprits[set->n_culprits++] = (struct ev_culprit){xstrdup(sp->culprit), 1, sp->duration_ms,
                                                           sp->duration_ms};
}

void ev_finish(struct ev_set *set)
{
    /* A block_begin whose block never came is a span that was still
     * running when the process went: it counts, with its duration so far. */
    for (size_t i = 0; i < set->n_pending; i++) {
        struct ev_pending *p = &set->pending[i];
        struct ev_loop *l = find_loop(set, p->pid, p->tid, p->process, p->thread, p->poller);
        int ended = 0;
        for (size_t j = 0; j < l->n_spans && !ended; j++)
            ended = !l->spans[j].ongoing && l->spans[j].turn == p->span.turn;
        if (ended) {
            free(p->span.culprit);
            free(p->span.folded);
            free(p->span.stack_text);
        } else {
            add_span(l, &p->span);
        }
    }
    free(set->pending);
    set->pending = NULL;
    set->n_pending = set->cap_pending = 0;

    /* qsort's array must not be NULL even when empty (UBSan: nonnull). */
    if (set->n_loops)
        qsort(set->loops, set->n_loops, sizeof *set->loops, by_loop);
    size_t cap = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        for (size_t j = 0; j < set->loops[i].n_spans; j++)
            count_culprit(set, &cap, &set->loops[i].spans[j]);
    if (set->n_culprits)
        qsort(set->culprits, set->n_culprits, sizeof *set->culprits, by_total);
}

void ev_free(struct ev_set *set)
{
    for (size_t i = 0; i < set->n_loops; i++) {
        for (size_t j = 0; j < set->loops[i].n_spans; j++) {
            free(set->loops[i].spans[j].culprit);
            free(set->loops[i].spans[j].folded);
            free(set->loops[i].spans[j].stack_text);
        }
        free(set->loops[i].spans);
    }
    for (size_t i = 0; i < set->n_culprits; i++)
        free(set->culprits[i].name);
    for (size_t i = 0; i < set->n_pending; i++) {
        free(set->pending[i].span.culprit);
        free(set->pending[i].span.folded);
        free(set->pending[i].span.stack_text);
    }
    free(set->pending);
    free(set->loops);
    free(set->culprits);
    memset(set, 0, sizeof *set);
}

size_t ev_loop_over_budget(const struct ev_loop *l, const struct ev_budget *b, double *worst_ms)
{
    size_t n = 0, n_severe = 0;
    double worst = 0;
    for (size_t i = 0; i < l->n_spans; i++) {
        const struct ev_span *sp = &l->spans[i];
        int severe = b->fail_on == 1 || (b->fail_on == 2 && sp->critical);
        if (!severe && !(b->fail_over_ms >= 0 && sp->duration_ms > b->fail_over_ms))
            continue;
        n++;
        n_severe += severe;
        if (sp->duration_ms > worst)
            worst = sp->duration_ms;
    }
    /* Spans the watchdog had to drop are in the summary's severity counts
     * only. */
    if (b->fail_on) {
        double w, c;
        ev_loop_counts(l, &w, &c);
        double counted = b->fail_on == 1 ? w + c : c;
        if (counted > (double)n_severe)   /* capped: a corrupt count may be 1e300 */
            n += counted - (double)n_severe < 1e15 ? (size_t)(counted - (double)n_severe) : (size_t)1e15;
    }
    if (worst_ms)
        *worst_ms = worst;
    return n;
}

void ev_loop_counts(const struct ev_loop *l, double *warning, double *critical)
{
    if (l->has_summary) {
        *warning = l->blocks_warning;
        *critical = l->blocks_critical;
        /* A span still running at exit is in no summary count. */
        for (size_t i = 0; i < l->n_spans; i++)
            if (l->spans[i].ongoing)
                *(l->spans[i].critical ? critical : warning) += 1;
        return;
    }
    *warning = *critical = 0;
    for (size_t i = 0; i < l->n_spans; i++)
        *(l->spans[i].critical ? critical : warning) += 1;
}
