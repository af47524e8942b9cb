/*
 * record/pylayout.h: where CPython keeps what a stack reader needs, per
 * version: the runtime's list of interpreters, their thread states, the
 * frame chain, code objects, str and bytes objects.
 *
 * Owns: the built-in tables for 3.8-3.12 and the reading of the offsets
 * 3.13 and 3.14 publish at the start of _PyRuntime (_Py_DebugOffsets).
 * Threads: the watchdog (record/pyframes.c), and tests/pylayout_dump.
 * May not: read the host's memory itself (the caller hands it the bytes)
 * or guess: a version with no table and no valid published offsets is
 * refused.
 *
 * tests/test_pyframes.c (layout) checks every table against the internal headers of
 * each installed interpreter (tests/pylayout_probe.c), so no offset here is
 * copied by hand from memory.
 */
#ifndef ELMON_PYLAYOUT_H
#define ELMON_PYLAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* How a frame says which instruction it is at, and how the line table is
 * read. */
enum elmon_py_lines {
    ELMON_PY_LNOTAB = 1,     /* 3.8-3.9: co_lnotab, f_lasti in bytes */
    ELMON_PY_LINETABLE,      /* 3.10: co_linetable pairs, f_lasti in code units */
    ELMON_PY_LOCATIONS,      /* 3.11+: the location table, instruction pointer into co_code_adaptive */
};

#define ELMON_PY_NONE (-1)   /* an offset the version does not have */

struct elmon_pylayout {
    int minor;                    /* 3.minor */
    int lines;                    /* enum elmon_py_lines */
    int frame_objects;            /* 1: 3.8-3.10, frames are PyFrameObjects */
    int exec_tag_bits;            /* low bits of the frame's code pointer that tag it (3.14: 3) */
    /* _PyRuntimeState, PyInterpreterState, PyThreadState */
    int32_t rt_interp_head, is_next, is_tstate_head;
    int32_t ts_next, ts_interp, ts_frame, cf_current, ts_thread_id, ts_native_id;
    /* the frame: PyFrameObject (3.8-3.10) or _PyInterpreterFrame */
    int32_t fr_back, fr_code, fr_lasti, fr_instr, fr_owner;
    /* PyCodeObject */
    int32_t co_filename, co_name, co_qualname, co_linetable, co_firstlineno, co_flags, co_code_adaptive;
    /* objects */
    int32_t ob_type, var_size, bytes_sval;
    int32_t uni_length, uni_state, uni_ascii_size, uni_compact_size;
    int32_t uni_kind_shift, uni_compact_bit, uni_ascii_bit;
};

/* The table built in for 3.minor (8 to 12), else NULL. */
const struct elmon_pylayout *elmon_pylayout_builtin(int minor);

/* Bytes of _PyRuntime a reader hands to elmon_pylayout_published. */
#define ELMON_PY_DEBUG_BYTES 1024

/* The layout from the offsets published at the start of _PyRuntime (3.13
 * and 3.14): 0, or -1 with why set (no cookie, a version this code does not
 * know, a free-threaded build, sizes that do not add up).  *version gets
 * PY_VERSION_HEX when the cookie is there. */
int elmon_pylayout_published(const unsigned char *rt, size_t n, struct elmon_pylayout *out,
                             unsigned long *version, const char **why);

/* "name value" lines, one per field, in the probe's order and names
 * (tests/pylayout_probe.c); the version's absent fields are left out. */
void elmon_pylayout_print(const struct elmon_pylayout *L, void (*line)(const char *name, long value, void *arg),
                          void *arg);

#endif
