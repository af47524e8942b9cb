/*
 * Reading libelmon's events files (docs/EVENTS.md) into one model: a row
 * per process and loop thread, its blocking spans, and the culprits ranked
 * by total blocked time.  Used by `elmon run` and `elmon report`.
 *
 * Time linear in the records read (hash tables for loops, strings,
 * culprits and the begin/end match); memory for the strings bounded by the
 * distinct stacks and culprits, plus one small struct ev_span per span.
 */
#ifndef ELMON_CLI_EVENTS_H
#define ELMON_CLI_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"   /* ELMON_EVENTS_SCHEMA: the newest version this reader knows */

struct ev_span {
    uint64_t turn, start_unix_ns;
    double duration_ms, lag_ms;
    int critical;
    int ongoing;              /* a block_begin that never ended (killed, stuck) */
    int at_exit;              /* a block closed by its thread's or the process's exit (schema 2 "end") */
    /* Strings are kept once per distinct value (the set's string table):
     * a run of 300,000 spans holds as many copies of a stack as it has
     * distinct stacks.  Equal strings are the same pointer. */
    const char *culprit;      /* never NULL: "(not captured)" when unknown */
    const char *folded;       /* frames outermost first, ';'-joined; NULL when none */
    const char *stack_text;   /* one frame per line, innermost first; NULL when none */
    const char *cause;        /* cause.class ("cpu", "sleep", ...); NULL when not captured */
};

struct ev_loop {
    int pid, tid;
    char process[64], thread[64], poller[16];
    int has_summary, exited;
    double turns, utilization;
    double lag_p50_ms, lag_p90_ms, lag_p99_ms, lag_max_ms;
    double blocks_warning, blocks_critical, spans_dropped;
    char status[16];
    uint64_t start_unix_ns, end_unix_ns;
    double block_ms, critical_ms;  /* the process's thresholds (summary); 0 when not known */
    uint64_t (*hist)[2];           /* the summary's lag_hist: [lo_ns, count], ascending */
    size_t n_hist;
    struct ev_span *spans;    /* ended spans, then never-ended ones */
    size_t n_spans, cap_spans;
};

struct ev_culprit {
    const char *name;
    size_t count;
    double total_ms, max_ms;
};

struct ev_set {
    struct ev_loop *loops;
    size_t n_loops, cap_loops;
    struct ev_culprit *culprits;   /* after ev_finish, by total blocked time */
    size_t n_culprits;
    size_t n_files, n_records;
    size_t n_malformed;            /* not JSON, or cut short */
    size_t n_foreign;              /* JSON, but not a libelmon record */
    int newer;                     /* a record of a schema newer than ours */
    char newer_where[512];         /* "FILE:LINE: version N" of the first one */
    /* block_begin records, matched against block records by ev_finish */
    struct ev_pending *pending;
    size_t n_pending, cap_pending;
    /* Hash tables, so that reading is linear in the records: the string
     * table, and loops by (pid, tid) (events.c). */
    struct ev_index *index;
};

/* Read one file, or every *.jsonl file of a directory.  Bad lines are
 * counted, with one warning per file on stderr (prefix "elmon: warning: ");
 * 0, or -errno when path cannot be read at all. */
int ev_load_path(struct ev_set *set, const char *path);
/* Match unfinished spans, order loops (pid, tid) and rank culprits. */
void ev_finish(struct ev_set *set);
void ev_free(struct ev_set *set);
/* How many distinct strings the set holds (each interned once): a bound
 * on its distinct culprits and stacks, for tables that must not be sized
 * by the spans. */
size_t ev_distinct_strings(const struct ev_set *set);

/* A budget for the CI verdict: a span longer than fail_over_ms (< 0: none),
 * or of severity fail_on or worse (0 none, 1 warning, 2 critical). */
struct ev_budget {
    double fail_over_ms;
    int fail_on;
};
/* Whether one span breaks the budget: 0 no, 2 by its severity, 1 by its
 * duration only. */
int ev_span_over_budget(const struct ev_span *sp, const struct ev_budget *b);
/* Spans of the loop that break the budget; worst receives the longest. */
size_t ev_loop_over_budget(const struct ev_loop *l, const struct ev_budget *b, double *worst_ms);
/* Blocking spans by severity: the summary's counts, or the spans seen
 * when the process left no summary. */
void ev_loop_counts(const struct ev_loop *l, double *warning, double *critical);

#endif
