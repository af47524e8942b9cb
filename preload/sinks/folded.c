/*
 * The folded-stack sink (ELMON_FOLDED): one line per ended span, in the
 * format of common/fold.h, the same `elmon report --folded` prints, so
 * that summing this file's lines by stack gives exactly the report.
 *
 * Owns: the folded descriptor.  Threads: the watchdog (a hook, not a
 * record: not at _exit, not beside a running watchdog).
 * May not: write half a line.
 */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "fold.h"
#include "log.h"
#include "outfile.h"
#include "ownfd.h"
#include "sink.h"

static int folded_fd = -1, folded_state;   /* 0 not opened, 1 open, -1 off or failed */
static int folded_lost_warned;
static char line[32768];

static void folded_span(const struct elmon_span_report *r, int flags)
{
    (void)flags;
    const char *path = elmon_env_str("ELMON_FOLDED");
    if (r->phase != ELMON_SPAN_END || !path || folded_state < 0)
        return;
    if (folded_state == 1 && !elmon_out_usable(&folded_fd, "ELMON_FOLDED", &folded_lost_warned))
        folded_state = 0;
    if (!folded_state) {
        char p[4096];
        folded_fd = elmon_open_out(path, p, sizeof p);
        folded_state = folded_fd >= 0 ? 1 : -1;
        if (folded_fd < 0) {
            elmon_warn("ELMON_FOLDED file cannot be created (%s); writing no folded stacks", elmon_open_out_why(folded_fd));
            return;
        }
    }
    struct elmon_py_view py[ELMON_SPAN_MAX_PY];
    struct elmon_frame_view fr[ELMON_SPAN_MAX_FRAMES];
    int n_py = r->captured ? r->n_py : 0, n = r->captured ? r->n_frames : 0;
    for (int i = 0; i < n_py; i++)
        py[i] = (struct elmon_py_view){elmon_span_str(r, r->py[i].file), elmon_span_str(r, r->py[i].function),
                                       r->py[i].line};
    for (int i = 0; i < n; i++) {
        const struct elmon_span_frame *f = &r->frames[i];
        fr[i] = (struct elmon_frame_view){elmon_span_str(r, f->module), elmon_span_str(r, f->function),
                                          elmon_span_str(r, f->file), f->line, f->offset};
    }
    struct elmon_buf out;
    elmon_buf_init(&out, line, sizeof line);
    elmon_fold_stack(&out, elmon_program(), py, n_py, fr, n, r->captured ? r->cause.syscall : NULL);
    elmon_buf_printf(&out, " %ld\n", elmon_fold_weight(elmon_ms3(r->duration_ns)));
    if (!out.truncated && elmon_write_all(folded_fd, out.p, out.len) < 0) {
        elmon_warn("writing ELMON_FOLDED failed; writing no more folded stacks");
        elmon_own_release(folded_fd);
        folded_fd = -1;
        folded_state = -1;
    }
}

static void folded_atfork_child(void)
{
    const char *path = elmon_env_str("ELMON_FOLDED");
    if (folded_fd >= 0 && path && strstr(path, "%p")) {
        elmon_own_release(folded_fd);
        folded_fd = -1;
        folded_state = 0;
    }
}

static const char *folded_off(void)
{
    return !elmon_env_str("ELMON_FOLDED") ? "ELMON_FOLDED unset" : folded_state < 0 ? "the file cannot be written" : NULL;
}

const struct elmon_sink elmon_sink_folded = {
    .name = "folded",
    .off = folded_off,
    .span = folded_span,
    .atfork_child = folded_atfork_child,
};
