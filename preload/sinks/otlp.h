/*
 * sinks/otlp.c: the OTLP sink.  Decides from the OTEL_* variables whether
 * anything is exported at all, loads libelmon-exporter.so (dlopen, its ABI
 * in common/export_api.h) and hands it each ended span's report.
 *
 * Owns: the exporter's ops table and the export plan.  Threads: the
 * watchdog (start, span), the exiting thread (shutdown), the forking
 * thread (atfork child).
 * May not: load the exporter when no signal is to be exported, or bind its
 * libraries to the host's copies (see allocator_is_libc).
 */
#ifndef ELMON_OTLP_H
#define ELMON_OTLP_H

#include "export_api.h"

/* Which signals go where; decided once, from the environment. */
void elmon_export_plan(struct elmon_export_plan *out);
#ifdef ELMON_UNITTEST
/* One signal's sinks from its OTEL_*_EXPORTER list. */
int sink_for(const char *var, int have_endpoint);
void plan_from_env(struct elmon_export_plan *out);
int allocator_is_libc(void);
#endif

#endif
