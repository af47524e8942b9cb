/*
 * A span report's capture as JSON (docs/EVENTS.md: cause, stack, python,
 * culprit): the events file writes these members into each block record,
 * and the exporter sends cause, stack and python as attribute values
 * (docs/EXPORT.md).  Both render the same report with this code.  Pure;
 * any thread.
 */
#ifndef ELMON_SPAN_JSON_H
#define ELMON_SPAN_JSON_H

#include "buf.h"
#include "span.h"

/* ,"cause":...,"stack":[...],"python":[...],"culprit":... */
void elmon_span_json_members(struct elmon_buf *out, const struct elmon_span_report *r);
/* Each value alone: an object or null, and two arrays ([] when empty). */
void elmon_span_json_cause(struct elmon_buf *out, const struct elmon_span_report *r);
void elmon_span_json_stack(struct elmon_buf *out, const struct elmon_span_report *r);
void elmon_span_json_python(struct elmon_buf *out, const struct elmon_span_report *r);

#endif
