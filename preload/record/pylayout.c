/*
 * CPython's layouts, per version (record/pylayout.h).
 *
 * 3.8 to 3.12 publish nothing for debuggers, so their offsets are tables
 * here; tests/test_pyframes.c compiles tests/pylayout_probe.c against each
 * installed interpreter's internal headers and compares.  3.13 and 3.14
 * put _Py_DebugOffsets at the start of _PyRuntime: its cookie, version and
 * sizes are checked, and its offsets taken as published.  The few facts it
 * leaves out (co_flags, the str state bits, PyCompactUnicodeObject's size)
 * have not moved since 3.12; the same test checks them on 3.13 and 3.14.
 *
 * Threads: the watchdog, once per process (and tests/pylayout_dump).
 */
#include <string.h>
#include "pylayout.h"

#define N ELMON_PY_NONE

/* The str state bits have been the same since PEP 393 (3.3): interned:2,
 * kind:3, compact:1, ascii:1. */
#define UNI_BITS .uni_kind_shift = 2, .uni_compact_bit = 5, .uni_ascii_bit = 6

/* 3.8 to 3.10 share their layout but for f_lasti (3.10 dropped the
 * value stack's top pointer before it) and the line table. */
#define FRAME_OBJECTS(m, lines_, lasti)                                                                   \
    {.minor = m, .lines = lines_, .frame_objects = 1,                                                    \
     .rt_interp_head = 32, .is_next = 0, .is_tstate_head = 8,                                             \
     .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .cf_current = N, .ts_thread_id = 176, .ts_native_id = N, \
     .fr_back = 24, .fr_code = 32, .fr_lasti = lasti, .fr_instr = N, .fr_owner = N,                       \
     .co_filename = 104, .co_name = 112, .co_qualname = N, .co_linetable = 120, .co_firstlineno = 40,     \
     .co_flags = 36, .co_code_adaptive = N,                                                               \
     .ob_type = 8, .var_size = 16, .bytes_sval = 32,                                                      \
     .uni_length = 16, .uni_state = 32, .uni_ascii_size = 48, .uni_compact_size = 72, UNI_BITS}

static const struct elmon_pylayout builtin[] = {
    FRAME_OBJECTS(8, ELMON_PY_LNOTAB, 104),
    FRAME_OBJECTS(9, ELMON_PY_LNOTAB, 104),
    FRAME_OBJECTS(10, ELMON_PY_LINETABLE, 96),
    {.minor = 11, .lines = ELMON_PY_LOCATIONS,
     .rt_interp_head = 40, .is_next = 0, .is_tstate_head = 16,
     .ts_next = 8, .ts_interp = 16, .ts_frame = 56, .cf_current = 8, .ts_thread_id = 152, .ts_native_id = 160,
     .fr_back = 48, .fr_code = 32, .fr_lasti = N, .fr_instr = 56, .fr_owner = 69,
     .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_linetable = 136, .co_firstlineno = 72,
     .co_flags = 48, .co_code_adaptive = 184,
     .ob_type = 8, .var_size = 16, .bytes_sval = 32,
     .uni_length = 16, .uni_state = 32, .uni_ascii_size = 48, .uni_compact_size = 72, UNI_BITS},
    {.minor = 12, .lines = ELMON_PY_LOCATIONS,
     .rt_interp_head = 40, .is_next = 0, .is_tstate_head = 72,
     .ts_next = 8, .ts_interp = 16, .ts_frame = 56, .cf_current = 0, .ts_thread_id = 136, .ts_native_id = 144,
     .fr_back = 8, .fr_code = 0, .fr_lasti = N, .fr_instr = 56, .fr_owner = 70,
     .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_linetable = 136, .co_firstlineno = 68,
     .co_flags = 48, .co_code_adaptive = 192,
     .ob_type = 8, .var_size = 16, .bytes_sval = 32,
     .uni_length = 16, .uni_state = 32, .uni_ascii_size = 40, .uni_compact_size = 56, UNI_BITS},
};

const struct elmon_pylayout *elmon_pylayout_builtin(int minor)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (builtin[i].minor == minor)
            return &builtin[i];
    return NULL;
}

/* _Py_DebugOffsets as 3.13 defines it (Include/internal/pycore_runtime.h):
 * every field a uint64_t after the cookie. */
struct debug313 {
    char cookie[8];
    uint64_t version, free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
            gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status;
    } thread_state;
    struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
            localspluskinds, co_code_adaptive;
    } code_object;
    struct { uint64_t size, ob_type; } pyobject;
    struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
    struct { uint64_t size, ob_item, ob_size; } tuple_object, list_object;
    struct { uint64_t size, ma_keys, ma_values; } dict_object;
    struct { uint64_t size, ob_fval; } float_object;
    struct { uint64_t size, lv_tag, ob_digit; } long_object;
    struct { uint64_t size, ob_size, ob_sval; } bytes_object;
    struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
    struct { uint64_t size, collecting; } gc;
};

/* 3.14's (Include/internal/pycore_debug_offsets.h): fields added in the
 * middle (threads_main, the tlbc and generation counters, stackpointer),
 * and blocks for sets, generators and debugger support after. */
struct debug314 {
    char cookie[8];
    uint64_t version, free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict, builtins, ceval_gil,
            gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder,
            code_object_generation, tlbc_generation;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status;
    } thread_state;
    struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer, tlbc_index; } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
            localspluskinds, co_code_adaptive, co_tlbc;
    } code_object;
    struct { uint64_t size, ob_type; } pyobject;
    struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
    struct { uint64_t size, ob_item, ob_size; } tuple_object, list_object;
    struct { uint64_t size, used, table, mask; } set_object;
    struct { uint64_t size, ma_keys, ma_values; } dict_object;
    struct { uint64_t size, ob_fval; } float_object;
    struct { uint64_t size, lv_tag, ob_digit; } long_object;
    struct { uint64_t size, ob_size, ob_sval; } bytes_object;
    struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
    struct { uint64_t size, collecting; } gc;
    struct { uint64_t size, gi_name, gi_iframe, gi_frame_state; } gen_object;
    struct { uint64_t next, prev; } llist_node;
    struct {
        uint64_t eval_breaker, remote_debugger_support, remote_debugging_enabled, debugger_pending_call,
            debugger_script_path, debugger_script_path_size;
    } debugger_support;
};

_Static_assert(sizeof(struct debug313) == 584, "3.13's _Py_DebugOffsets");
_Static_assert(sizeof(struct debug314) == 760, "3.14's _Py_DebugOffsets");
_Static_assert(sizeof(struct debug314) <= ELMON_PY_DEBUG_BYTES, "the published offsets fit the bytes read");

/* The fields libelmon uses, the same in both versions' structs but for
 * where they sit. */
struct published {
    uint64_t free_threaded;
    uint64_t rt_size, interpreters_head;
    uint64_t is_size, is_next, threads_head;
    uint64_t ts_size, ts_next, ts_interp, current_frame, thread_id, native_thread_id;
    uint64_t fr_size, previous, executable, instr_ptr, owner;
    uint64_t co_size, filename, name, qualname, linetable, firstlineno, co_code_adaptive;
    uint64_t ob_size_, ob_type;
    uint64_t by_size, by_ob_size, ob_sval;
    uint64_t uni_state, uni_length, asciiobject_size;
};

#define TAKE(d)                                                                                            \
    (struct published)                                                                                     \
    {                                                                                                      \
        d.free_threaded, d.runtime_state.size, d.runtime_state.interpreters_head, d.interpreter_state.size, \
            d.interpreter_state.next, d.interpreter_state.threads_head, d.thread_state.size,                 \
            d.thread_state.next, d.thread_state.interp, d.thread_state.current_frame,                        \
            d.thread_state.thread_id, d.thread_state.native_thread_id, d.interpreter_frame.size,             \
            d.interpreter_frame.previous, d.interpreter_frame.executable, d.interpreter_frame.instr_ptr,     \
            d.interpreter_frame.owner, d.code_object.size, d.code_object.filename, d.code_object.name,       \
            d.code_object.qualname, d.code_object.linetable, d.code_object.firstlineno,                      \
            d.code_object.co_code_adaptive, d.pyobject.size, d.pyobject.ob_type, d.bytes_object.size,        \
            d.bytes_object.ob_size, d.bytes_object.ob_sval, d.unicode_object.state,                          \
            d.unicode_object.length, d.unicode_object.asciiobject_size                                       \
    }

/* An offset of a field of a struct of `size` bytes: inside it, and small
 * enough to be an int. */
static int fits(uint64_t off, uint64_t width, uint64_t size)
{
    return size > 0 && size < (1u << 20) && off + width <= size;
}

int elmon_pylayout_published(const unsigned char *rt, size_t n, struct elmon_pylayout *out,
                             unsigned long *version, const char **why)
{
    *why = "no debug offsets at the start of _PyRuntime";
    uint64_t v;
    if (n < 16 || memcmp(rt, "xdebugpy", 8) != 0)
        return -1;
    memcpy(&v, rt + 8, sizeof v);
    *version = (unsigned long)v;
    int minor = (v >> 24) == 3 ? (int)(v >> 16 & 0xff) : -1;
    struct published d;
    if (minor == 13 && n >= sizeof(struct debug313)) {
        struct debug313 x;
        memcpy(&x, rt, sizeof x);
        d = TAKE(x);
    } else if (minor == 14 && n >= sizeof(struct debug314)) {
        struct debug314 x;
        memcpy(&x, rt, sizeof x);
        d = TAKE(x);
    } else {
        *why = "its debug offsets are of a version this libelmon does not know";
        return -1;
    }
    if (d.free_threaded) {
        *why = "a free-threaded build (its objects and frames are laid out differently)";
        return -1;
    }
    *why = "its debug offsets do not add up";
    if (!fits(d.interpreters_head, 8, d.rt_size) || !fits(d.is_next, 8, d.is_size) ||
        !fits(d.threads_head, 8, d.is_size) || !fits(d.ts_next, 8, d.ts_size) || !fits(d.ts_interp, 8, d.ts_size) ||
        !fits(d.current_frame, 8, d.ts_size) || !fits(d.thread_id, 8, d.ts_size) ||
        !fits(d.native_thread_id, 8, d.ts_size) || !fits(d.previous, 8, d.fr_size) ||
        !fits(d.executable, 8, d.fr_size) || !fits(d.instr_ptr, 8, d.fr_size) || !fits(d.owner, 1, d.fr_size) ||
        !fits(d.filename, 8, d.co_size) || !fits(d.name, 8, d.co_size) || !fits(d.qualname, 8, d.co_size) ||
        !fits(d.linetable, 8, d.co_size) || !fits(d.firstlineno, 4, d.co_size) ||
        !fits(d.co_code_adaptive, 0, d.co_size) || !fits(d.ob_type, 8, d.ob_size_) ||
        !fits(d.by_ob_size, 8, d.by_size) || !fits(d.ob_sval, 0, d.by_size) ||
        !fits(d.uni_state, 4, d.asciiobject_size) || !fits(d.uni_length, 8, d.asciiobject_size))
        return -1;
    *out = (struct elmon_pylayout){
        .minor = minor, .lines = ELMON_PY_LOCATIONS,
        /* 3.14's frames hold their code object as a _PyStackRef: the low
         * bits tag it (immortal, borrowed). */
        .exec_tag_bits = minor >= 14 ? 3 : 0,
        .rt_interp_head = (int32_t)d.interpreters_head,
        .is_next = (int32_t)d.is_next,
        .is_tstate_head = (int32_t)d.threads_head,
        .ts_next = (int32_t)d.ts_next,
        .ts_interp = (int32_t)d.ts_interp,
        .ts_frame = (int32_t)d.current_frame,
        .cf_current = N,
        .ts_thread_id = (int32_t)d.thread_id,
        .ts_native_id = (int32_t)d.native_thread_id,
        .fr_back = (int32_t)d.previous,
        .fr_code = (int32_t)d.executable,
        .fr_lasti = N,
        .fr_instr = (int32_t)d.instr_ptr,
        .fr_owner = (int32_t)d.owner,
        .co_filename = (int32_t)d.filename,
        .co_name = (int32_t)d.name,
        .co_qualname = (int32_t)d.qualname,
        .co_linetable = (int32_t)d.linetable,
        .co_firstlineno = (int32_t)d.firstlineno,
        .co_flags = 48,   /* not published; unmoved since 3.11 (checked on 3.13 and 3.14) */
        .co_code_adaptive = (int32_t)d.co_code_adaptive,
        .ob_type = (int32_t)d.ob_type,
        .var_size = (int32_t)d.by_ob_size,
        .bytes_sval = (int32_t)d.ob_sval,
        .uni_length = (int32_t)d.uni_length,
        .uni_state = (int32_t)d.uni_state,
        .uni_ascii_size = (int32_t)d.asciiobject_size,
        /* PyCompactUnicodeObject: utf8_length and utf8 after the ASCII
         * header (3.12 dropped wstr_length) */
        .uni_compact_size = (int32_t)d.asciiobject_size + 16,
        UNI_BITS,
    };
    return 0;
}

void elmon_pylayout_print(const struct elmon_pylayout *L, void (*line)(const char *, long, void *), void *arg)
{
#define F(name)                              \
    do {                                     \
        if (L->name != ELMON_PY_NONE)        \
            line(#name, (long)L->name, arg); \
    } while (0)
    F(rt_interp_head);
    F(is_next);
    F(is_tstate_head);
    F(ts_next);
    F(ts_interp);
    F(ts_frame);
    F(cf_current);
    F(ts_thread_id);
    F(ts_native_id);
    F(fr_back);
    F(fr_code);
    F(fr_lasti);
    F(fr_instr);
    F(fr_owner);
    F(co_filename);
    F(co_name);
    F(co_qualname);
    F(co_linetable);
    F(co_firstlineno);
    F(co_flags);
    F(co_code_adaptive);
    F(ob_type);
    F(var_size);
    F(bytes_sval);
    F(uni_length);
    F(uni_state);
    F(uni_ascii_size);
    F(uni_compact_size);
    F(uni_kind_shift);
    F(uni_compact_bit);
    F(uni_ascii_bit);
#undef F
}
