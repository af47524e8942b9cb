/*
 * The culprit rule (culprit.h).  docs/STACKS.md states it for users; the
 * test of record is tests/test_span.c.
 */
#include <stdio.h>
#include <string.h>
#include "culprit.h"
#include "span.h"

const char *elmon_base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p;
}

static int has_prefix(const char *s, const char *const *prefixes, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const interceptor_prefixes[] = {"__interceptor_", "___interceptor_"};

static int is_interceptor(const char *function)
{
    return has_prefix(function, interceptor_prefixes, N_OF(interceptor_prefixes));
}

/* In an ASan or TSan build the innermost frame of a blocking read or clock
 * call is the runtime's interceptor, or a helper it called
 * (__asan::QuickCheckForUnpoisonedRegion checks the clock call's output):
 * in the executable itself when the runtime is linked statically (clang's
 * default), in libclang_rt.* / libasan.so otherwise.  The code that called
 * it is what the user wants named.  The runtime's C++ helpers are known by
 * their namespaces, mangled (_ZN6__asan...) as the symbol tables give
 * them. */
int elmon_frame_is_runtime(const char *module, const char *function, const char *self_module)
{
    static const char *const modules[] = {
        "libc.so", "libc-", "ld-linux", "libpthread", "linux-vdso", "[vdso", "libelmon",
        "libclang_rt.", "libasan.so", "libtsan.so", "libubsan.so", "liblsan.so", "libhwasan.so",
    };
    static const char *const functions[] = {
        "__asan_", "__tsan_", "__ubsan_", "__lsan_", "__hwasan_",
        "__msan_", "__sanitizer_", "__sancov_",
        "_ZN6__asan", "_ZN6__tsan", "_ZN7__ubsan", "_ZN6__lsan", "_ZN8__hwasan", "_ZN6__msan",
        "_ZN11__sanitizer", "_ZN14__interception", "_ZN8__sancov",
        "_ZNK6__asan", "_ZNK6__tsan", "_ZNK7__ubsan", "_ZNK6__lsan", "_ZNK8__hwasan", "_ZNK6__msan",
        "_ZNK11__sanitizer", "_ZNK14__interception", "_ZNK8__sancov",
    };
    if (is_interceptor(function) || has_prefix(function, functions, N_OF(functions)))
        return 1;
    if (!module)
        return 0;
    if (self_module && strcmp(module, self_module) == 0)
        return 1;
    return has_prefix(elmon_base_name(module), modules, N_OF(modules));
}

int elmon_frame_is_vm(const char *module)
{
    static const char *const vm[] = {"libpython", "python", "libjvm.so", "libnode.so", "node"};
    const char *b = elmon_base_name(module);
    if (!b || !has_prefix(b, vm, N_OF(vm)))
        return 0;
    /* "node" and "python3.11" themselves, not "nodefix" or "pythonic". */
    if (strncmp(b, "node", 4) == 0)
        return b[4] == 0 || strncmp(b + 4, ".so", 3) == 0;
    if (strncmp(b, "python", 6) == 0)
        return strspn(b + 6, "0123456789.dm") == strlen(b + 6);
    return 1;
}

static int same_module(const struct elmon_frame_view *a, const struct elmon_frame_view *b)
{
    return a->module && b->module && strcmp(a->module, b->module) == 0;
}

/* The innermost named frame outside the runtime, else the innermost outside
 * it (an interpreter's static helpers have no name).  A sanitizer's
 * file-static helpers (read_pollfd, printf_common, ...) have neither a
 * recognisable name nor source lines (Debian's runtime carries none); they
 * run inside an interceptor of their own module, so frames inner to the
 * innermost interceptor that are in its module and have no source line are
 * the runtime's too.  A user's callback called by an interceptor (qsort's
 * comparator) has its lines when built with -g and stays; built without,
 * it is taken for a helper and its caller is named. */
int elmon_culprit_frame(const struct elmon_frame_view *fr, int n, const char *self)
{
    int from = 0;
    for (int i = 0; i < n; i++) {
        if (!is_interceptor(fr[i].function))
            continue;
        int helpers = 1;
        for (int j = 0; j < i && helpers; j++)
            helpers = elmon_frame_is_runtime(fr[j].module, fr[j].function, self) ||
                      (same_module(&fr[j], &fr[i]) && (!fr[j].file || !*fr[j].file));
        if (helpers)
            from = i + 1;
        break;
    }
    int named = -1, unnamed = -1;
    for (int i = from; i < n && named < 0; i++) {
        if (elmon_frame_is_runtime(fr[i].module, fr[i].function, self))
            continue;
        if (fr[i].function && *fr[i].function)
            named = i;
        else if (unnamed < 0)
            unnamed = i;
    }
    if (named >= 0)
        return named;
    if (unnamed >= 0)
        return unnamed;
    return n > 0 ? 0 : -1;
}

/* JIT-compiled JavaScript (a perf map's "JS:" entries, V8's marks of its
 * tiers after the colon) is what the user wrote; the VM's own frames
 * outside it are not the culprit. */
static const char *jit_name(const struct elmon_frame_view *f)
{
    if (!f->module || strncmp(elmon_base_name(f->module), "perf-", 5) != 0 || !f->function ||
        strncmp(f->function, "JS:", 3) != 0)
        return NULL;
    const char *s = f->function + 3;
    return s + (*s == '*' || *s == '~' || *s == '^');
}

int elmon_culprit(const struct elmon_py_view *py, int n_py, const struct elmon_frame_view *fr, int n,
                  const char *self, char *out, size_t out_n, int *index)
{
    if (out_n)
        out[0] = 0;
    *index = -1;
    if (n_py > 0) {
        *index = 0;
        snprintf(out, out_n, "%s (%s:%d)", py[0].function ? py[0].function : "?",
                 py[0].file ? elmon_base_name(py[0].file) : "?", py[0].line);
        return ELMON_CULPRIT_PY;
    }
    if (n <= 0)
        return ELMON_CULPRIT_NONE;
    for (int i = 0; i < n; i++) {
        const char *j = jit_name(&fr[i]);
        if (j) {
            *index = i;
            snprintf(out, out_n, "%s", j);
            return ELMON_CULPRIT_JIT;
        }
    }
    int i = elmon_culprit_frame(fr, n, self);
    const struct elmon_frame_view *f = &fr[i];
    const char *mod = elmon_base_name(f->module ? f->module : "?");
    *index = i;
    if (f->function && *f->function && f->file && *f->file)
        snprintf(out, out_n, "%s (%s:%d)", f->function, elmon_base_name(f->file), f->line);
    else if (f->function && *f->function)
        snprintf(out, out_n, "%s (%s)", f->function, mod);
    else
        snprintf(out, out_n, "%s+0x%llx", mod, (unsigned long long)f->offset);
    return ELMON_CULPRIT_NATIVE;
}
