/*
 * The human log sink (ELMON_LOG, through core/log.c): for each span report
 * a first line that names the span and its culprit, then the Python
 * frames, the native frames (a runtime's own folded into a count when
 * language frames name the code, unless ELMON_LOG_FRAMES=all) and the
 * cause; with ELMON_VERBOSE, one line per loop summary.
 *
 * Span lines are written within the report budget (budget.h); when a
 * window ends with spans left out, one line per loop says how many.
 *
 * Owns: two line buffers, the watchdog's and the exiting thread's (the
 * exiting thread may write beside a watchdog that did not stop in time),
 * and the log's report budget under budget_lock.
 * Threads: the watchdog; the exiting thread (ELMON_EMIT_HELD).
 * May not: wait on the log for long (core/log.c bounds every write), or
 * write while holding budget_lock (a write to a pipe nobody reads may
 * never return, and the exiting thread must not wait for it).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "budget.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "culprit.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sink.h"

enum { FRAMES_SHORT, FRAMES_ALL };

static char line_watchdog[16384], line_exit[16384];

/* The log's budget.  The lock is held only for the in-memory decision,
 * never across a write; the watchdog blocks every signal, so no handler
 * can interrupt it while it holds the lock. */
static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static struct elmon_budget budget;

/* The left-out lines of a window that ended, gathered under budget_lock
 * and written after it: a line for each of the first LEFT_OUT_LINES loops,
 * then one line adding up the others, so that these lines too stay few
 * when hundreds of loops flood.  The watchdog's alone: only it ends a
 * window (the exiting thread's spans count in the window that is open,
 * and each loop's summary gives its last window's line). */
#define LEFT_OUT_LINES 8
struct left_out_line {
    struct elmon_left_out lo;
    char thread[64];
};
static struct left_out_line rolled[LEFT_OUT_LINES];
static int n_rolled;
static uint64_t rolled_more_loops, rolled_more_spans;

static void keep_left_out(const struct elmon_left_out *lo, void *arg)
{
    (void)arg;
    if (n_rolled == LEFT_OUT_LINES) {
        rolled_more_loops++;
        rolled_more_spans += lo->left_out;
        return;
    }
    struct left_out_line *k = &rolled[n_rolled++];
    k->lo = *lo;
    snprintf(k->thread, sizeof k->thread, "%s", lo->thread);
    k->lo.thread = k->thread;
}

static void left_out_line(const struct elmon_left_out *lo)
{
    char words[512];
    elmon_budget_describe(lo, words, sizeof words);
    elmon_logf("pid %d tid %d (%s): %s", lo->pid, lo->tid, lo->thread, words);
}

/* Watchdog: end the window when it has run its 60 s, and write its lines. */
static void roll(uint64_t now_ns)
{
    pthread_mutex_lock(&budget_lock);
    n_rolled = 0;
    rolled_more_loops = rolled_more_spans = 0;
    elmon_budget_roll(&budget, now_ns, keep_left_out, NULL);
    pthread_mutex_unlock(&budget_lock);
    for (int i = 0; i < n_rolled; i++)
        left_out_line(&rolled[i].lo);
    if (rolled_more_loops)
        elmon_logf("%llu span reports of %llu more loops left out in the last minute (ELMON_REPORTS_PER_MIN, "
                   "ELMON_REPORT_BYTES_PER_MIN); they are still counted in the summary and the metrics",
                   (unsigned long long)rolled_more_spans, (unsigned long long)rolled_more_loops);
}

static int frames_mode(void)
{
    static int mode = -1;
    if (mode < 0) {
        static const char *const modes[] = {"short", "all", NULL};
        mode = elmon_env_enum("ELMON_LOG_FRAMES", modes, FRAMES_SHORT);
    }
    return mode;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static const char *severity(int critical)
{
    return critical ? "critical" : "warning";
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

static const char *str(const struct elmon_span_report *r, uint32_t off, const char *none)
{
    const char *s = elmon_span_str(r, off);
    return s && *s ? s : none;
}

static void native_frame(struct elmon_buf *out, const struct elmon_span_report *r, int i)
{
    const struct elmon_span_frame *f = &r->frames[i];
    elmon_buf_printf(out, "\n    #%-2d %s", i, str(r, f->function, "??"));
    if (f->file)
        elmon_buf_printf(out, " (%s:%d)", str(r, f->file, "?"), f->line);
    elmon_buf_printf(out, " [%s+0x%llx]", str(r, f->module, "?"), (unsigned long long)f->offset);
}

static void frames(struct elmon_buf *out, const struct elmon_span_report *r)
{
    for (int i = 0; i < r->n_py; i++)
        elmon_buf_printf(out, "\n    py %s (%s:%d)", str(r, r->py[i].function, "?"), str(r, r->py[i].file, "?"),
                         r->py[i].line);
    if (elmon_span_str(r, r->task))
        elmon_buf_printf(out, "\n    task: %s", elmon_span_str(r, r->task));
    /* Language frames name the code: the interpreter's or VM's own frames
     * between them say little, and are counted instead of listed. */
    int fold = frames_mode() == FRAMES_SHORT &&
               (r->n_py > 0 || r->culprit_kind == ELMON_CULPRIT_JIT);
    for (int i = 0; i < r->n_frames;) {
        int j = i;
        while (fold && j < r->n_frames && (r->frames[j].flags & ELMON_FRAME_VM))
            j++;
        if (j - i >= 2) {
            elmon_buf_printf(out, "\n    #%d-#%d: %d frames of %s (ELMON_LOG_FRAMES=all lists them)", i, j - 1,
                             j - i, elmon_base_name(str(r, r->frames[i].module, "?")));
            i = j;
            continue;
        }
        native_frame(out, r, i++);
    }
}

static void cause(struct elmon_buf *out, const struct elmon_span_report *r)
{
    const struct elmon_span_cause *k = &r->cause;
    elmon_buf_printf(out, "\n    cause: %s", k->cls[0] ? k->cls : "unknown");
    if (k->state)
        elmon_buf_printf(out, ", state %c", k->state);
    elmon_buf_printf(out, ", %s", k->syscall[0] ? k->syscall : k->nr == -1 ? "running" : "no system call");
    if (k->cpu_ms >= 0)
        elmon_buf_printf(out, ", cpu %.1f ms", k->cpu_ms);
    elmon_buf_printf(out, "; stack by %s", r->how[0] ? r->how : "none");
    const char *note = elmon_span_str(r, r->note);
    if (note && *note)
        elmon_buf_printf(out, " (%s)", note);
}

static void human_span(const struct elmon_span_report *r, int flags)
{
    if (!elmon_log_enabled())
        return;
    uint64_t now_ns = elmon_mono_ns();
    if (!(flags & ELMON_EMIT_HELD))
        roll(now_ns);
    struct elmon_buf out;
    if (flags & ELMON_EMIT_HELD)
        elmon_buf_init(&out, line_exit, sizeof line_exit);
    else
        elmon_buf_init(&out, line_watchdog, sizeof line_watchdog);
    if (r->phase == ELMON_SPAN_BEGIN)
        elmon_buf_printf(&out, "elmon: pid %d tid %d (%s): loop blocked for %.0f ms so far, still blocked [%s, %s]",
                         r->pid, r->tid, r->thread, ms(r->duration_ns), severity(r->critical),
                         elmon_poller_name(r->poller));
    else
        elmon_buf_printf(&out, "elmon: pid %d tid %d (%s): loop blocked %.1f ms%s [%s, %s]", r->pid, r->tid,
                         r->thread, ms(r->duration_ns), end_words(r->end), severity(r->critical),
                         elmon_poller_name(r->poller));
    const char *culprit = r->captured ? elmon_span_str(r, r->culprit) : NULL;
    elmon_buf_printf(&out, " culprit: %s", culprit && *culprit ? culprit : "not captured");
    if (r->captured) {
        frames(&out, r);
        cause(&out, r);
    }
    /* Charged as rendered, newline included (the log may cut a very long
     * line shorter: charging more than is written keeps the bound). */
    pthread_mutex_lock(&budget_lock);
    int admit = elmon_budget_admit(&budget, r, out.len + 1, now_ns);
    pthread_mutex_unlock(&budget_lock);
    if (admit)
        elmon_log_line(out.p, out.len);
}

static void keep_one(const struct elmon_left_out *lo, void *arg)
{
    struct left_out_line *k = arg;
    k->lo = *lo;
    snprintf(k->thread, sizeof k->thread, "%s", lo->thread);
    k->lo.thread = k->thread;
}

static void human_summary(const struct elmon_loop_snapshot *s, int exited)
{
    (void)exited;
    /* The loop's last window's left-out line, whether or not the summary
     * line itself is written (ELMON_VERBOSE). */
    struct left_out_line last = {.lo.left_out = 0};
    uint64_t left_out = 0;
    pthread_mutex_lock(&budget_lock);
    elmon_budget_loop_end(&budget, s->tid, elmon_mono_ns(), keep_one, &last, &left_out);
    pthread_mutex_unlock(&budget_lock);
    if (last.lo.left_out)
        left_out_line(&last.lo);
    if (!elmon_opt.verbose)
        return;
    uint64_t total = s->busy_ns + s->idle_ns;
    char left[64] = "";
    if (left_out)
        snprintf(left, sizeof left, " (%llu left out of this log)", (unsigned long long)left_out);
    elmon_logf("pid %d tid %d (%s): %llu turns, utilization %.1f%%, lag p99 %.1f ms max %.1f ms, %llu warning and "
               "%llu critical spans%s",
               s->pid, s->tid, s->thread, (unsigned long long)s->n_turns,
               total ? 100.0 * (double)s->busy_ns / (double)total : 0.0, ms(elmon_hist_quantile(&s->lag, 0.99)),
               ms(s->lag.max_ns), (unsigned long long)s->n_warning, (unsigned long long)s->n_critical, left);
}

/* Once a second: a window that has run its 60 s ends with its lines even
 * when no span comes to end it. */
static void human_tick(void)
{
    if (elmon_log_enabled())
        roll(elmon_mono_ns());
}

static void human_atfork_child(void)
{
    pthread_mutex_init(&budget_lock, NULL);
    elmon_budget_reset(&budget);
}

static const char *human_off(void)
{
    return elmon_log_enabled() ? NULL : "ELMON_LOG=off";
}

const struct elmon_sink elmon_sink_human = {
    .name = "log",
    .record = 1,
    .off = human_off,
    .span = human_span,
    .summary = human_summary,
    .tick = human_tick,
    .atfork_child = human_atfork_child,
};
