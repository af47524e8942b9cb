/*
 * The folded-stack format (flamegraph.pl, inferno, speedscope): one line
 * "process;outermost;...;innermost WEIGHT", weight in milliseconds.  One
 * format for both writers: libelmon's ELMON_FOLDED file (one line per span,
 * preload/sinks/folded.c) and `elmon report --folded` (one line per
 * distinct stack, weights summed, cli/summary.c), so that summing the
 * file's lines by stack gives exactly the report.  Pure; any thread.
 */
#ifndef ELMON_FOLD_H
#define ELMON_FOLD_H

#include <stdint.h>
#include "buf.h"
#include "culprit.h"

/* The stack part of a line: the process name, then the Python frames when
 * there are any ("function (file.py)"), else the native ones ("function",
 * or "module+0xOFF" unnamed), outermost first; a span with neither is
 * "process;[syscall]" when the thread was in one, else
 * "process;[not captured]".  ';' and line breaks inside a name become
 * ':' (';' separates frames). */
void elmon_fold_stack(struct elmon_buf *out, const char *process, const struct elmon_py_view *py, int n_py,
                      const struct elmon_frame_view *fr, int n, const char *syscall);

/* A span's weight: its duration in ms, rounded, at least 1.  duration_ms
 * as the events file writes it (three decimals, elmon_ms3). */
long elmon_fold_weight(double duration_ms);

/* ns as milliseconds with three decimals, exactly as printed with %.3f
 * and read back: the value every output derives its milliseconds from. */
double elmon_ms3(uint64_t ns);

#endif
