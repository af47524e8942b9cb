/*
 * Process-wide start-up, fork and exit of libelmon (elmon.c).
 */
#ifndef ELMON_ELMON_H
#define ELMON_ELMON_H

#include <stdint.h>

#include "version.h"

/* dlopen for libelmon's own libraries, serialised with fork (dl.c); NULL
 * in a child forked while a load was stuck (elmon_dl_torn). */
void *elmon_dlopen(const char *name, int flags);
extern int elmon_dl_torn;
void elmon_dl_atfork_prepare(void);
void elmon_dl_atfork_parent(void);
void elmon_dl_atfork_child(void);

/* 0 in a vfork child (or a raw clone of the process): it shares libelmon's
 * memory with its parent without the atfork handlers having run, and must
 * change nothing in it.  One getpid system call (elmon.c, preload only). */
int elmon_same_process(void);

/* Module fork/exit hooks.  Weak: a module that is not linked in is skipped. */
void elmon_registry_atfork_child(void);

#endif
