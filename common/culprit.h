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

/* The module of a frame in JIT code that no perf map names: an address in
 * an anonymous executable mapping. */
#define ELMON_JIT_MODULE "[jit]"
/* How a culprit statement calls such code. */
#define ELMON_JIT_UNNAMED_TEXT "JIT code no perf map names"
/* A perf map (/tmp/perf-PID.map, its entries) or ELMON_JIT_MODULE. */
int elmon_frame_is_jit(const char *module);

/* Whose code a frame is, for the culprit rule (docs/STACKS.md). */
enum elmon_frame_class {
    ELMON_FR_APP = 0,          /* the application's native code */
    ELMON_FR_RUNTIME,          /* libc, the loader, the vDSO, libelmon, a sanitizer */
    ELMON_FR_VM,               /* a language runtime's native code (elmon_frame_is_vm) */
    ELMON_FR_JIT_APP,          /* JIT code the application wrote (a JavaScript function, a Java method) */
    ELMON_FR_JIT_LIBRARY,      /* JIT code of the runtime's own library (the JDK, Node's node:* modules) */
    ELMON_FR_JIT_RUNTIME,      /* a runtime's generated code (V8 builtins, HotSpot's interpreter and stubs) */
    ELMON_FR_JIT_UNNAMED,      /* JIT code no perf map names */
};
int elmon_frame_class(const struct elmon_frame_view *f, const char *self_module);
/* 1 when a frame is JIT code no perf map names. */
int elmon_frames_jit_unnamed(const struct elmon_frame_view *fr, int n);

/* The index of the application's native frame to name: the innermost
 * named one, else the innermost; -1 when there is none (docs/STACKS.md). */
int elmon_culprit_frame(const struct elmon_frame_view *fr, int n, const char *self_module);

/* The culprit of a capture: the innermost Python frame, else the innermost
 * JIT-compiled function of the application, else the application's native
 * frame (elmon_culprit_frame), else a statement of where in the runtime
 * the thread is ("in libjvm.so: os::PlatformEvent::park(long)").  Writes its
 * text into out (n bytes, NUL-terminated, cut to fit) and returns its kind
 * (enum elmon_culprit_kind, span.h); *index gets the frame it names, -1
 * for none. */
int elmon_culprit(const struct elmon_py_view *py, int n_py, const struct elmon_frame_view *fr, int n,
                  const char *self_module, char *out, size_t out_n, int *index);

/* The base name of a path ("app.py" of "/srv/app.py"); NULL for NULL. */
const char *elmon_base_name(const char *path);

#endif
