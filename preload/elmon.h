/*
 * Process-wide start-up, fork and exit of libelmon (elmon.c).
 */
#ifndef ELMON_ELMON_H
#define ELMON_ELMON_H

#include <stdint.h>

#define ELMON_VERSION "0.1.0"
#define ELMON_EVENTS_SCHEMA 1

/* Module fork/exit hooks.  Weak: a module that is not linked in is skipped. */
void elmon_registry_atfork_child(void);

#endif
