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
    /* Its frames are read only if no block record ends it (most do): from
     * the line at offset of path, len bytes.  path NULL: read already. */
    const char *path;
    long long offset;
    size_t len;
    size_t seq;                  /* begins in the order read */
    int ended;                   /* a block of its turn was read (ev_finish) */
};

/* Where the record being read is, for a block_begin read lazily; path NULL
 * when its file cannot be read again (not a regular file). */
struct rec_at {
    const char *path;
    long long offset;
    size_t len;
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

/* ---- the set's hash tables (open addressing, linear probing, load <= 1/2) ---- */

struct ev_index {
    char **strs;                 /* the string table: each distinct string once */
    size_t cap_strs, n_strs;
    size_t *loops;               /* loop index + 1 by (pid, tid); 0 empty */
    size_t cap_loops;
    size_t *pending;             /* set->pending index + 1 by (pid, tid, turn); 0 empty */
    size_t cap_pending, n_begun;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "elmon: out of memory\n");
        exit(125);
    }
    return p;
}

static uint64_t hash_bytes(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static struct ev_index *index_of(struct ev_set *set)
{
    if (!set->index)
        set->index = xcalloc(1, sizeof *set->index);
    return set->index;
}

/* The table's copy of s: one per distinct string, so that equal strings
 * are one pointer. */
static const char *intern(struct ev_set *set, const char *s)
{
    struct ev_index *x = index_of(set);
    if (2 * (x->n_strs + 1) > x->cap_strs) {
        size_t cap = x->cap_strs ? 2 * x->cap_strs : 1024;
        char **t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < x->cap_strs; i++)
            if (x->strs[i]) {
                size_t k = hash_bytes(x->strs[i]) & (cap - 1);
                while (t[k])
                    k = (k + 1) & (cap - 1);
                t[k] = x->strs[i];
            }
        free(x->strs);
        x->strs = t;
        x->cap_strs = cap;
    }
    size_t k = hash_bytes(s) & (x->cap_strs - 1);
    for (; x->strs[k]; k = (k + 1) & (x->cap_strs - 1))
        if (strcmp(x->strs[k], s) == 0)
            return x->strs[k];
    x->strs[k] = xstrdup(s);
    x->n_strs++;
    return x->strs[k];
}

static uint64_t loop_key(int pid, int tid)
{
    return hash_u64(((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid);
}

static void loops_rehash(struct ev_set *set, size_t cap)
{
    struct ev_index *x = index_of(set);
    size_t *t = xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < set->n_loops; i++) {
        size_t k = loop_key(set->loops[i].pid, set->loops[i].tid) & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = i + 1;
    }
    free(x->loops);
    x->loops = t;
    x->cap_loops = cap;
}

static struct ev_loop *find_loop(struct ev_set *set, int pid, int tid, const char *process,
                                 const char *thread, const char *poller)
{
    struct ev_index *x = index_of(set);
    if (2 * (set->n_loops + 1) > x->cap_loops)
        loops_rehash(set, x->cap_loops ? 2 * x->cap_loops : 256);
    size_t k = loop_key(pid, tid) & (x->cap_loops - 1);
    for (; x->loops[k]; k = (k + 1) & (x->cap_loops - 1)) {
        struct ev_loop *l = &set->loops[x->loops[k] - 1];
        if (l->pid == pid && l->tid == tid)
            return l;
    }
    x->loops[k] = set->n_loops + 1;
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

/* "function (file:line)", or what there is of it, appended to out. */
static void frame_name(struct elmon_buf *out, const struct jval *f)
{
    const char *fn = jv_str(f, "function", NULL);
    const char *file = jv_str(f, "file", NULL);
    double line = jv_num(f, "line", -1);
    const char *module = jv_str(f, "module", NULL);
    const char *offset = jv_str(f, "offset", NULL);
    if (fn && file && line >= 0)
        elmon_buf_printf(out, "%s (%s:%.0f)", fn, elmon_base_name(file), line);
    else if (fn && file)
        elmon_buf_printf(out, "%s (%s)", fn, elmon_base_name(file));
    else if (fn && module)
        elmon_buf_printf(out, "%s (%s)", fn, elmon_base_name(module));
    else if (fn)
        elmon_buf_puts(out, fn);
    else if (module)
        elmon_buf_printf(out, "%s+%s", elmon_base_name(module), offset ? offset : "?");
    else
        elmon_buf_puts(out, jv_str(f, "addr", "?"));
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
static void span_frames(struct ev_set *set, struct ev_span *sp, const struct jval *rec, const char *process)
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
    char buf[512];
    int index;
    if (!named || !*named)
        named = elmon_culprit(pv, (int)n_py, fv, (int)n_st, NULL, buf, sizeof buf, &index) != ELMON_CULPRIT_NONE
                    ? buf
                    : "(not captured)";
    sp->culprit = intern(set, named);

    /* Kept at its length: a report holds every span of a run. */
    static char mem[65536];
    struct elmon_buf fold;
    elmon_buf_init(&fold, mem, sizeof mem);
    const struct jval *cause = jv_get(rec, "cause");
    elmon_fold_stack(&fold, process, pv, (int)n_py, fv, (int)n_st, jv_str(cause, "syscall", NULL));
    sp->folded = intern(set, mem);
    const char *cls = jv_str(cause, "class", NULL);
    sp->cause = cls && *cls ? intern(set, cls) : NULL;

    /* The printable stack: into one buffer, no allocation per frame (a
     * report reads hundreds of thousands of records). */
    static char text_mem[1 << 17];
    struct elmon_buf text;
    elmon_buf_init(&text, text_mem, sizeof text_mem);
    for (size_t i = 0; i < n_py; i++) {
        elmon_buf_puts(&text, i ? "\n    " : "    ");
        frame_name(&text, py->items[i]);
    }
    for (size_t i = 0; i < n_st; i++) {
        elmon_buf_printf(&text, "%s    #%zu ", n_py || i ? "\n" : "", i);
        frame_name(&text, st->items[i]);
    }
    sp->stack_text = text.len ? intern(set, text_mem) : NULL;
}

/* A count or a time in ns from a record; converting a double outside the
 * type's range is undefined, so a corrupt number reads as 0. */
static uint64_t to_u64(double d)
{
    return d >= 0 && d < 18446744073709551616.0 ? (uint64_t)d : 0;
}

/* The summary's lag_hist, [[lo_ns, count], ...]: pairs kept as they are
 * while their lo_ns ascend; the first that does not ends the reading. */
static void take_hist(struct ev_loop *l, const struct jval *h)
{
    free(l->hist);
    l->hist = NULL;
    l->n_hist = 0;
    if (!h || h->type != J_ARR || !h->n)
        return;
    l->hist = xcalloc(h->n, sizeof *l->hist);
    for (size_t i = 0; i < h->n; i++) {
        const struct jval *p = h->items[i];
        if (p->type != J_ARR || p->n != 2 || p->items[0]->type != J_NUM || p->items[1]->type != J_NUM)
            break;
        uint64_t lo = to_u64(p->items[0]->num), n = to_u64(p->items[1]->num);
        if (l->n_hist && lo <= l->hist[l->n_hist - 1][0])
            break;
        l->hist[l->n_hist][0] = lo;
        l->hist[l->n_hist][1] = n;
        l->n_hist++;
    }
}

/* ---- block_begin records still waiting for their block ----
 * A begin is dropped as soon as a block of its (pid, tid, turn) is read,
 * so only the spans open at a point of the files wait here (about one per
 * loop thread), not every begin read: the memory is not the records'.
 * What is left at ev_finish is matched once more against every ended span
 * (a block read before its begin: another file, another order). */

static uint64_t pending_key(int pid, int tid, uint64_t turn)
{
    return hash_u64(loop_key(pid, tid) ^ (turn * 0x9e3779b97f4a7c15ull));
}

static void pending_rehash(struct ev_set *set, size_t cap)
{
    struct ev_index *x = index_of(set);
    size_t *t = xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < set->n_pending; i++) {
        const struct ev_pending *p = &set->pending[i];
        size_t k = pending_key(p->pid, p->tid, p->span.turn) & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = i + 1;
    }
    free(x->pending);
    x->pending = t;
    x->cap_pending = cap;
}

/* The slot holding pending index i, which is in the table. */
static size_t pending_slot(const struct ev_set *set, size_t i)
{
    const struct ev_index *x = set->index;
    const struct ev_pending *p = &set->pending[i];
    size_t k = pending_key(p->pid, p->tid, p->span.turn) & (x->cap_pending - 1);
    while (x->pending[k] != i + 1)
        k = (k + 1) & (x->cap_pending - 1);
    return k;
}

static void pending_add(struct ev_set *set, const struct ev_pending *p)
{
    struct ev_index *x = index_of(set);
    if (2 * (set->n_pending + 1) > x->cap_pending)
        pending_rehash(set, x->cap_pending ? 2 * x->cap_pending : 256);
    set->pending = grow(set->pending, &set->cap_pending, set->n_pending, sizeof *set->pending);
    set->pending[set->n_pending] = *p;
    size_t k = pending_key(p->pid, p->tid, p->span.turn) & (x->cap_pending - 1);
    while (x->pending[k])
        k = (k + 1) & (x->cap_pending - 1);
    x->pending[k] = ++set->n_pending;
    set->pending[set->n_pending - 1].seq = x->n_begun++;
}

/* A block of (pid, tid, turn) was read: one begin of that key, if any, is
 * no longer pending (others of the same key go at ev_finish). */
static void pending_end(struct ev_set *set, int pid, int tid, uint64_t turn)
{
    struct ev_index *x = set->index;
    if (!x || !set->n_pending)
        return;
    size_t mask = x->cap_pending - 1, k = pending_key(pid, tid, turn) & mask;
    for (; x->pending[k]; k = (k + 1) & mask) {
        const struct ev_pending *p = &set->pending[x->pending[k] - 1];
        if (p->pid == pid && p->tid == tid && p->span.turn == turn)
            break;
    }
    if (!x->pending[k])
        return;
    size_t gone = x->pending[k] - 1;
    /* Deleted by shifting back the entries of the probe run after it. */
    x->pending[k] = 0;
    for (size_t j = (k + 1) & mask; x->pending[j]; j = (j + 1) & mask) {
        const struct ev_pending *q = &set->pending[x->pending[j] - 1];
        size_t home = pending_key(q->pid, q->tid, q->span.turn) & mask;
        /* q stays unless its home is cyclically outside (k, j]. */
        if ((j > k && (home <= k || home > j)) || (j < k && home <= k && home > j)) {
            x->pending[k] = x->pending[j];
            x->pending[j] = 0;
            k = j;
        }
    }
    /* The last entry moves into the freed place. */
    size_t last = set->n_pending - 1;
    if (gone != last) {
        x->pending[pending_slot(set, last)] = gone + 1;
        set->pending[gone] = set->pending[last];
    }
    set->n_pending--;
}

static void add_span(struct ev_loop *l, const struct ev_span *sp)
{
    l->spans = grow(l->spans, &l->cap_spans, l->n_spans, sizeof *l->spans);
    l->spans[l->n_spans++] = *sp;
}

enum { REC_OK, REC_MALFORMED, REC_FOREIGN, REC_NEWER };

static int take_record(struct ev_set *set, const struct jval *r, const struct rec_at *at)
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
        l->block_ms = jv_num(r, "block_ms", 0);
        l->critical_ms = jv_num(r, "critical_ms", 0);
        take_hist(l, jv_get(r, "lag_hist"));
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
    if (is_block || !at->path)
        span_frames(set, &sp, r, process);
    if (is_block) {
        add_span(find_loop(set, (int)pid, (int)tid, process, thread, poller), &sp);
        pending_end(set, (int)pid, (int)tid, sp.turn);
        return REC_OK;
    }
    struct ev_pending p = {.pid = (int)pid, .tid = (int)tid};
    snprintf(p.process, sizeof p.process, "%s", process);
    snprintf(p.thread, sizeof p.thread, "%s", thread);
    snprintf(p.poller, sizeof p.poller, "%s", poller);
    sp.ongoing = 1;
    p.span = sp;
    p.path = sp.culprit ? NULL : at->path;
    p.offset = at->offset;
    p.len = at->len;
    pending_add(set, &p);
    return REC_OK;
}

static int load_file(struct ev_set *set, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    set->n_files++;
    /* A regular file can be read again at ev_finish: its block_begin
     * records' frames wait until then (interned path: kept with the set). */
    struct stat st;
    const char *again = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? intern(set, path) : NULL;
    long long at_off = 0;
    char *line = NULL;
    size_t cap = 0, lineno = 0, malformed = 0, foreign = 0, first_bad = 0;
    ssize_t k;
    while ((k = getline(&line, &cap, f)) > 0) {
        lineno++;
        struct rec_at at = {again, at_off, (size_t)k};
        at_off += k;
        /* A last line without its newline was cut short by a crash or a
         * full disk: take it only if it is still a whole record. */
        size_t n = (size_t)k;
        if (line[n - 1] == '\n')
            n--;
        if (n == 0)
            continue;
        struct jval *r = memchr(line, 0, n) ? NULL : jv_parse(line, n);
        int rc = !r ? REC_MALFORMED : r->type != J_OBJ ? REC_FOREIGN : take_record(set, r, &at);
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

/* An open-addressing table keyed by pointer (interned strings) or number,
 * local to ev_finish. */
struct ptab {
    uintptr_t *keys;             /* 0 empty */
    size_t *vals;
    size_t cap;
};

static void ptab_init(struct ptab *t, size_t n)
{
    t->cap = 16;
    while (t->cap < 2 * n + 2)
        t->cap *= 2;
    t->keys = xcalloc(t->cap, sizeof *t->keys);
    t->vals = xcalloc(t->cap, sizeof *t->vals);
}

/* The slot of key (not 0), and whether it was there. */
static size_t ptab_slot(const struct ptab *t, uintptr_t key, int *found)
{
    size_t k = hash_u64(key) & (t->cap - 1);
    while (t->keys[k] && t->keys[k] != key)
        k = (k + 1) & (t->cap - 1);
    *found = t->keys[k] == key;
    return k;
}

static void ptab_free(struct ptab *t)
{
    free(t->keys);
    free(t->vals);
}

/* The file a lazy block_begin is read from, kept open across them. */
static struct {
    const char *path;
    FILE *f;
} lazy;

/* The frames of a block_begin no block ended, from its line; a line that
 * cannot be read again (the file changed) has no capture. */
static void lazy_frames(struct ev_set *set, struct ev_pending *p)
{
    if (lazy.path != p->path) {
        if (lazy.f)
            fclose(lazy.f);
        lazy.f = fopen(p->path, "re");
        lazy.path = p->path;
    }
    char *buf = malloc(p->len + 1);
    struct jval *r = NULL;
    if (buf && lazy.f && fseeko(lazy.f, (off_t)p->offset, SEEK_SET) == 0 && fread(buf, 1, p->len, lazy.f) == p->len) {
        size_t n = p->len;
        if (n && buf[n - 1] == '\n')
            n--;
        r = memchr(buf, 0, n) ? NULL : jv_parse(buf, n);
    }
    static const char none[] = "{}";
    struct jval *empty = r ? NULL : jv_parse(none, 2);
    span_frames(set, &p->span, r ? r : empty, p->process);
    jv_free(r);
    jv_free(empty);
    free(buf);
    p->path = NULL;
}

static int by_seq(const void *a, const void *b)
{
    const struct ev_pending *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t ev_distinct_strings(const struct ev_set *set)
{
    return set->index ? set->index->n_strs : 0;
}

void ev_finish(struct ev_set *set)
{
    /* A block_begin whose block never came is a span that was still
     * running when the process went: it counts, with its duration so far.
     * The begins still pending (few: reading dropped those a block ended)
     * are found by (pid, tid, turn) in their table while every ended span
     * is walked once: no table as large as the spans. */
    size_t n_begun = set->n_pending;
    if (n_begun) {
        struct ev_index *x = set->index;
        size_t mask = x->cap_pending - 1;
        for (size_t i = 0; i < set->n_loops; i++) {
            const struct ev_loop *l = &set->loops[i];
            for (size_t j = 0; j < l->n_spans; j++) {
                uint64_t turn = l->spans[j].turn;
                for (size_t k = pending_key(l->pid, l->tid, turn) & mask; x->pending[k]; k = (k + 1) & mask) {
                    struct ev_pending *p = &set->pending[x->pending[k] - 1];
                    if (p->pid == l->pid && p->tid == l->tid && p->span.turn == turn)
                        p->ended = 1;
                }
            }
        }
        /* In the order they were read, as the files have them. */
        qsort(set->pending, n_begun, sizeof *set->pending, by_seq);
    }
    for (size_t i = 0; i < n_begun; i++) {
        struct ev_pending *p = &set->pending[i];
        if (p->ended)
            continue;
        struct ev_loop *l = find_loop(set, p->pid, p->tid, p->process, p->thread, p->poller);
        if (p->path)
            lazy_frames(set, p);
        add_span(l, &p->span);
    }
    if (lazy.f)
        fclose(lazy.f);
    lazy.f = NULL;
    lazy.path = NULL;
    free(set->pending);
    set->pending = NULL;
    set->n_pending = set->cap_pending = 0;
    if (set->index) {
        free(set->index->pending);
        set->index->pending = NULL;
        set->index->cap_pending = 0;
    }

    /* qsort's array must not be NULL even when empty (UBSan: nonnull). */
    if (set->n_loops)
        qsort(set->loops, set->n_loops, sizeof *set->loops, by_loop);
    /* The loops moved: the (pid, tid) table is rebuilt. */
    if (set->index && set->index->cap_loops)
        loops_rehash(set, set->index->cap_loops);
    /* Culprits are interned: counted by pointer. */
    struct ptab by_name;
    ptab_init(&by_name, ev_distinct_strings(set));   /* culprits are interned strings */
    size_t cap = 0;
    for (size_t i = 0; i < set->n_loops; i++)
        for (size_t j = 0; j < set->loops[i].n_spans; j++) {
            const struct ev_span *sp = &set->loops[i].spans[j];
            int found;
            size_t k = ptab_slot(&by_name, (uintptr_t)sp->culprit, &found);
            if (!found) {
                by_name.keys[k] = (uintptr_t)sp->culprit;
                by_name.vals[k] = set->n_culprits;
                set->culprits = grow(set->culprits, &cap, set->n_culprits, sizeof *set->culprits);
                set->culprits[set->n_culprits++] = (struct ev_culprit){sp->culprit, 0, 0, 0};
            }
            struct ev_culprit *c = &set->culprits[by_name.vals[k]];
            c->count++;
            c->total_ms += sp->duration_ms;
            if (sp->duration_ms > c->max_ms)
                c->max_ms = sp->duration_ms;
        }
    ptab_free(&by_name);
    if (set->n_culprits)
        qsort(set->culprits, set->n_culprits, sizeof *set->culprits, by_total);
}

void ev_free(struct ev_set *set)
{
    for (size_t i = 0; i < set->n_loops; i++) {
        free(set->loops[i].spans);
        free(set->loops[i].hist);
    }
    if (set->index) {
        for (size_t i = 0; i < set->index->cap_strs; i++)
            free(set->index->strs[i]);
        free(set->index->strs);
        free(set->index->loops);
        free(set->index->pending);
        free(set->index);
    }
    free(set->pending);
    free(set->loops);
    free(set->culprits);
    memset(set, 0, sizeof *set);
}

int ev_span_over_budget(const struct ev_span *sp, const struct ev_budget *b)
{
    int severe = b->fail_on == 1 || (b->fail_on == 2 && sp->critical);
    return severe ? 2 : b->fail_over_ms >= 0 && sp->duration_ms > b->fail_over_ms;
}

size_t ev_loop_over_budget(const struct ev_loop *l, const struct ev_budget *b, double *worst_ms)
{
    size_t n = 0, n_severe = 0;
    double worst = 0;
    for (size_t i = 0; i < l->n_spans; i++) {
        const struct ev_span *sp = &l->spans[i];
        int over = ev_span_over_budget(sp, b);
        if (!over)
            continue;
        n++;
        n_severe += over == 2;
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
