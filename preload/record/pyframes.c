/*
 * Python frames of a CPython host, read from the interpreter's memory
 * (record/pyframes.h).
 *
 * At the first capture the watchdog finds _PyRuntime (dlsym) and the
 * interpreter's layout (record/pylayout.h): the offsets 3.13 on publishes
 * at its start, else the built-in table of the version Py_Version (3.11
 * on) or Py_GetVersion (3.8-3.10, a function that only formats constants)
 * names.  At each capture it walks the runtime's interpreters and thread
 * states to the one whose thread is the loop's, and that thread state's
 * frame chain to the first frame, reading every byte with process_vm_readv
 * on its own process: an address that is not (or no longer) mapped is an
 * error, never a fault.
 *
 * The thread may be running Python while it is read.  The chain is walked
 * twice and compared frame by frame (address, code object, instruction of
 * every frame but the innermost); up to three tries.  A chain whose
 * innermost frames kept changing keeps the outer frames both walks agree
 * on, marked partial.  Code objects are checked by type (PyCode_Type), str
 * and bytes objects by theirs, the thread state by its interpreter
 * back-pointer and again by its thread id after the read: a thread state
 * freed and reused meanwhile gives no frames, never another thread's.
 *
 * Threads: the watchdog only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "capture.h"
#include "log.h"
#include "pyframes.h"
#include "pylayout.h"

/* Frames walked (for the run-method check), and kept in a capture. */
#define WALK_MAX 1024
#define TRIES 3
#define CODE_CACHE 128   /* power of two */
#define STR_MAX 255      /* bytes of a name kept, UTF-8 */
#define LINETABLE_MAX 16384

static struct elmon_pylayout L;
static int load_state;          /* 0 not (yet) CPython, 1 ready, -1 unusable */
static unsigned long py_version;   /* PY_VERSION_HEX */
static uintptr_t rt_addr, code_type, str_type, bytes_type, frame_type;
static pid_t self_pid;
static int read_denied;

/* ---- reading the process's own memory ---- */

/* Bytes of [addr, addr+n) readable now, copied to dst (a short count at
 * the end of a mapping). */
static size_t rd(uintptr_t addr, void *dst, size_t n)
{
    if (!addr || !n || read_denied)
        return 0;
    struct iovec local = {dst, n}, remote = {(void *)addr, n};
    ssize_t k = process_vm_readv(self_pid, &local, 1, &remote, 1, 0);
    if (k < 0) {
        if (errno == ENOSYS || errno == EPERM) {
            read_denied = 1;
            elmon_warn("process_vm_readv is refused here (%s); no Python frames", strerror(errno));
        }
        return 0;
    }
    return (size_t)k;
}

static int rd_all(uintptr_t addr, void *dst, size_t n)
{
    return rd(addr, dst, n) == n;
}

static uintptr_t rd_ptr(uintptr_t addr)
{
    uintptr_t v;
    return rd_all(addr, &v, sizeof v) ? v : 0;
}

static uintptr_t ptr_at(const unsigned char *b, int32_t off)
{
    uintptr_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static int32_t max3(int32_t a, int32_t b, int32_t c)
{
    int32_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* ---- finding the interpreter ---- */

static int load_version(const char **why)
{
    unsigned char head[ELMON_PY_DEBUG_BYTES];
    size_t got = rd(rt_addr, head, sizeof head);
    if (got >= 8 && memcmp(head, "xdebugpy", 8) == 0)
        return elmon_pylayout_published(head, got, &L, &py_version, why);
    const unsigned long *pv = dlsym(RTLD_DEFAULT, "Py_Version");
    if (pv) {
        unsigned long v;
        if (!rd_all((uintptr_t)pv, &v, sizeof v)) {
            *why = "its Py_Version cannot be read";
            return -1;
        }
        py_version = v;
    } else {
        const char *(*getv)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
        const char *s = getv ? getv() : NULL;
        unsigned maj = 0, min = 0, mic = 0;
        if (!s || sscanf(s, "%u.%u.%u", &maj, &min, &mic) < 2) {
            *why = "its version cannot be read";
            return -1;
        }
        py_version = (unsigned long)maj << 24 | (unsigned long)min << 16 | (unsigned long)mic << 8;
    }
    const struct elmon_pylayout *b = (py_version >> 24) == 3 ? elmon_pylayout_builtin((int)(py_version >> 16 & 0xff)) : NULL;
    if (!b) {
        *why = (py_version >> 24) == 3 && (py_version >> 16 & 0xff) < 8 ? "a version older than 3.8"
                                                                          : "a version this libelmon has no layout for";
        return -1;
    }
    L = *b;
    return 0;
}

static void refuse(const char *why)
{
    load_state = -1;
    if (py_version)
        elmon_warn("CPython %lu.%lu.%lu: %s; Python frames left out, native stacks only", py_version >> 24,
                   py_version >> 16 & 0xff, py_version >> 8 & 0xff, why);
    else
        elmon_warn("this CPython: %s; Python frames left out, native stacks only", why);
}

int elmon_py_load(void)
{
    if (load_state)
        return load_state == 1;
    self_pid = getpid();
    rt_addr = (uintptr_t)dlsym(RTLD_DEFAULT, "_PyRuntime");
    if (!rt_addr) {
        /* 3.6 has no _PyRuntime; anything else without it is no CPython
         * (yet: an embedding program may load libpython later). */
        const char *(*getv)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
        if (getv && dlsym(RTLD_DEFAULT, "PyCode_Type")) {
            unsigned maj = 0, min = 0, mic = 0;
            if (sscanf(getv(), "%u.%u.%u", &maj, &min, &mic) >= 2)
                py_version = (unsigned long)maj << 24 | (unsigned long)min << 16 | (unsigned long)mic << 8;
            refuse("a version older than 3.8");
        }
        return 0;
    }
    code_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyCode_Type");
    str_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyUnicode_Type");
    bytes_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyBytes_Type");
    frame_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyFrame_Type");
    const char *why = NULL;
    if (!code_type || !str_type || !bytes_type || !frame_type) {
        refuse("its type objects are not exported");
        return 0;
    }
    if (load_version(&why) < 0) {
        refuse(why);
        return 0;
    }
    /* Not initialised yet (a capture during start-up): look again later. */
    if (!rd_ptr(rt_addr + (uintptr_t)L.rt_interp_head))
        return 0;
    load_state = 1;
    return 1;
}

/* The thread state of thread tid, or 0.  A first thread state whose
 * interpreter back-pointer is wrong means the layout is: Python frames
 * stop for good. */
static uintptr_t find_tstate(int tid, uintptr_t pthread_id)
{
    int32_t need = max3(L.ts_next, L.ts_interp, max3(L.ts_frame, L.ts_thread_id, L.ts_native_id)) + 8;
    unsigned char b[512];
    if ((size_t)need > sizeof b)
        return 0;
    uintptr_t interp = rd_ptr(rt_addr + (uintptr_t)L.rt_interp_head);
    for (int i = 0; interp && i < 64; i++) {
        uintptr_t ts = rd_ptr(interp + (uintptr_t)L.is_tstate_head);
        for (int j = 0; ts && j < 4096; j++) {
            if (!rd_all(ts, b, (size_t)need))
                return 0;
            if (ptr_at(b, L.ts_interp) != interp) {
                if (i == 0 && j == 0)
                    refuse("its thread state does not point back at its interpreter (the layout does not match)");
                return 0;
            }
            int match = L.ts_native_id != ELMON_PY_NONE ? (int)ptr_at(b, L.ts_native_id) == tid
                                                        : ptr_at(b, L.ts_thread_id) == pthread_id;
            if (match)
                return ts;
            ts = ptr_at(b, L.ts_next);
        }
        interp = rd_ptr(interp + (uintptr_t)L.is_next);
    }
    return 0;
}

static int still_thread(uintptr_t ts, int tid, uintptr_t pthread_id)
{
    if (L.ts_native_id != ELMON_PY_NONE) {
        uintptr_t v = rd_ptr(ts + (uintptr_t)L.ts_native_id);
        return (int)v == tid;
    }
    return rd_ptr(ts + (uintptr_t)L.ts_thread_id) == pthread_id;
}

static uintptr_t top_frame(uintptr_t ts)
{
    uintptr_t f = rd_ptr(ts + (uintptr_t)L.ts_frame);
    if (f && L.cf_current != ELMON_PY_NONE)
        f = rd_ptr(f + (uintptr_t)L.cf_current);   /* 3.11-3.12: through the _PyCFrame */
    return f;
}

/* ---- the frame chain ---- */

struct raw_frame {
    uintptr_t frame, code, instr;   /* instr: f_lasti (3.8-3.10) or the instruction pointer */
};

/* A frame's owner from this value up is no Python function's: 3.12 and
 * 3.13's C-stack shim (3), 3.14's interpreter entry frame (3) and C-stack
 * frame (4).  3.11 has none (0 to 2 only). */
enum { OWNED_BY_C = 3 };

/* Walk from top; returns the frames read, *end: 0 the chain ended, 1 it
 * went on past max, -1 it broke (unreadable, a loop, not a frame). */
static int walk(uintptr_t top, struct raw_frame *out, int max, int *end)
{
    int32_t need = max3(L.fr_back, L.fr_code, max3(L.fr_lasti, L.fr_instr, L.fr_owner)) + 8;
    unsigned char b[256];
    int n = 0;
    uintptr_t f = top;
    *end = 0;
    while (f) {
        if (n == max) {
            *end = 1;
            return n;
        }
        if ((size_t)need > sizeof b || !rd_all(f, b, (size_t)need) ||
            (L.frame_objects && ptr_at(b, L.ob_type) != frame_type)) {
            *end = -1;
            return n;
        }
        uintptr_t back = ptr_at(b, L.fr_back);
        int owner = L.fr_owner != ELMON_PY_NONE ? b[L.fr_owner] : 0;
        if (owner < OWNED_BY_C) {
            out[n].frame = f;
            out[n].code = ptr_at(b, L.fr_code) & ~(uintptr_t)L.exec_tag_bits;
            if (L.frame_objects) {
                int lasti;
                memcpy(&lasti, b + L.fr_lasti, sizeof lasti);
                out[n].instr = (uintptr_t)(intptr_t)lasti;
            } else {
                out[n].instr = ptr_at(b, L.fr_instr);
            }
            for (int k = 0; k < n; k++)
                if (out[k].frame == f) {
                    *end = -1;   /* a loop: the chain changed under the walk */
                    return n;
                }
            n++;
        }
        f = back;
    }
    return n;
}

/* One walk from the thread's innermost frame, and the innermost frame
 * read again after it: a walk that began at a frame the thread had left
 * by the end is broken (*end -1).  Frame memory is reused as calls
 * return, and a stale frame reads as well as a live one, so a chain is
 * only believed when it starts at the frame the thread is still in. */
static int walk_stable(uintptr_t ts, struct raw_frame *out, int *end)
{
    uintptr_t top = top_frame(ts);
    int n = walk(top, out, WALK_MAX, end);
    if (*end >= 0 && top_frame(ts) != top)
        *end = -1;
    return n;
}

/* The CPU time thread tid has run, in ns; 0 when it cannot be read (the
 * thread is gone).  The clock id is the kernel's per-thread CPU clock of
 * tid (CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED): no pthread_t, which a thread
 * that has exited would leave dangling. */
static uint64_t thread_cpu_ns(int tid)
{
    struct timespec ts;
    clockid_t id = (clockid_t)((~(unsigned)tid << 3) | 4 | 2);
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Between two walks, 50 to 150 us on the watchdog.  A thread that calls
 * small functions in a tight loop runs through its calls faster than a walk
 * reads them, and a walk can then splice a stale frame onto live ones;
 * back to back, the second walk meets the loop at the same phase and
 * splices the same way (seen: tiny < tiny < small_b on 3.11 to 3.13).
 * Apart by a time the loop's period does not divide, the two walks agree
 * only on what held still: a parked thread's whole chain, a running one's
 * outer frames. */
static void apart(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct timespec d = {0, 50000 + (long)((unsigned long)now.tv_nsec * 2654435761u % 100000)};
    nanosleep(&d, NULL);
}

/* Two walks read the same chain: every frame's address, code object and
 * instruction, the innermost's too (one that ran on between the walks has
 * moved). */
static int same_chain(const struct raw_frame *a, int na, const struct raw_frame *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (a[i].frame != b[i].frame || a[i].code != b[i].code || a[i].instr != b[i].instr)
            return 0;
    return 1;
}

/* Frames at the outer end that both walks agree on, instruction and all,
 * plus the first that agrees but for its instruction (it ran between the
 * walks: it is where the thread was, its line the newer walk's). */
static int common_outer(const struct raw_frame *a, int na, const struct raw_frame *b, int nb)
{
    int k = 0;
    while (k < na && k < nb && a[na - 1 - k].frame == b[nb - 1 - k].frame && a[na - 1 - k].code == b[nb - 1 - k].code) {
        k++;
        if (a[na - k].instr != b[nb - k].instr)
            break;
    }
    return k;
}

/* ---- code objects ---- */

struct code_info {
    uintptr_t code, filename, name, qualname, linetable;
    int firstlineno, flags;
    char file[STR_MAX + 1];
    char func[STR_MAX + 1];   /* the qualified name where the version has one (3.11 on) */
    char bare[STR_MAX + 1];   /* the plain name, which the run-method rule knows */
};

static struct code_info cache[CODE_CACHE];

static void put_utf8(char *out, size_t *len, unsigned cp)
{
    char t[4];
    size_t k;
    if (cp < 0x80) {
        t[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 63));
        k = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | cp >> 12);
        t[1] = (char)(0x80 | (cp >> 6 & 63));
        t[2] = (char)(0x80 | (cp & 63));
        k = 3;
    } else if (cp < 0x110000) {
        t[0] = (char)(0xF0 | cp >> 18);
        t[1] = (char)(0x80 | (cp >> 12 & 63));
        t[2] = (char)(0x80 | (cp >> 6 & 63));
        t[3] = (char)(0x80 | (cp & 63));
        k = 4;
    } else {
        t[0] = '?';
        k = 1;
    }
    if (*len + k > STR_MAX)
        return;
    memcpy(out + *len, t, k);
    *len += k;
}

/* A str object as UTF-8 in out[STR_MAX + 1]; 0, or -1 when it is none. */
static int read_str(uintptr_t o, char *out)
{
    unsigned char b[72 + 4 * STR_MAX];
    size_t hdr = (size_t)L.uni_compact_size > (size_t)L.uni_ascii_size ? (size_t)L.uni_compact_size : (size_t)L.uni_ascii_size;
    size_t got = rd(o, b, sizeof b);
    out[0] = 0;
    if (got < hdr || hdr > 72 || ptr_at(b, L.ob_type) != str_type)
        return -1;
    int64_t length;
    uint32_t state;
    memcpy(&length, b + L.uni_length, sizeof length);
    memcpy(&state, b + L.uni_state, sizeof state);
    if (length < 0 || !(state >> L.uni_compact_bit & 1))
        return -1;   /* not a compact str: code objects' names always are */
    int ascii = state >> L.uni_ascii_bit & 1;
    unsigned kind = state >> L.uni_kind_shift & 7;
    if (ascii)
        kind = 1;
    else if (kind != 1 && kind != 2 && kind != 4)
        return -1;
    size_t at = ascii ? (size_t)L.uni_ascii_size : (size_t)L.uni_compact_size;
    size_t len = 0;
    for (int64_t i = 0; i < length && len < STR_MAX; i++) {
        size_t p = at + (size_t)i * kind;
        if (p + kind > got)
            break;
        unsigned cp = kind == 1 ? b[p] : kind == 2 ? (unsigned)(b[p] | b[p + 1] << 8)
                                                   : (unsigned)(b[p] | b[p + 1] << 8 | b[p + 2] << 16 | (unsigned)b[p + 3] << 24);
        if (cp < 0x20 || cp == 0x7f)
            cp = '?';   /* no control characters in a report */
        put_utf8(out, &len, cp);
    }
    out[len] = 0;
    return 0;
}

/* The code object at addr, checked by type and cached by its fields. */
static const struct code_info *code_of(uintptr_t addr)
{
    int32_t need = max3(L.co_filename, max3(L.co_name, L.co_qualname, L.co_linetable),
                        max3(L.co_firstlineno, L.co_flags, L.ob_type)) + 8;
    unsigned char b[256];
    if (!addr || (size_t)need > sizeof b || !rd_all(addr, b, (size_t)need) || ptr_at(b, L.ob_type) != code_type)
        return NULL;
    uintptr_t filename = ptr_at(b, L.co_filename);
    uintptr_t name = ptr_at(b, L.co_name);
    uintptr_t qualname = L.co_qualname != ELMON_PY_NONE ? ptr_at(b, L.co_qualname) : name;
    uintptr_t linetable = ptr_at(b, L.co_linetable);
    int first, flags;
    memcpy(&first, b + L.co_firstlineno, sizeof first);
    memcpy(&flags, b + L.co_flags, sizeof flags);
    struct code_info *ci = &cache[(addr >> 4) & (CODE_CACHE - 1)];
    if (ci->code == addr && ci->filename == filename && ci->name == name && ci->qualname == qualname &&
        ci->linetable == linetable && ci->firstlineno == first && ci->flags == flags)
        return ci;
    ci->code = 0;
    if (read_str(filename, ci->file) < 0 || read_str(name, ci->bare) < 0 ||
        (qualname != name ? read_str(qualname, ci->func) < 0 : (memcpy(ci->func, ci->bare, sizeof ci->func), 0)))
        return NULL;
    ci->code = addr;
    ci->filename = filename;
    ci->name = name;
    ci->qualname = qualname;
    ci->linetable = linetable;
    ci->firstlineno = first;
    ci->flags = flags;
    return ci;
}

/* ---- line numbers ---- */

static unsigned varint(const unsigned char *t, size_t n, size_t *i)
{
    unsigned v = 0, shift = 0;
    while (*i < n) {
        unsigned char b = t[(*i)++];
        v |= (unsigned)(b & 63) << shift;
        shift += 6;
        if (!(b & 64) || shift > 24)
            break;
    }
    return v;
}

static int svarint(const unsigned char *t, size_t n, size_t *i)
{
    unsigned u = varint(t, n, i);
    return u & 1 ? -(int)(u >> 1) : (int)(u >> 1);
}

/* The line of the instruction at code unit `at` (3.11 on: the location
 * table, Objects/locations.md). */
static int line_locations(const unsigned char *t, size_t n, int line, long at)
{
    long addr = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char b = t[i++];
        if (!(b & 0x80))
            break;   /* not at an entry's start: the table is not what it should be */
        int code = b >> 3 & 15;
        long len = (b & 7) + 1;
        int here = line;
        switch (code) {
        case 15: here = -1; break;                               /* no location */
        case 14:                                                 /* long form */
            line += svarint(t, n, &i);
            here = line;
            varint(t, n, &i);
            varint(t, n, &i);
            varint(t, n, &i);
            break;
        case 13: line += svarint(t, n, &i); here = line; break;  /* no column */
        case 10: case 11: case 12: line += code - 10; here = line; i += 2; break;
        default: here = line; i += 1; break;                     /* short form */
        }
        if (at >= addr && at < addr + len)
            return here < 0 ? line : here;
        addr += len;
    }
    return line;
}

/* 3.10: (bytes, line delta) pairs, -128 for none. */
static int line_linetable(const unsigned char *t, size_t n, int line, long at)
{
    long addr = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        long end = addr + t[i];
        signed char d = (signed char)t[i + 1];
        if (d != -128)
            line += d;
        if (at >= addr && at < end)
            return line;
        addr = end;
    }
    return line;
}

/* 3.8-3.9: co_lnotab. */
static int line_lnotab(const unsigned char *t, size_t n, int line, long at)
{
    long addr = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        addr += t[i];
        if (addr > at)
            break;
        line += (signed char)t[i + 1];
    }
    return line;
}

static int line_of(const struct code_info *ci, uintptr_t instr)
{
    static unsigned char t[LINETABLE_MAX + 256];
    size_t hdr = (size_t)L.bytes_sval;
    /* Most line tables are short: the header and 256 bytes first, the rest
     * only when the table is longer. */
    size_t got = rd(ci->linetable, t, hdr + 256);
    if (got < hdr || ptr_at(t, L.ob_type) != bytes_type)
        return ci->firstlineno;
    int64_t size;
    memcpy(&size, t + L.var_size, sizeof size);
    if (size > 256 && got == hdr + 256)
        got = rd(ci->linetable, t, hdr + (size_t)(size < LINETABLE_MAX ? size : LINETABLE_MAX));
    size_t n = got - hdr;
    if (size >= 0 && (size_t)size < n)
        n = (size_t)size;
    const unsigned char *p = t + hdr;
    long at;
    switch (L.lines) {
    case ELMON_PY_LNOTAB:
        at = (long)(intptr_t)instr;   /* f_lasti, bytes */
        return at < 0 ? ci->firstlineno : line_lnotab(p, n, ci->firstlineno, at);
    case ELMON_PY_LINETABLE:
        at = (long)(intptr_t)instr * 2;   /* f_lasti, code units */
        return at < 0 ? ci->firstlineno : line_linetable(p, n, ci->firstlineno, at);
    default:
        at = ((long)instr - (long)(ci->code + (uintptr_t)L.co_code_adaptive)) / 2;
        return at < 0 ? ci->firstlineno : line_locations(p, n, ci->firstlineno, at);
    }
}

/* ---- the capture ---- */

static void note(struct elmon_capture *c, const char *s)
{
    size_t len = strlen(c->note);
    if (len + (len ? 2 : 0) + strlen(s) + 1 > sizeof c->note)
        return;
    if (len) {
        memcpy(c->note + len, "; ", 2);
        len += 2;
    }
    memcpy(c->note + len, s, strlen(s) + 1);
}

#define CO_COROUTINE 0x0080
#define CO_ITERABLE_COROUTINE 0x0100

void elmon_py_read(struct elmon_capture *c, int tid, uintptr_t pthread_id)
{
    static struct raw_frame a[WALK_MAX], b[WALK_MAX];
    if (load_state != 1 || read_denied)
        return;
    if (getpid() != self_pid)
        self_pid = getpid();
    uintptr_t ts = find_tstate(tid, pthread_id);
    if (!ts)
        return;   /* this thread runs no Python (or has not yet) */
    int na = 0, nb = 0, ea = 0, eb = 0, consistent = 0;
    /* A thread reading itself (the unit tests) holds still. */
    int self = tid == (int)syscall(SYS_gettid);
    uint64_t ran0 = self ? 0 : thread_cpu_ns(tid);
    na = walk_stable(ts, a, &ea);
    for (int t = 0; t < TRIES && !consistent; t++) {
        apart();
        nb = walk_stable(ts, b, &eb);
        consistent = ea >= 0 && eb >= 0 && same_chain(a, na, b, nb);
        if (!consistent && t + 1 < TRIES) {
            memcpy(a, b, (size_t)nb * sizeof b[0]);
            na = nb;
            ea = eb;
        }
    }
    uint64_t ran1 = self ? 0 : thread_cpu_ns(tid);
    if (!still_thread(ts, tid, pthread_id)) {
        c->n_py = 0;
        return;   /* the thread state was freed and reused meanwhile */
    }
    /* a: the older walk, b: the newer.  Inconsistent: the outer frames both
     * agree on. */
    int from = 0, n = nb;
    if (!consistent) {
        int k = common_outer(a, na, b, nb);
        from = nb - k;
        c->py_partial = 1;
        /* None agreed, or the newer walk broke (a loop, an unreadable
         * frame) before the chain's end: where a run method would be is
         * not known. */
        c->py_unsure = k == 0 || eb < 0;
        note(c, k ? "the Python stack changed while it was read: its innermost frames are left out"
                  : "the Python stack changed while it was read: no Python frames");
    }
    /* Walks that agree do not prove a thread that ran meanwhile held
     * still: one calling tiny functions in a tight loop can be met twice
     * at the same phase, and a stale frame read as well as a live one.
     * Its frames are kept, marked. */
    if (consistent && ran1 != ran0) {
        c->py_partial = 1;
        note(c, "the thread ran while its Python stack was read: the innermost frames may mix two moments");
    }
    c->py_header = 1;
    c->py_depth = n - from;
    if (eb > 0)
        c->py_truncated = 1;
    int task = -1, unreadable = 0;
    for (int i = from; i < n; i++) {
        const struct code_info *ci = code_of(b[i].code);
        if (!ci) {
            unreadable++;   /* a code object gone, or not one */
            continue;
        }
        if (elmon_py_is_loop_frame(ci->file, strlen(ci->file), ci->bare))
            c->py_loop = 1;
        /* The outermost coroutine: what the running asyncio task runs
         * (read again below: the cache entry may be another's by then). */
        if (ci->flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE))
            task = i;
        if (c->n_py >= ELMON_CAPTURE_MAX_PY)
            continue;
        int line = line_of(ci, b[i].instr);
        struct elmon_pyframe *p = &c->py[c->n_py++];
        p->file = elmon_capture_str(c, ci->file, strlen(ci->file));
        p->function = elmon_capture_str(c, ci->func, strlen(ci->func));
        p->line = line;
    }
    if (unreadable) {
        /* Not the whole stack: what a run-method check needs is missing. */
        c->py_partial = c->py_unsure = 1;
        char s[96];
        snprintf(s, sizeof s, "%d Python frame(s) of no readable code object left out", unreadable);
        note(c, s);
    }
    if (n - from > ELMON_CAPTURE_MAX_PY || c->py_truncated) {
        char s[96];
        snprintf(s, sizeof s, "Python frames capped: the innermost %d of %d%s kept", c->n_py, n - from,
                 c->py_truncated ? "+" : "");
        note(c, s);
    }
    const struct code_info *ti = task >= 0 ? code_of(b[task].code) : NULL;
    if (ti) {
        c->py_task_line = line_of(ti, b[task].instr);
        c->py_task_function = elmon_capture_str(c, ti->func, strlen(ti->func));
        c->py_task_file = elmon_capture_str(c, ti->file, strlen(ti->file));
    }
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int contains(const char *s, size_t n, const char *part)
{
    size_t k = strlen(part);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, part, k) == 0)
            return 1;
    return 0;
}

/* The run methods libelmon knows.  A frame of one of them on the stack
 * means the thread is inside a running event loop. */
int elmon_py_is_loop_frame(const char *file, size_t n, const char *function)
{
    if (ends_with(file, n, "asyncio/base_events.py"))
        return strcmp(function, "run_forever") == 0 || strcmp(function, "_run_once") == 0;
    if (ends_with(file, n, "tornado/ioloop.py"))
        return strcmp(function, "start") == 0;
    if (ends_with(file, n, "twisted/internet/base.py"))
        return strcmp(function, "mainLoop") == 0 || strcmp(function, "run") == 0;
    if (ends_with(file, n, "/socketserver.py"))
        return strcmp(function, "serve_forever") == 0;
    if (ends_with(file, n, "kombu/asynchronous/hub.py"))
        return strcmp(function, "run_forever") == 0 || strcmp(function, "run_once") == 0 ||
               strcmp(function, "create_loop") == 0;
    if (ends_with(file, n, "curio/kernel.py"))
        return strcmp(function, "run") == 0 || strcmp(function, "_run_coro") == 0;
    if (ends_with(file, n, "trio/_core/_run.py"))
        return 1;   /* trio's whole scheduler lives in this file */
    /* Greenlets: the blocked greenlet's frames do not show the hub's loop,
     * so any frame of theirs counts. */
    return contains(file, n, "/gevent/") || contains(file, n, "/eventlet/");
}

void elmon_py_atfork_child(void)
{
    self_pid = getpid();
}
