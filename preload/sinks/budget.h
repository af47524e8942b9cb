/*
 * The report budget of a text output (the events file, the human log): at
 * most ELMON_REPORTS_PER_MIN span reports per loop thread and
 * ELMON_REPORT_BYTES_PER_MIN bytes of span records per output in each
 * 60 s window, whichever is reached first, so that a threshold set too low
 * (ELMON_BLOCK_MS=1 on a busy server) cannot fill a disk.  A span left out
 * is still counted everywhere else: the loop's counters (summary, live
 * stats, OTLP metrics) come from the loop thread, not from these outputs.
 *
 * One span is one report: its block record, and its block_begin when it
 * had one.  The decision is taken at the span's first record and holds for
 * its second: a span whose block_begin was written always gets its block
 * ("every block_begin is closed", docs/EVENTS.md), and one whose
 * block_begin was left out gets no block.  When a window with spans left
 * out ends (elmon_budget_roll), and at a loop's summary
 * (elmon_budget_loop_end), the output writes one line saying how many.
 *
 * Owns: nothing; the state is the caller's (one struct elmon_budget per
 * output), under the caller's lock.
 * Threads: the watchdog and the exiting thread, never a loop thread: the
 * hot path is unchanged.
 * May not: keep state of its own, take a lock, or leave out the block of a
 * span whose block_begin it let through.
 */
#ifndef ELMON_BUDGET_H
#define ELMON_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"   /* ELMON_MAX_LOOPS */
#include "span.h"

/* The window the limits count in.  Fixed windows, not a token bucket like
 * ELMON_CAPTURES_PER_MIN's: each window's left-out line then gives an
 * exact count for an exact stretch of time. */
#define ELMON_BUDGET_WINDOW_NS 60000000000ull

/* A span whose first record decided it, until its block. */
enum { BUDGET_OPEN_NONE = 0, BUDGET_OPEN_WRITTEN, BUDGET_OPEN_LEFT_OUT };

struct elmon_budget_loop {
    int tid;                        /* 0: a free entry */
    int pid, poller;
    char thread[64];                /* of its last report, for the left-out line */
    uint64_t written;               /* spans written in this window */
    uint64_t left_out;              /* spans left out in this window */
    uint64_t left_out_total;        /* spans left out since the loop thread began: its summary's */
    int open;                       /* BUDGET_OPEN_* of the span begun and not yet ended */
    uint64_t open_turn;
    size_t open_reserved_bytes;     /* charged at its block_begin for its block */
};

struct elmon_budget {
    uint64_t window_start_mono_ns;  /* 0: no window open (no span since the last one ended) */
    uint64_t window_start_unix_ns;
    uint64_t window_bytes;          /* span record bytes charged to this window */
    int n_used;                     /* entries [0, n_used) have been used */
    struct elmon_budget_loop loops[ELMON_MAX_LOOPS];
};

/* What a left-out line or record says: one loop's spans left out in the
 * window [start_unix_ns, start_unix_ns + window_ns). */
struct elmon_left_out {
    int pid, tid, poller;
    const char *thread;
    uint64_t left_out;              /* in the window */
    uint64_t left_out_total;        /* since the loop thread began */
    uint64_t start_unix_ns, window_ns;
};
typedef void (*elmon_left_out_fn)(const struct elmon_left_out *lo, void *arg);

/* 1: write this record of r (len bytes, as written); 0: leave it out. */
int elmon_budget_admit(struct elmon_budget *b, const struct elmon_span_report *r, size_t len, uint64_t now_mono_ns);
/* The window has run 60 s: emit one left-out line for each loop that had
 * spans left out in it, then close it (the next span opens the next). */
void elmon_budget_roll(struct elmon_budget *b, uint64_t now_mono_ns, elmon_left_out_fn emit, void *arg);
/* The loop thread's summary is next: emit its left-out line for the window
 * so far when it has one, and fill *total with its spans left out since it
 * began; its entry is freed (the slot, and the tid, may be reused). */
void elmon_budget_loop_end(struct elmon_budget *b, int tid, uint64_t now_mono_ns, elmon_left_out_fn emit, void *arg,
                           uint64_t *total);
/* One line's words for the human log and a warning: "N span reports left
 * out in the last S s (limit ...)".  Into out (NUL-terminated). */
void elmon_budget_describe(const struct elmon_left_out *lo, char *out, size_t cap);
void elmon_budget_reset(struct elmon_budget *b);

#endif
