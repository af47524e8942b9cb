/*
 * The truth libelmon's CPython layouts (preload/record/pylayout.c) are
 * checked against: compiled by tests/test_pyframes.c against one installed
 * interpreter's own headers, internal ones included, it prints each offset
 * libelmon uses as "name value", in elmon_pylayout_print's names.  The str
 * state bits, which offsetof cannot give, are found by setting each field
 * of a zeroed object.
 *
 *   cc -I<prefix>/include/python3.X -I<prefix>/include/python3.X/internal \
 *      pylayout_probe.c -o probe && ./probe
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if PY_VERSION_HEX >= 0x03090000
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#else
#include "internal/pycore_pystate.h"
#endif
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#else
#include <frameobject.h>
#endif
#define P(name, v) printf("%s %ld\n", name, (long)(v))
int main(void)
{
    printf("version %d.%d\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    P("rt_interp_head", offsetof(_PyRuntimeState, interpreters.head));
    P("is_next", offsetof(PyInterpreterState, next));
#if PY_VERSION_HEX >= 0x030B0000
    P("is_tstate_head", offsetof(PyInterpreterState, threads.head));
#else
    P("is_tstate_head", offsetof(PyInterpreterState, tstate_head));
#endif
    P("ts_next", offsetof(PyThreadState, next));
    P("ts_interp", offsetof(PyThreadState, interp));
#if PY_VERSION_HEX >= 0x030D0000
    P("ts_frame", offsetof(PyThreadState, current_frame));
#elif PY_VERSION_HEX >= 0x030B0000
    P("ts_frame", offsetof(PyThreadState, cframe));
    P("cf_current", offsetof(_PyCFrame, current_frame));
#else
    P("ts_frame", offsetof(PyThreadState, frame));
#endif
    P("ts_thread_id", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX >= 0x030B0000
    P("ts_native_id", offsetof(PyThreadState, native_thread_id));
    P("fr_back", offsetof(_PyInterpreterFrame, previous));
#if PY_VERSION_HEX >= 0x030D0000
    P("fr_code", offsetof(_PyInterpreterFrame, f_executable));
    P("fr_instr", offsetof(_PyInterpreterFrame, instr_ptr));
#else
    P("fr_code", offsetof(_PyInterpreterFrame, f_code));
    P("fr_instr", offsetof(_PyInterpreterFrame, prev_instr));
#endif
    P("fr_owner", offsetof(_PyInterpreterFrame, owner));
    P("co_qualname", offsetof(PyCodeObject, co_qualname));
    P("co_linetable", offsetof(PyCodeObject, co_linetable));
    P("co_code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
#else
    P("fr_back", offsetof(PyFrameObject, f_back));
    P("fr_code", offsetof(PyFrameObject, f_code));
    P("fr_lasti", offsetof(PyFrameObject, f_lasti));
#if PY_VERSION_HEX >= 0x030A0000
    P("co_linetable", offsetof(PyCodeObject, co_linetable));
#else
    P("co_linetable", offsetof(PyCodeObject, co_lnotab));
#endif
#endif
    P("co_filename", offsetof(PyCodeObject, co_filename));
    P("co_name", offsetof(PyCodeObject, co_name));
    P("co_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    P("co_flags", offsetof(PyCodeObject, co_flags));
    P("ob_type", offsetof(PyObject, ob_type));
    P("var_size", offsetof(PyVarObject, ob_size));
    P("bytes_sval", offsetof(PyBytesObject, ob_sval));
    P("uni_length", offsetof(PyASCIIObject, length));
    P("uni_state", offsetof(PyASCIIObject, state));
    P("uni_ascii_size", sizeof(PyASCIIObject));
    P("uni_compact_size", sizeof(PyCompactUnicodeObject));
    /* the state bit field, found by setting each member in a zeroed object */
    {
        PyASCIIObject o;
        unsigned char *s = (unsigned char *)&o + offsetof(PyASCIIObject, state);
        unsigned v;
        memset(&o, 0, sizeof o); o.state.kind = 7; memcpy(&v, s, 4); P("uni_kind_shift", __builtin_ctz(v));
        memset(&o, 0, sizeof o); o.state.compact = 1; memcpy(&v, s, 4); P("uni_compact_bit", __builtin_ctz(v));
        memset(&o, 0, sizeof o); o.state.ascii = 1; memcpy(&v, s, 4); P("uni_ascii_bit", __builtin_ctz(v));
    }
    return 0;
}
