/*
 * The Python frame reader (preload/record/pyframes.c) on a CPython 3.12
 * image built by hand in this process: the symbols libelmon looks up
 * (_PyRuntime, Py_Version, the type objects) are this executable's, and the
 * interpreter, thread state, frames, code objects, str and bytes objects are
 * laid out at 3.12's offsets (record/pylayout.c's table, itself checked
 * against the real headers by test_pyframes).  What a real interpreter
 * cannot be made to do on demand is done here: a chain with a loop, a code
 * object unmapped under the reader, another thread's state only, a chain
 * rewritten by another thread while it is read 2,000 times, a version
 * libelmon does not know.  A unit suite, so it runs under the ASan and
 * TSan stages too.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "capture.h"
#include "pyframes.h"
#include "support.h"

/* ---- what libelmon looks up (exported: the executable is built with
 * ENABLE_EXPORTS) ---- */
unsigned char _PyRuntime[4096] __attribute__((aligned(64)));
unsigned long Py_Version = 0x030C01F0;   /* 3.12.1 */
unsigned char PyCode_Type[64], PyUnicode_Type[64], PyBytes_Type[64], PyFrame_Type[64];

/* 3.12's offsets (preload/record/pylayout.c) */
enum {
    RT_INTERP_HEAD = 40, IS_NEXT = 0, IS_TSTATE_HEAD = 72,
    TS_NEXT = 8, TS_INTERP = 16, TS_CFRAME = 56, CF_CURRENT = 0, TS_THREAD_ID = 136, TS_NATIVE_ID = 144,
    FR_BACK = 8, FR_CODE = 0, FR_INSTR = 56, FR_OWNER = 70, FR_SIZE = 80,
    CO_FILENAME = 112, CO_NAME = 120, CO_QUALNAME = 128, CO_LINETABLE = 136, CO_FIRSTLINENO = 68, CO_FLAGS = 48,
    CO_CODE = 192, CO_SIZE = 256,
    OB_TYPE = 8, VAR_SIZE = 16, BYTES_SVAL = 32, UNI_LENGTH = 16, UNI_STATE = 32, UNI_ASCII = 40, UNI_COMPACT = 56,
};

static void put_ptr(void *obj, int off, const void *v)
{
    uintptr_t p = (uintptr_t)v;
    __atomic_store_n((uintptr_t *)((char *)obj + off), p, __ATOMIC_RELAXED);
}

static void *obj(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    memset(p, 0, n);
    return p;
}

/* A compact str: ASCII, or one byte (latin-1) or two per character. */
static void *str_of(const char *s)
{
    size_t n = strlen(s);
    void *o = obj(UNI_COMPACT + 4 * n + 4);
    put_ptr(o, OB_TYPE, PyUnicode_Type);
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        ascii &= (unsigned char)s[i] < 0x80;
    unsigned state;
    int64_t len = 0;
    if (ascii) {
        state = 1u << 2 | 1u << 5 | 1u << 6;
        memcpy((char *)o + UNI_ASCII, s, n);
        len = (int64_t)n;
    } else {
        /* decode UTF-8 to code points; kind 1 if all < 256, else 2 */
        unsigned cps[256];
        size_t k = 0;
        for (size_t i = 0; i < n && k < 256;) {
            unsigned char c = (unsigned char)s[i];
            unsigned cp;
            if (c < 0x80) {
                cp = c;
                i += 1;
            } else if (c < 0xE0) {
                cp = (c & 31u) << 6 | ((unsigned char)s[i + 1] & 63u);
                i += 2;
            } else {
                cp = (c & 15u) << 12 | ((unsigned char)s[i + 1] & 63u) << 6 | ((unsigned char)s[i + 2] & 63u);
                i += 3;
            }
            cps[k++] = cp;
        }
        unsigned kind = 1;
        for (size_t i = 0; i < k; i++)
            if (cps[i] > 255)
                kind = 2;
        state = kind << 2 | 1u << 5;
        for (size_t i = 0; i < k; i++) {
            unsigned char *d = (unsigned char *)o + UNI_COMPACT + i * kind;
            d[0] = (unsigned char)cps[i];
            if (kind == 2)
                d[1] = (unsigned char)(cps[i] >> 8);
        }
        len = (int64_t)k;
    }
    memcpy((char *)o + UNI_LENGTH, &len, sizeof len);
    memcpy((char *)o + UNI_STATE, &state, sizeof state);
    return o;
}

/* The location table: each entry "no column" (code 13), 8 code units,
 * with its line delta. */
static void *linetable(const int *deltas, int n)
{
    void *o = obj(BYTES_SVAL + 2 * (size_t)n + 1);
    put_ptr(o, OB_TYPE, PyBytes_Type);
    int64_t size = 2 * n;
    memcpy((char *)o + VAR_SIZE, &size, sizeof size);
    unsigned char *t = (unsigned char *)o + BYTES_SVAL;
    for (int i = 0; i < n; i++) {
        t[2 * i] = (unsigned char)(0x80 | 13 << 3 | 7);
        int d = deltas[i];
        t[2 * i + 1] = (unsigned char)(d < 0 ? (-d) << 1 | 1 : d << 1);
    }
    return o;
}

static void *code_of(const char *file, const char *name, const char *qualname, int first, int flags)
{
    static const int deltas[] = {0, 2, 1, 1};
    void *c = obj(CO_SIZE);
    put_ptr(c, OB_TYPE, PyCode_Type);
    put_ptr(c, CO_FILENAME, str_of(file));
    put_ptr(c, CO_NAME, str_of(name));
    put_ptr(c, CO_QUALNAME, str_of(qualname));
    put_ptr(c, CO_LINETABLE, linetable(deltas, 4));
    memcpy((char *)c + CO_FIRSTLINENO, &first, sizeof first);
    memcpy((char *)c + CO_FLAGS, &flags, sizeof flags);
    return c;
}

/* A frame of code at code unit `unit` (lines: first, +2 from unit 8, +3
 * from 16, +4 from 24). */
static void *frame_of(void *code, int unit, void *back)
{
    void *f = obj(FR_SIZE);
    put_ptr(f, FR_CODE, code);
    put_ptr(f, FR_BACK, back);
    put_ptr(f, FR_INSTR, (char *)code + CO_CODE + 2 * unit);
    return f;
}

static void *interp, *tstate, *cframe;

static int gettid_(void)
{
    return (int)syscall(SYS_gettid);
}

/* The runtime with one interpreter and one thread state, of thread tid,
 * whose innermost frame is top. */
static void image(void *top, int tid)
{
    interp = obj(256);
    tstate = obj(256);
    cframe = obj(64);
    put_ptr(_PyRuntime, RT_INTERP_HEAD, interp);
    put_ptr(interp, IS_TSTATE_HEAD, tstate);
    put_ptr(tstate, TS_INTERP, interp);
    put_ptr(tstate, TS_CFRAME, cframe);
    put_ptr(cframe, CF_CURRENT, top);
    uint64_t id = (uint64_t)tid;
    memcpy((char *)tstate + TS_NATIVE_ID, &id, sizeof id);
}

static struct elmon_capture *capture(void)
{
    struct elmon_capture *c = calloc(1, sizeof *c);
    elmon_arena_init(&c->arena, c->arena_mem, sizeof c->arena_mem);
    return c;
}

static struct elmon_capture *read_now(void)
{
    ck_assert_int_eq(elmon_py_load(), 1);
    struct elmon_capture *c = capture();
    elmon_py_read(c, gettid_(), (uintptr_t)pthread_self());
    return c;
}

START_TEST(chain_read_with_names_and_lines)
{
    void *mod = frame_of(code_of("/srv/app.py", "<module>", "<module>", 1, 0), 0, NULL);
    void *run = frame_of(code_of("/srv/app.py", "run", "Server.run", 20, 0x80), 9, mod);
    void *leaf = frame_of(code_of("/srv/app.py", "leaf", "leaf", 40, 0), 17, run);
    image(leaf, gettid_());
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->n_py, 3);
    ck_assert_int_eq(c->py_header, 1);
    ck_assert_int_eq(c->py_partial, 0);
    ck_assert_int_eq(c->py_loop, 0);
    ck_assert_str_eq(c->py[0].function, "leaf");
    ck_assert_int_eq(c->py[0].line, 43);   /* unit 17: 40 + 0 + 2 + 1 */
    ck_assert_str_eq(c->py[1].function, "Server.run");
    ck_assert_int_eq(c->py[1].line, 22);   /* unit 9: 20 + 2 */
    ck_assert_str_eq(c->py[2].function, "<module>");
    ck_assert_int_eq(c->py[2].line, 1);
    ck_assert_str_eq(c->py[2].file, "/srv/app.py");
    /* The coroutine (CO_COROUTINE) is the task's. */
    ck_assert_str_eq(c->py_task_function, "Server.run");
    ck_assert_int_eq(c->py_task_line, 22);
}
END_TEST

START_TEST(run_method_seen_by_plain_name)
{
    void *mod = frame_of(code_of("/srv/app.py", "<module>", "<module>", 1, 0), 0, NULL);
    void *rf = frame_of(code_of("/usr/lib/python3.12/asyncio/base_events.py", "run_forever",
                                "BaseEventLoop.run_forever", 600, 0), 0, mod);
    void *cb = frame_of(code_of("/srv/app.py", "cb", "cb", 5, 0), 0, rf);
    image(cb, gettid_());
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->n_py, 3);
    ck_assert_int_eq(c->py_loop, 1);
}
END_TEST

START_TEST(non_ascii_names_as_utf8)
{
    void *f = frame_of(code_of("/srv/ブロック_ü.py", "schläft", "schläft_日本", 3, 0), 0, NULL);
    image(f, gettid_());
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->n_py, 1);
    ck_assert_str_eq(c->py[0].function, "schläft_日本");
    ck_assert_str_eq(c->py[0].file, "/srv/ブロック_ü.py");
}
END_TEST

START_TEST(chain_with_a_loop_is_partial)
{
    void *a = frame_of(code_of("/srv/a.py", "a", "a", 1, 0), 0, NULL);
    void *b = frame_of(code_of("/srv/a.py", "b", "b", 5, 0), 0, a);
    put_ptr(a, FR_BACK, b);   /* a <-> b */
    image(b, gettid_());
    struct elmon_capture *c = read_now();
    /* The two frames read, marked partial, and no outside-a-loop verdict
     * from a chain whose end was never reached. */
    ck_assert_int_eq(c->py_partial, 1);
    ck_assert_int_eq(c->py_unsure, 1);
    ck_assert_int_le(c->n_py, 2);
    ck_assert_ptr_nonnull(strstr(c->note, "changed while it was read"));
}
END_TEST

START_TEST(unmapped_code_object_left_out)
{
    void *mod = frame_of(code_of("/srv/app.py", "<module>", "<module>", 1, 0), 0, NULL);
    long page = sysconf(_SC_PAGESIZE);
    void *gone = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(gone, MAP_FAILED);
    ck_assert_int_eq(munmap(gone, (size_t)page), 0);
    void *f = frame_of(gone, 0, mod);
    image(f, gettid_());
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->n_py, 1);
    ck_assert_str_eq(c->py[0].function, "<module>");
    ck_assert_int_eq(c->py_unsure, 1);
    ck_assert_ptr_nonnull(strstr(c->note, "no readable code object"));
}
END_TEST

START_TEST(another_threads_state_is_not_read)
{
    void *f = frame_of(code_of("/srv/a.py", "theirs", "theirs", 1, 0), 0, NULL);
    image(f, gettid_() + 1);
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->py_header, 0);
    ck_assert_int_eq(c->n_py, 0);
}
END_TEST

START_TEST(deep_chain_capped_and_marked)
{
    void *code = code_of("/srv/r.py", "recurse", "recurse", 1, 0);
    void *f = frame_of(code_of("/srv/r.py", "<module>", "<module>", 1, 0), 0, NULL);
    for (int i = 0; i < 300; i++)
        f = frame_of(code, 0, f);
    image(f, gettid_());
    struct elmon_capture *c = read_now();
    ck_assert_int_eq(c->n_py, ELMON_CAPTURE_MAX_PY);
    ck_assert_int_eq(c->py_depth, 301);
    ck_assert_ptr_nonnull(strstr(c->note, "capped: the innermost 64 of 301 kept"));
}
END_TEST

START_TEST(unknown_version_refused)
{
    Py_Version = 0x030700F0;   /* 3.7.0 */
    image(frame_of(code_of("/srv/a.py", "a", "a", 1, 0), 0, NULL), gettid_());
    ck_assert_int_eq(elmon_py_load(), 0);
    ck_assert_int_eq(elmon_py_load(), 0);   /* refused once, for good */
}
END_TEST

/* ---- a chain rewritten while it is read ---- */

static void *shape_a, *shape_b, *base_frame, *spare_code;
static int stop;

/* Switches the innermost frame between two calls, and meanwhile rewrites
 * the frame memory a stale reader would see: the pattern a thread calling
 * small functions leaves. */
static void *mutator(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); i++) {
        put_ptr(cframe, CF_CURRENT, (i & 1) ? shape_a : shape_b);
        put_ptr(shape_b, FR_CODE, (i & 2) ? spare_code : *(void **)((char *)shape_a + FR_CODE));
        put_ptr(shape_b, FR_BACK, (i & 4) ? shape_a : base_frame);
    }
    return NULL;
}

START_TEST(changing_chain_read_2000_times)
{
    void *mod = frame_of(code_of("/srv/s.py", "<module>", "<module>", 1, 0), 0, NULL);
    base_frame = frame_of(code_of("/srv/s.py", "spin", "spin", 10, 0), 9, mod);
    shape_a = frame_of(code_of("/srv/s.py", "small_a", "small_a", 20, 0), 0, base_frame);
    shape_b = frame_of(code_of("/srv/s.py", "small_b", "small_b", 30, 0), 0, base_frame);
    spare_code = code_of("/srv/s.py", "small_c", "small_c", 40, 0);
    image(shape_a, gettid_());
    ck_assert_int_eq(elmon_py_load(), 1);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, mutator, NULL), 0);
    int consistent = 0, partial = 0;
    for (int i = 0; i < 2000; i++) {
        struct elmon_capture *c = capture();
        elmon_py_read(c, gettid_(), (uintptr_t)pthread_self());
        ck_assert_int_eq(c->py_header, 1);
        /* From the outside in: <module>, spin, then at most one small one. */
        ck_assert_int_le(c->n_py, 4);
        if (c->n_py >= 2) {
            ck_assert_str_eq(c->py[c->n_py - 1].function, "<module>");
            ck_assert_str_eq(c->py[c->n_py - 2].function, "spin");
        }
        if (c->py_partial)
            partial++;
        else
            consistent++;
        free(c);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    fprintf(stderr, "changing_chain_read_2000_times: %d consistent, %d partial\n", consistent, partial);
    ck_assert_int_eq(consistent + partial, 2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pyread");
    TCase *tc = tcase_create("image");
    tcase_add_test(tc, chain_read_with_names_and_lines);
    tcase_add_test(tc, run_method_seen_by_plain_name);
    tcase_add_test(tc, non_ascii_names_as_utf8);
    tcase_add_test(tc, chain_with_a_loop_is_partial);
    tcase_add_test(tc, unmapped_code_object_left_out);
    tcase_add_test(tc, another_threads_state_is_not_read);
    tcase_add_test(tc, deep_chain_capped_and_marked);
    tcase_add_test(tc, unknown_version_refused);
    tcase_add_test(tc, changing_chain_read_2000_times);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
