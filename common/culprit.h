/*
 * The culprit rule: which frame of a captured stack names the code that
 * blocked, and how it is written ("render_page (app.py:5)").  One rule for
 * every output: libelmon applies it when it builds a span report
 * (preload/interpret/span.c), and `elmon` applies the same code to an events
 * record that has frames but no culprit (cli/events.c).  Pure functions of
 * their arguments; any thread.
 */
#ifndef ELMON_CULPRIT_H
#define ELMON_CULPRIT_H

#include <stddef.h>
#include <stdint.h>

/* A frame as the rule reads it; strings may be NULL. */
struct elmon_frame_view {
    const char *module, *function, *file;
    int line;                      /* 0: unknown */
    uint64_t offset;
};

struct elmon_py_view {
    const char *file, *function;
    int line;
};

/* Never the culprit: libc, the loader, the vDSO, libelmon (by name, or
 * self_module: libelmon's own path, may be NULL) and a sanitizer's runtime
 * and interceptors. */
int elmon_frame_is_runtime(const char *module, const char *function, const char *self_module);

/* A language runtime's own native code: CPython's interpreter (libpython,
 * the python executable), the JVM (libjvm), Node's (libnode, the node
 * executable).  The human log folds these frames when language frames name
 * the code. */
int elmon_frame_is_vm(const char *module);

/* The index of the native frame to name, -1 when n is 0 (docs/STACKS.md). */
int elmon_culprit_frame(const struct elmon_frame_view *fr, int n, const char *self_module);

/* The culprit of a capture: the innermost Python frame, else the innermost
 * JIT-compiled function of a perf map, else the culprit frame.  Writes its
 * text into out (n bytes, NUL-terminated, cut to fit) and returns its kind
 * (enum elmon_culprit_kind, span.h); *index gets the frame it names, -1
 * for none. */
int elmon_culprit(const struct elmon_py_view *py, int n_py, const struct elmon_frame_view *fr, int n,
                  const char *self_module, char *out, size_t out_n, int *index);

/* The base name of a path ("app.py" of "/srv/app.py"); NULL for NULL. */
const char *elmon_base_name(const char *path);

#endif
