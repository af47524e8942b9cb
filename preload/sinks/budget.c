/*
 * The report budget of a text output (budget.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "budget.h"
#include "config.h"

static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The loop's entry, made when it has none.  A linear scan: at most one
 * entry per live loop slot (each is freed at its summary), looked at once
 * per span record on the watchdog, never on a loop thread. */
static struct elmon_budget_loop *entry(struct elmon_budget *b, int tid, int make)
{
    struct elmon_budget_loop *free_entry = NULL;
    for (int i = 0; i < b->n_used; i++) {
        if (b->loops[i].tid == tid)
            return &b->loops[i];
        if (!b->loops[i].tid && !free_entry)
            free_entry = &b->loops[i];
    }
    if (!make)
        return NULL;
    if (!free_entry && b->n_used < ELMON_MAX_LOOPS)
        free_entry = &b->loops[b->n_used++];
    if (free_entry) {
        memset(free_entry, 0, sizeof *free_entry);
        free_entry->tid = tid;
    }
    return free_entry;
}

static void fill_left_out(const struct elmon_budget *b, const struct elmon_budget_loop *e, uint64_t now_mono_ns,
                          struct elmon_left_out *lo)
{
    lo->pid = e->pid;
    lo->tid = e->tid;
    lo->poller = e->poller;
    lo->thread = e->thread;
    lo->left_out = e->left_out;
    lo->left_out_total = e->left_out_total;
    lo->start_unix_ns = b->window_start_unix_ns;
    lo->window_ns = now_mono_ns > b->window_start_mono_ns ? now_mono_ns - b->window_start_mono_ns : 0;
}

void elmon_budget_roll(struct elmon_budget *b, uint64_t now_mono_ns, elmon_left_out_fn emit, void *arg)
{
    if (!b->window_start_mono_ns || now_mono_ns - b->window_start_mono_ns < ELMON_BUDGET_WINDOW_NS)
        return;
    for (int i = 0; i < b->n_used; i++) {
        struct elmon_budget_loop *e = &b->loops[i];
        if (e->tid && e->left_out) {
            struct elmon_left_out lo;
            fill_left_out(b, e, now_mono_ns, &lo);
            emit(&lo, arg);
        }
        e->written = e->left_out = 0;
    }
    b->window_start_mono_ns = 0;
    b->window_bytes = 0;
}

int elmon_budget_admit(struct elmon_budget *b, const struct elmon_span_report *r, size_t len, uint64_t now_mono_ns)
{
    uint64_t per_loop = elmon_opt.reports_per_min, bytes_max = elmon_opt.report_bytes_per_min;
    if (!per_loop && !bytes_max)
        return 1;
    if (!b->window_start_mono_ns) {
        b->window_start_mono_ns = now_mono_ns ? now_mono_ns : 1;
        b->window_start_unix_ns = unix_now_ns();
        b->window_bytes = 0;
    }
    struct elmon_budget_loop *e = entry(b, r->tid, 1);
    int begin = r->phase == ELMON_SPAN_BEGIN;
    if (e) {
        e->pid = r->pid;
        e->poller = r->poller;
        snprintf(e->thread, sizeof e->thread, "%s", r->thread);
        /* The second record of a span follows its first. */
        if (!begin && e->open && e->open_turn == r->turn) {
            int written = e->open == BUDGET_OPEN_WRITTEN;
            if (written && len > e->open_reserved_bytes)
                b->window_bytes += len - e->open_reserved_bytes;
            e->open = BUDGET_OPEN_NONE;
            return written;
        }
    }
    /* A block_begin is charged for its block too (the same capture, so
     * about the same size), so that the block, which is never left out,
     * stays within the byte budget of the window that admitted the span. */
    size_t charge = begin ? 2 * len : len;
    int ok = (!per_loop || !e || e->written < per_loop) && (!bytes_max || b->window_bytes + charge <= bytes_max);
    if (ok)
        b->window_bytes += charge;
    if (e) {
        if (ok) {
            e->written++;
        } else {
            e->left_out++;
            e->left_out_total++;
        }
        e->open = !begin ? BUDGET_OPEN_NONE : ok ? BUDGET_OPEN_WRITTEN : BUDGET_OPEN_LEFT_OUT;
        e->open_turn = r->turn;
        e->open_reserved_bytes = begin ? len : 0;
    }
    return ok;
}

void elmon_budget_loop_end(struct elmon_budget *b, int tid, uint64_t now_mono_ns, elmon_left_out_fn emit, void *arg,
                           uint64_t *total)
{
    struct elmon_budget_loop *e = entry(b, tid, 0);
    *total = e ? e->left_out_total : 0;
    if (!e)
        return;
    if (e->left_out && b->window_start_mono_ns) {
        struct elmon_left_out lo;
        fill_left_out(b, e, now_mono_ns, &lo);
        emit(&lo, arg);
    }
    memset(e, 0, sizeof *e);
}

void elmon_budget_describe(const struct elmon_left_out *lo, char *out, size_t cap)
{
    double s = (double)lo->window_ns / 1e9;
    int n = snprintf(out, cap, "%llu span reports left out in the last %.*f s (limit ",
                     (unsigned long long)lo->left_out, s >= 10 ? 0 : 1, s);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (elmon_opt.reports_per_min)
        n += snprintf(out + n, cap - (size_t)n, "%llu per loop", (unsigned long long)elmon_opt.reports_per_min);
    if ((size_t)n < cap && elmon_opt.reports_per_min && elmon_opt.report_bytes_per_min)
        n += snprintf(out + n, cap - (size_t)n, " and ");
    if ((size_t)n < cap && elmon_opt.report_bytes_per_min)
        n += snprintf(out + n, cap - (size_t)n, "%llu bytes of this output",
                      (unsigned long long)elmon_opt.report_bytes_per_min);
    if ((size_t)n < cap)
        snprintf(out + n, cap - (size_t)n,
                 " per minute, ELMON_REPORTS_PER_MIN and ELMON_REPORT_BYTES_PER_MIN); "
                 "they are still counted in the summary and the metrics");
}

void elmon_budget_reset(struct elmon_budget *b)
{
    memset(b, 0, sizeof *b);
}
