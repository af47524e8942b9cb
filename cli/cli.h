/*
 * The elmon command: subcommands and what they share.
 *
 * Exit statuses are the public surface scripts and CI depend on; the one
 * table documenting them is in docs/CLI.md, and tests/cli_exit_table.sh
 * checks that it lists exactly these names and values.
 */
#ifndef ELMON_CLI_H
#define ELMON_CLI_H

#include <stdio.h>
#include "events.h"

#define ELMON_EXIT_OK 0             /* success; `run`: COMMAND's own status when within budget */
#define ELMON_EXIT_FAILURE 1        /* stat/top/report: the PID or the files could not be read */
#define ELMON_EXIT_USAGE 2          /* bad options or arguments */
#define ELMON_EXIT_NO_PROCESS 3     /* attach: no such process */
#define ELMON_EXIT_NOT_PERMITTED 4  /* attach: ptrace refused (ptrace_scope, another user's process, seccomp) */
#define ELMON_EXIT_TRACED 5         /* attach: PID is already traced (a debugger, strace) */
#define ELMON_EXIT_NO_LIBC 6        /* attach: no C library mapped in PID (statically linked) */
#define ELMON_EXIT_NO_DLOPEN 7      /* attach: the C library of PID has no dlopen */
#define ELMON_EXIT_ATTACH_FAILED 8  /* attach/detach: the load or the call in PID failed (PID left as it was) */
#define ELMON_EXIT_OVER_BUDGET 123  /* run: a span broke --fail-over or --fail-on */
#define ELMON_EXIT_RUN_ERROR 125    /* run: elmon itself failed before or after COMMAND */
#define ELMON_EXIT_CANNOT_EXEC 126  /* run: COMMAND found but could not be executed */
#define ELMON_EXIT_NOT_FOUND 127    /* run: COMMAND not found */
/* run: COMMAND killed by signal N gives 128+N, as a shell reports it. */

int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);

/* Shared by run and attach (run.c).  libelmon.so's path: $ELMON_LIBRARY,
 * else next to this program; 0 or -1. */
int find_library(char *out, size_t n);
/* The events directory: want (created 0755 if missing), else a new
 * ./elmon-DATE-TIME; 0 or -errno. */
int make_out_dir(const char *want, char *out, size_t n);
/* ELMON_EVENTS's pattern for dir (DIR/events.%p.jsonl); 0 or -1. */
int events_pattern(const char *dir, char *out, size_t n);

/* What a summary needs besides the events (summary.c). */
struct summary_info {
    const char *events_dir;    /* printed; NULL for report */
    char **command;            /* run: COMMAND's argv; NULL for report */
    int exit_status;           /* run: COMMAND's status as a shell reports it, -1 for report */
    double wall_s;
    struct ev_budget budget;
    double block_ms, critical_ms; /* run: the thresholds COMMAND ran with; 0 for report */
};

void summary_text(FILE *f, const struct ev_set *set, const struct summary_info *si);
void summary_json(FILE *f, const struct ev_set *set, const struct summary_info *si);
void summary_junit(FILE *f, const struct ev_set *set, const struct summary_info *si);
void summary_folded(FILE *f, const struct ev_set *set);
/* The page of `--html` (html.c) and the speedscope file of `--speedscope`
 * (speedscope.c). */
void summary_html(FILE *f, const struct ev_set *set, const struct summary_info *si);
void summary_speedscope(FILE *f, const struct ev_set *set, const struct summary_info *si);

/* The distinct folded stacks of a set with their summed weights (ms),
 * sorted by stack; *n of them.  NULL when out of memory (after a message). */
struct fold_sum {
    const char *stack;
    long weight;
};
struct fold_sum *summary_fold_sums(const struct ev_set *set, size_t *n);
/* Loops over budget, all processes. */
size_t summary_over_budget(const struct ev_set *set, const struct ev_budget *b);
/* Write with fn into path ("-" for stdout); 0 or -1 after a message.
 * Every output names culprits and stacks, as the events files do: created
 * mode 0600 (an existing file truncated, its mode kept), and a symlink at
 * path is refused, not followed. */
int summary_to_file(const char *path, const struct ev_set *set, const struct summary_info *si,
                    void (*fn)(FILE *, const struct ev_set *, const struct summary_info *));

/* Strict option values: 0, or -1 after a one-line usage error. */
int parse_ms(const char *opt, const char *s, double *out);
/* --help text of a subcommand, to stdout. */
void usage(const char *subcommand);

#endif
