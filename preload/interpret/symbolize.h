/*
 * interpret/symbolize.c: naming raw addresses (module, offset, build-id,
 * function, file:line) with elfutils' libdwfl (dlopen'ed), and JIT code
 * from perf maps (/tmp/perf-PID.map).
 *
 * Owns: the libdwfl session and the perf map table.  Runs on: the thread
 * that builds span reports (the watchdog, or the exiting thread once the
 * watchdog has stopped): libdwfl is not thread-safe, and only one of them
 * builds at a time.
 * May not: run in a signal handler, or load anything through debuginfod.
 */
#ifndef ELMON_SYMBOLIZE_H
#define ELMON_SYMBOLIZE_H

#include <stdint.h>
#include "buf.h"

/* A symbolized frame; strings are in the arena passed to elmon_sym_frame. */
struct elmon_frame {
    uintptr_t addr;
    uintptr_t offset;            /* addr minus the module's load base */
    const char *module;
    const char *build_id;        /* hex */
    const char *function;
    const char *file;
    int line;                    /* 0: unknown */
};

int elmon_sym_load(void);
/* is_return: addr is a return address (look up addr - 1). */
void elmon_sym_frame(struct elmon_arena *a, uintptr_t addr, int is_return, struct elmon_frame *f);
void elmon_sym_atfork_child(void);
/* One line of a JIT's perf map (/tmp/perf-PID.map): "START SIZE name",
 * hex. */
struct jit_sym {
    uintptr_t start, end;
    char *name;
};
#ifdef ELMON_UNITTEST
#include <stdio.h>
void jit_read(FILE *f);
const struct jit_sym *jit_lookup(uintptr_t addr);
const struct jit_sym *jit_table(size_t *n);
#endif

#endif
