/*
 * interpret/symbolize.c: naming raw addresses (module, offset, build-id,
 * function, file:line) with elfutils' libdwfl (dlopen'ed), and JIT code
 * from perf maps (/tmp/perf-PID.map); C++ and Rust names demangled with
 * libiberty's demangler (linked in).
 *
 * Owns: the libdwfl session and the perf map table.  Threads: the thread
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
    const char *function;        /* demangled when it was a C++ or Rust symbol */
    const char *symbol;          /* the raw symbol when function is its demangling, else NULL */
    const char *file;
    int line;                    /* 0: unknown */
};

/* The mapping that held an address when its stack was taken (record/
 * capture.c reads /proc/self/maps then). */
struct elmon_sym_where {
    int found;                   /* 0: unknown; the module lists decide */
    uint64_t start, file_off;
    const char *path;            /* NULL: anonymous memory (JIT code) */
};

int elmon_sym_load(void);
/* is_return: addr is a return address (look up addr - 1).  w, when found,
 * overrules the module lists: an address in anonymous memory that no perf
 * map names is ELMON_JIT_MODULE's, one in a file another module claims is
 * that file's. */
void elmon_sym_frame(struct elmon_arena *a, uintptr_t addr, int is_return, const struct elmon_sym_where *w,
                     struct elmon_frame *f);
void elmon_sym_atfork_child(void);
/* One line of a JIT's perf map (/tmp/perf-PID.map): "START SIZE name",
 * hex. */
struct jit_sym {
    uintptr_t start, end;
    char *name;
};
/* The demangling of a C++ (_Z...) or Rust (_R..., and legacy _ZN...17h<hash>E)
 * symbol, parameters included, cut to ELMON_SYM_NAME_MAX bytes; NULL when
 * name is not one (malloc'd). */
#define ELMON_SYM_NAME_MAX 480
char *elmon_sym_demangle(const char *name);
#ifdef ELMON_UNITTEST
#include <stdio.h>
void jit_read(FILE *f);
const struct jit_sym *jit_lookup(uintptr_t addr);
const struct jit_sym *jit_table(size_t *n);
#endif

#endif
