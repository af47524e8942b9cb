/*
 * A span report's capture as JSON (span_json.h).
 */
#include <string.h>
#include "span_json.h"

static void str_or_null(struct elmon_buf *out, const char *s)
{
    if (s && *s)
        elmon_buf_json_str(out, s);
    else
        elmon_buf_puts(out, "null");
}

static void num_or_null(struct elmon_buf *out, const char *fmt, double v)
{
    if (v >= 0)
        elmon_buf_printf(out, fmt, v);
    else
        elmon_buf_puts(out, "null");
}

void elmon_span_json_cause(struct elmon_buf *out, const struct elmon_span_report *r)
{
    if (!r->captured) {
        elmon_buf_puts(out, "null");
        return;
    }
    const struct elmon_span_cause *k = &r->cause;
    char state[2] = {k->state, 0};
    elmon_buf_puts(out, "{\"class\":");
    str_or_null(out, k->cls[0] ? k->cls : "unknown");
    elmon_buf_puts(out, ",\"state\":");
    str_or_null(out, state);
    elmon_buf_puts(out, ",\"syscall\":");
    str_or_null(out, k->syscall);
    elmon_buf_puts(out, ",\"cpu_ms\":");
    num_or_null(out, "%.3f", k->cpu_ms);
    elmon_buf_puts(out, ",\"capture\":");
    str_or_null(out, r->how[0] ? r->how : "none");
    elmon_buf_puts(out, ",\"note\":");
    str_or_null(out, elmon_span_str(r, r->note));
    elmon_buf_puts(out, ",\"stack_ms\":");
    num_or_null(out, "%.3f", r->stack_ms);
    elmon_buf_puts(out, ",\"handler_us\":");
    num_or_null(out, "%.1f", r->handler_us);
    elmon_buf_puts(out, ",\"handler_cpu_us\":");
    num_or_null(out, "%.1f", r->handler_cpu_us);
    elmon_buf_puts(out, ",\"python_read_us\":");
    num_or_null(out, "%.1f", r->py_read_us);
    elmon_buf_puts(out, "}");
}

void elmon_span_json_stack(struct elmon_buf *out, const struct elmon_span_report *r)
{
    elmon_buf_puts(out, "[");
    for (int i = 0; r->captured && i < r->n_frames && i < ELMON_SPAN_MAX_FRAMES; i++) {
        const struct elmon_span_frame *f = &r->frames[i];
        elmon_buf_printf(out, "%s{\"addr\":\"0x%llx\",\"module\":", i ? "," : "", (unsigned long long)f->addr);
        str_or_null(out, elmon_span_str(r, f->module));
        elmon_buf_puts(out, ",\"build_id\":");
        str_or_null(out, elmon_span_str(r, f->build_id));
        elmon_buf_printf(out, ",\"offset\":\"0x%llx\",\"function\":", (unsigned long long)f->offset);
        str_or_null(out, elmon_span_str(r, f->function));
        elmon_buf_puts(out, ",\"symbol\":");
        str_or_null(out, elmon_span_str(r, f->symbol));
        elmon_buf_puts(out, ",\"file\":");
        str_or_null(out, elmon_span_str(r, f->file));
        if (f->line)
            elmon_buf_printf(out, ",\"line\":%d}", f->line);
        else
            elmon_buf_puts(out, ",\"line\":null}");
    }
    elmon_buf_puts(out, "]");
}

void elmon_span_json_python(struct elmon_buf *out, const struct elmon_span_report *r)
{
    elmon_buf_puts(out, "[");
    for (int i = 0; r->captured && i < r->n_py && i < ELMON_SPAN_MAX_PY; i++) {
        const struct elmon_span_pyframe *p = &r->py[i];
        elmon_buf_puts(out, i ? ",{\"file\":" : "{\"file\":");
        str_or_null(out, elmon_span_str(r, p->file));
        elmon_buf_printf(out, ",\"line\":%d,\"function\":", p->line);
        str_or_null(out, elmon_span_str(r, p->function));
        elmon_buf_puts(out, "}");
    }
    elmon_buf_puts(out, "]");
}

void elmon_span_json_members(struct elmon_buf *out, const struct elmon_span_report *r)
{
    elmon_buf_puts(out, ",\"cause\":");
    elmon_span_json_cause(out, r);
    elmon_buf_puts(out, ",\"stack\":");
    elmon_span_json_stack(out, r);
    elmon_buf_puts(out, ",\"python\":");
    elmon_span_json_python(out, r);
    elmon_buf_puts(out, ",\"task\":");
    str_or_null(out, r->captured ? elmon_span_str(r, r->task) : NULL);
    elmon_buf_puts(out, ",\"culprit\":");
    str_or_null(out, r->captured ? elmon_span_str(r, r->culprit) : NULL);
}
