/*
 * The events sink: the JSON Lines file of ELMON_EVENTS (schema in
 * docs/EVENTS.md), one block_begin or block record per span report within
 * the report budget (budget.h), one left_out record per loop and window
 * with spans left out, and one summary per loop thread.
 *
 * Owns: the events descriptor, the record buffer and the file's report
 * budget.  Threads: the watchdog and the exiting thread, always under the
 * pipeline's writer lock (a locked sink, ticks included), which also
 * guards the buffer and the budget.
 * May not: write a record in more than one write(2) (parent and child
 * sharing a file must not interleave), or write half a record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "budget.h"
#include "clock.h"
#include "config.h"
#include "dl.h"
#include "fold.h"
#include "log.h"
#include "loop.h"
#include "outfile.h"
#include "ownfd.h"
#include "registry.h"
#include "sink.h"
#include "span_json.h"

static int events_fd = -1;
#define EVENTS_OPENING 2
static int events_state;         /* 0 not opened yet, 1 open, -1 failed or off, EVENTS_OPENING */
static int events_lost_warned;
static char record[256 * 1024];  /* one record; under the writer lock */
static struct elmon_budget budget; /* under the writer lock */

static const char *severity(int critical)
{
    return critical ? "critical" : "warning";
}

static void events_open(void)
{
    if (events_state)
        return;
    /* Opening: a fork in the middle (the watchdog opens, another thread
     * forks) leaves the child a state it must start over from. */
    events_state = EVENTS_OPENING;
    if (!elmon_opt.events_path) {
        events_state = -1;
        return;
    }
    char path[4096];
    int fd = elmon_open_out(elmon_opt.events_path, path, sizeof path);
    if (fd < 0) {
        char mem[512];
        struct elmon_buf b;
        elmon_buf_init(&b, mem, sizeof mem);
        elmon_buf_puts(&b, "ELMON_EVENTS=");
        elmon_buf_quote_value(&b, elmon_opt.events_path, 200);
        elmon_buf_printf(&b, " cannot be created (%s); writing no events", elmon_open_out_why(fd));
        elmon_warn("%s", mem);
        events_state = -1;
        return;
    }
    events_fd = fd;
    events_state = 1;
}

static void events_write(struct elmon_buf *b)
{
    if (events_state == 1 && !elmon_out_usable(&events_fd, "ELMON_EVENTS", &events_lost_warned))
        events_state = 0;
    events_open();
    if (events_fd < 0)
        return;
    if (b->truncated) {
        elmon_warn("an event record did not fit in %zu bytes and was dropped", sizeof record);
        return;
    }
    elmon_buf_putn(b, "\n", 1);
    /* O_APPEND and one write per record: lines from a parent and a child
     * sharing a file do not interleave. */
    int rc = elmon_write_all(events_fd, b->p, b->len);
    if (rc < 0 && events_state == 1) {
        events_state = -1;
        elmon_warn("writing ELMON_EVENTS failed (%s); writing no more events", strerror(-rc));
        elmon_own_release(events_fd);
        events_fd = -1;
    }
}

static void json_common(struct elmon_buf *b, const char *type, int pid, int tid, const char *thread, int poller)
{
    elmon_buf_printf(b, "{\"v\":%d,\"type\":\"%s\",\"pid\":%d,\"tid\":%d,\"thread\":", ELMON_EVENTS_SCHEMA, type,
                     pid, tid);
    elmon_buf_json_str(b, thread);
    elmon_buf_puts(b, ",\"process\":");
    elmon_buf_json_str(b, elmon_program());
    elmon_buf_printf(b, ",\"poller\":\"%s\"", elmon_poller_name(poller));
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static uint64_t unix_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* A left_out record: its own small buffer, as it may be written between a
 * span's rendering and its write. */
static void left_out_record(const struct elmon_left_out *lo, void *arg)
{
    (void)arg;
    char mem[1024];
    struct elmon_buf out;
    elmon_buf_init(&out, mem, sizeof mem);
    json_common(&out, "left_out", lo->pid, lo->tid, lo->thread, lo->poller);
    elmon_buf_printf(&out, ",\"start_unix_ns\":%llu,\"end_unix_ns\":%llu,\"reports_left_out\":%llu}",
                     (unsigned long long)lo->start_unix_ns, (unsigned long long)unix_now_ns(),
                     (unsigned long long)lo->left_out);
    events_write(&out);
}

static void events_span(const struct elmon_span_report *r, int flags)
{
    (void)flags;
    events_open();
    if (events_fd < 0)
        return;
    uint64_t now_ns = elmon_mono_ns();
    elmon_budget_roll(&budget, now_ns, left_out_record, NULL);
    struct elmon_buf out;
    elmon_buf_init(&out, record, sizeof record);
    int begin = r->phase == ELMON_SPAN_BEGIN;
    json_common(&out, begin ? "block_begin" : "block", r->pid, r->tid, r->thread, r->poller);
    /* duration_ms as elmon_ms3 gives it: the folded weights of
     * ELMON_FOLDED and `elmon report --folded` come from this value. */
    elmon_buf_printf(&out, ",\"turn\":%llu,\"start_unix_ns\":%llu,\"duration_ms\":%.3f,\"lag_ms\":%.3f,\"severity\":\"%s\"",
                     (unsigned long long)r->turn, (unsigned long long)r->start_unix_ns, elmon_ms3(r->duration_ns),
                     ms(r->lag_ns), severity(r->critical));
    if (!begin)
        elmon_buf_printf(&out, ",\"end\":\"%s\"", elmon_end_name(r->end));
    elmon_span_json_members(&out, r);
    elmon_buf_puts(&out, "}");
    /* A record too long is dropped with a warning by events_write. */
    if (!out.truncated && !elmon_budget_admit(&budget, r, out.len + 1, now_ns))
        return;
    events_write(&out);
}

static void events_summary(const struct elmon_loop_snapshot *s, int exited)
{
    /* Before the summary, the left_out record of its last window. */
    uint64_t left_out = 0;
    elmon_budget_loop_end(&budget, s->tid, elmon_mono_ns(), left_out_record, NULL, &left_out);
    struct elmon_buf out;
    elmon_buf_init(&out, record, sizeof record);
    uint64_t total = s->busy_ns + s->idle_ns;
    json_common(&out, "summary", s->pid, s->tid, s->thread, s->poller);
    elmon_buf_printf(&out,
                     ",\"start_unix_ns\":%llu,\"end_unix_ns\":%llu,\"exited\":%s,\"loops\":%llu,\"turns\":%llu"
                     ",\"busy_s\":%.6f,\"idle_s\":%.6f,\"utilization\":%.4f"
                     ",\"lag_p50_ms\":%.3f,\"lag_p90_ms\":%.3f,\"lag_p99_ms\":%.3f,\"lag_max_ms\":%.3f"
                     ",\"blocks_warning\":%llu,\"blocks_critical\":%llu,\"spans_dropped\":%llu,\"reports_left_out\":%llu"
                     ",\"events\":%llu,\"fds\":%llu,\"status\":\"%s\"",
                     (unsigned long long)s->start_unix_ns,
                     (unsigned long long)unix_now_ns(),
                     exited ? "true" : "false", (unsigned long long)s->n_loops, (unsigned long long)s->n_turns,
                     (double)s->busy_ns / 1e9, (double)s->idle_ns / 1e9,
                     total ? (double)s->busy_ns / (double)total : 0.0,
                     ms(elmon_hist_quantile(&s->lag, 0.50)), ms(elmon_hist_quantile(&s->lag, 0.90)),
                     ms(elmon_hist_quantile(&s->lag, 0.99)), ms(s->lag.max_ns),
                     (unsigned long long)s->n_warning, (unsigned long long)s->n_critical,
                     (unsigned long long)s->n_spans_dropped, (unsigned long long)left_out,
                     (unsigned long long)s->n_events,
                     (unsigned long long)s->n_fds, elmon_status_name(s->recent_max_lag_ns));
    /* The thresholds the spans were judged by, and the lag histogram of
     * every turn (its non-empty buckets), so that a report of the file
     * alone can draw both (`elmon report --html`). */
    elmon_buf_printf(&out, ",\"block_ms\":%llu,\"critical_ms\":%llu,\"lag_hist\":[",
                     (unsigned long long)elmon_opt.block_ms, (unsigned long long)elmon_opt.critical_ms);
    int first = 1;
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        if (!s->lag.counts[i])
            continue;
        elmon_buf_printf(&out, "%s[%llu,%llu]", first ? "" : ",", (unsigned long long)elmon_hist_bucket_lo(i),
                         (unsigned long long)s->lag.counts[i]);
        first = 0;
    }
    elmon_buf_puts(&out, "]}");
    events_write(&out);
}

/* The child writes to a file of its own when the path has %p, and appends
 * to the shared one otherwise; either way it reopens lazily, so a child that
 * never runs a loop creates nothing. */
static void events_atfork_child(void)
{
    /* The child's loops are its own, and so is its budget. */
    elmon_budget_reset(&budget);
    if (events_fd >= 0 && elmon_opt.events_path && strstr(elmon_opt.events_path, "%p")) {
        elmon_own_release(events_fd);
        events_fd = -1;
        events_state = 0;
    }
    if (events_state == EVENTS_OPENING)
        events_state = 0;
}

/* Once a second: a window that has run its 60 s ends, with its left_out
 * records, even when no span comes to end it. */
static void events_tick(void)
{
    if (events_fd >= 0)
        elmon_budget_roll(&budget, elmon_mono_ns(), left_out_record, NULL);
}

static const char *events_off(void)
{
    return !elmon_opt.events_path ? "ELMON_EVENTS unset" : events_state < 0 ? "the file cannot be written" : NULL;
}

const struct elmon_sink elmon_sink_events = {
    .name = "events",
    .record = 1,
    .locked = 1,
    .off = events_off,
    .span = events_span,
    .summary = events_summary,
    .tick = events_tick,
    .atfork_child = events_atfork_child,
};
