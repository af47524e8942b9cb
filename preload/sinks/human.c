/*
 * The human log sink (ELMON_LOG, through core/log.c): for each span report
 * a first line that names the span and its culprit, then the Python
 * frames, the native frames (a runtime's own folded into a count when
 * language frames name the code, unless ELMON_LOG_FRAMES=all) and the
 * cause; with ELMON_VERBOSE, one line per loop summary.
 *
 * Owns: two line buffers, the watchdog's and the exiting thread's (the
 * exiting thread may write beside a watchdog that did not stop in time).
 * Runs on: the watchdog; the exiting thread (ELMON_EMIT_HELD).
 * May not: wait on the log for long (core/log.c bounds every write).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "buf.h"
#include "config.h"
#include "culprit.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sink.h"

enum { FRAMES_SHORT, FRAMES_ALL };

static char line_watchdog[16384], line_exit[16384];

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
    elmon_log_line(out.p, out.len);
}

static void human_summary(const struct elmon_loop_snapshot *s, int exited)
{
    (void)exited;
    if (!elmon_opt.verbose)
        return;
    uint64_t total = s->busy_ns + s->idle_ns;
    elmon_logf("pid %d tid %d (%s): %llu turns, utilization %.1f%%, lag p99 %.1f ms max %.1f ms, %llu warning and "
               "%llu critical spans",
               s->pid, s->tid, s->thread, (unsigned long long)s->n_turns,
               total ? 100.0 * (double)s->busy_ns / (double)total : 0.0, ms(elmon_hist_quantile(&s->lag, 0.99)),
               ms(s->lag.max_ns), (unsigned long long)s->n_warning, (unsigned long long)s->n_critical);
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
};
