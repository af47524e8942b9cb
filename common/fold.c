/*
 * The folded-stack format (fold.h).
 */
#include <stdio.h>
#include <string.h>
#include "fold.h"

static void fold_name(struct elmon_buf *b, const char *s)
{
    for (; s && *s; s++)
        elmon_buf_putn(b, *s == ';' || *s == '\n' || *s == '\r' ? ":" : s, 1);
}

void elmon_fold_stack(struct elmon_buf *out, const char *process, const struct elmon_py_view *py, int n_py,
                      const struct elmon_frame_view *fr, int n, const char *syscall)
{
    fold_name(out, process && *process ? process : "?");
    if (n_py > 0) {
        for (int i = n_py - 1; i >= 0; i--) {
            elmon_buf_putn(out, ";", 1);
            fold_name(out, py[i].function ? py[i].function : "?");
            elmon_buf_puts(out, " (");
            fold_name(out, py[i].file ? elmon_base_name(py[i].file) : "?");
            elmon_buf_puts(out, ")");
        }
    } else if (n > 0) {
        for (int i = n - 1; i >= 0; i--) {
            const struct elmon_frame_view *f = &fr[i];
            elmon_buf_putn(out, ";", 1);
            if (f->function && *f->function) {
                fold_name(out, f->function);
            } else {
                fold_name(out, elmon_base_name(f->module ? f->module : "?"));
                elmon_buf_printf(out, "+0x%llx", (unsigned long long)f->offset);
            }
        }
    } else if (syscall && *syscall) {
        elmon_buf_puts(out, ";[");
        fold_name(out, syscall);
        elmon_buf_puts(out, "]");
    } else {
        elmon_buf_puts(out, ";[not captured]");
    }
}

long elmon_fold_weight(double duration_ms)
{
    /* No libm: libelmon.so links libc alone.  NaN and nonsense weigh 1. */
    if (!(duration_ms >= 0.5 && duration_ms < 9.2e18))
        return 1;
    return (long)(duration_ms + 0.5);
}

double elmon_ms3(uint64_t ns)
{
    return (double)((ns + 500) / 1000) / 1000.0;
}
