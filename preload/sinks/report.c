/*
 * Writing blocking spans and summaries: the human log lines and the JSON
 * Lines events file (schema in docs/EVENTS.md).  Runs on the watchdog and,
 * at exit, on the exiting thread; report_lock orders them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "elmon.h"
#include "log.h"
#include "outfile.h"
#include "report.h"

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int events_fd = -1;
static int events_state;         /* 0 not opened yet, 1 open, -1 failed or off */
static char record[256 * 1024];  /* one record; under report_lock */

static const char *severity(int critical)
{
    return critical ? "critical" : "warning";
}

static void events_open(void)
{
    if (events_state)
        return;
    events_state = -1;
    if (!elmon_opt.events_path)
        return;
    char path[4096];
    int fd = elmon_open_out(elmon_opt.events_path, path, sizeof path);
    if (fd < 0) {
        char mem[512];
        struct elmon_buf b;
        elmon_buf_init(&b, mem, sizeof mem);
        elmon_buf_puts(&b, "ELMON_EVENTS=");
        elmon_buf_quote_value(&b, elmon_opt.events_path, 200);
        elmon_buf_printf(&b, " cannot be created (%s); writing no events", strerror(-fd));
        elmon_warn("%s", mem);
        return;
    }
    events_fd = fd;
    events_state = 1;
}

static void events_write(struct elmon_buf *b)
{
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
        close(events_fd);
        events_fd = -1;
    }
}

static void json_common(struct elmon_buf *b, const char *type, int pid, int tid,
                        const char *thread, int poller)
{
    elmon_buf_printf(b, "{\"v\":%d,\"type\":\"%s\",\"pid\":%d,\"tid\":%d,\"thread\":",
                     ELMON_EVENTS_SCHEMA, type, pid, tid);
    elmon_buf_json_str(b, thread);
    elmon_buf_puts(b, ",\"process\":");
    elmon_buf_json_str(b, elmon_program());
    elmon_buf_printf(b, ",\"poller\":\"%s\"", elmon_poller_name(poller));
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* The human line is built in its own buffer and written after the writer
 * lock is released: a host whose stderr is a pipe nobody reads must not
 * keep the events file (or the exit summary) waiting.  The buffer is the
 * watchdog's; the exiting thread uses one of its own (below). */
static char human[16384];

/* The record in the events file; report_lock held. */
static void block_record(const struct elmon_block *b)
{
    struct elmon_buf out;
    elmon_buf_init(&out, record, sizeof record);
    json_common(&out, b->ongoing ? "block_begin" : "block", b->pid, b->tid, b->thread, b->poller);
    elmon_buf_printf(&out, ",\"turn\":%llu,\"start_unix_ns\":%llu,\"duration_ms\":%.3f,\"lag_ms\":%.3f,\"severity\":\"%s\"",
                     (unsigned long long)b->turn, (unsigned long long)b->start_unix_ns,
                     ms(b->duration_ns), ms(b->lag_ns), severity(b->critical));
    if (!b->ongoing)
        elmon_buf_printf(&out, ",\"end\":\"%s\"", elmon_end_name(b->end));
    if (elmon_capture_json && !b->no_capture)
        elmon_capture_json(b, &out);
    else
        elmon_buf_puts(&out, ",\"cause\":null,\"stack\":[],\"python\":[],\"culprit\":null");
    elmon_buf_puts(&out, "}");
    events_write(&out);
}

static const char *end_words(int end)
{
    switch (end) {
    case ELMON_END_LOOP_CLOSED: return " until its loop ended";
    case ELMON_END_THREAD_EXIT: return " until its thread exited";
    case ELMON_END_EXIT: return ", still blocked at exit";
    default: return "";
    }
}

/* The human line (the log has a timed lock of its own). */
static void block_line(const struct elmon_block *b)
{
    struct elmon_buf out;
    if (!elmon_log_enabled())
        return;
    /* At exit the exiting thread reports spans while the watchdog may still
     * be writing its own: it uses a buffer of its own (no capture text). */
    char exit_line[512];
    if (b->no_capture)
        elmon_buf_init(&out, exit_line, sizeof exit_line);
    else
        elmon_buf_init(&out, human, sizeof human);
    if (b->ongoing)
        elmon_buf_printf(&out, "elmon: pid %d tid %d (%s): loop blocked for %.0f ms so far, still blocked [%s, %s]",
                         b->pid, b->tid, b->thread, ms(b->duration_ns), severity(b->critical),
                         elmon_poller_name(b->poller));
    else
        elmon_buf_printf(&out, "elmon: pid %d tid %d (%s): loop blocked %.1f ms%s [%s, %s]",
                         b->pid, b->tid, b->thread, ms(b->duration_ns), end_words(b->end),
                         severity(b->critical), elmon_poller_name(b->poller));
    if (elmon_capture_human && !b->no_capture)
        elmon_capture_human(b, &out);
    elmon_log_line(out.p, out.len);
}

void elmon_report_block(const struct elmon_block *b)
{
    pthread_mutex_lock(&report_lock);
    block_record(b);
    pthread_mutex_unlock(&report_lock);
    block_line(b);
}

void elmon_report_block_held(const struct elmon_block *b)
{
    block_record(b);
    block_line(b);
}

void elmon_report_summary_held(const struct elmon_loop_snapshot *s, int exited)
{
    struct elmon_buf out;
    elmon_buf_init(&out, record, sizeof record);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t total = s->busy_ns + s->idle_ns;
    json_common(&out, "summary", s->pid, s->tid, s->thread, s->poller);
    elmon_buf_printf(&out,
                     ",\"start_unix_ns\":%llu,\"end_unix_ns\":%llu,\"exited\":%s,\"loops\":%llu,\"turns\":%llu"
                     ",\"busy_s\":%.6f,\"idle_s\":%.6f,\"utilization\":%.4f"
                     ",\"lag_p50_ms\":%.3f,\"lag_p90_ms\":%.3f,\"lag_p99_ms\":%.3f,\"lag_max_ms\":%.3f"
                     ",\"blocks_warning\":%llu,\"blocks_critical\":%llu,\"spans_dropped\":%llu"
                     ",\"events\":%llu,\"fds\":%llu,\"status\":\"%s\"}",
                     (unsigned long long)s->start_unix_ns,
                     (unsigned long long)((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec),
                     exited ? "true" : "false", (unsigned long long)s->n_loops, (unsigned long long)s->n_turns,
                     (double)s->busy_ns / 1e9, (double)s->idle_ns / 1e9,
                     total ? (double)s->busy_ns / (double)total : 0.0,
                     ms(elmon_hist_quantile(&s->lag, 0.50)), ms(elmon_hist_quantile(&s->lag, 0.90)),
                     ms(elmon_hist_quantile(&s->lag, 0.99)), ms(s->lag.max_ns),
                     (unsigned long long)s->n_warning, (unsigned long long)s->n_critical,
                     (unsigned long long)s->n_spans_dropped, (unsigned long long)s->n_events,
                     (unsigned long long)s->n_fds, elmon_status_name(s->recent_max_lag_ns));
    events_write(&out);
    if (elmon_opt.verbose)
        elmon_logf("pid %d tid %d (%s): %llu turns, utilization %.1f%%, lag p99 %.1f ms max %.1f ms, %llu warning and %llu critical spans",
                   s->pid, s->tid, s->thread, (unsigned long long)s->n_turns,
                   total ? 100.0 * (double)s->busy_ns / (double)total : 0.0,
                   ms(elmon_hist_quantile(&s->lag, 0.99)), ms(s->lag.max_ns),
                   (unsigned long long)s->n_warning, (unsigned long long)s->n_critical);
}

void elmon_report_summary(const struct elmon_loop_snapshot *s, int exited)
{
    pthread_mutex_lock(&report_lock);
    elmon_report_summary_held(s, exited);
    pthread_mutex_unlock(&report_lock);
}

int elmon_report_lock_timed(unsigned timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    dl.tv_sec += timeout_ms / 1000 + dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    return pthread_mutex_timedlock(&report_lock, &dl) == 0 ? 0 : -ETIMEDOUT;
}

void elmon_report_unlock(void)
{
    pthread_mutex_unlock(&report_lock);
}

/* The child writes to a file of its own when the path has %p, and appends
 * to the shared one otherwise; either way it reopens lazily, so a child that
 * never runs a loop creates nothing. */
void elmon_report_atfork_child(void)
{
    pthread_mutex_init(&report_lock, NULL);
    if (events_fd >= 0 && elmon_opt.events_path && strstr(elmon_opt.events_path, "%p")) {
        close(events_fd);
        events_fd = -1;
        events_state = 0;
    }
}
