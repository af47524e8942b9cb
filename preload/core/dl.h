/*
 * core/dl.c: dlopen for libelmon's own libraries (libunwind, libdw, the
 * exporter) and their first initialisation, serialised with fork.
 *
 * Owns: the load lock and the torn flag.  Threads: the watchdog (loads),
 * the forking thread (the atfork handlers).
 * May not: load anything from a loop thread's wait or from a handler.
 */
#ifndef ELMON_DL_H
#define ELMON_DL_H

#include "version.h"

/* NULL in a child forked while a load was stuck (elmon_dl_torn). */
void *elmon_dlopen(const char *name, int flags);
extern int elmon_dl_torn;
/* init(arg) under the load lock, so that no fork happens while a library
 * it calls holds that library's locks (the exporter's start: libcurl's and
 * OpenSSL's one-time set-up).  init's answer, or -1 in a torn child. */
int elmon_dl_init(int (*init)(void *arg), void *arg);
void elmon_dl_atfork_prepare(void);
void elmon_dl_atfork_parent(void);
void elmon_dl_atfork_child(void);

#endif
