/*
 * The culprit rule (culprit.h).  docs/STACKS.md states it for users; the
 * test of record is tests/test_span.c.
 */
#define _GNU_SOURCE
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

/* The C and C++ runtimes' own frames (a sleep_for, a mutex's lock) are
 * where the application's call went, not the application.
 *
 * In an ASan or TSan build the innermost frame of a blocking read or clock
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
        "libstdc++.so", "libc++.so", "libc++abi.so", "libgcc_s.so", "libm.so",
        "libclang_rt.", "libasan.so", "libtsan.so", "libubsan.so", "liblsan.so", "libhwasan.so",
    };
    static const char *const functions[] = {
        "__asan_", "__tsan_", "__ubsan_", "__lsan_", "__hwasan_",
        "__msan_", "__sanitizer_", "__sancov_",
        "_ZN6__asan", "_ZN6__tsan", "_ZN7__ubsan", "_ZN6__lsan", "_ZN8__hwasan", "_ZN6__msan",
        "_ZN11__sanitizer", "_ZN14__interception", "_ZN8__sancov",
        "_ZNK6__asan", "_ZNK6__tsan", "_ZNK7__ubsan", "_ZNK6__lsan", "_ZNK8__hwasan", "_ZNK6__msan",
        "_ZNK11__sanitizer", "_ZNK14__interception", "_ZNK8__sancov",
        /* the same, demangled (libelmon's own reports) */
        "__asan::", "__tsan::", "__ubsan::", "__lsan::", "__hwasan::", "__msan::", "__sanitizer::",
        "__interception::", "__sancov::",
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
    static const char *const vm[] = {"libpython", "python", "libjvm.so", "libjli.so", "java", "libnode.so", "node"};
    const char *b = elmon_base_name(module);
    if (!b || !has_prefix(b, vm, N_OF(vm)))
        return 0;
    /* "node", "java" and "python3.11" themselves, not "nodefix", "javac"
     * or "pythonic". */
    if (strncmp(b, "node", 4) == 0)
        return b[4] == 0 || strncmp(b + 4, ".so", 3) == 0;
    if (strncmp(b, "java", 4) == 0)
        return b[4] == 0;
    if (strncmp(b, "python", 6) == 0)
        return strspn(b + 6, "0123456789.dm") == strlen(b + 6);
    return 1;
}

/* ---- JIT code: a perf map's entries, and addresses no map names ---- */

int elmon_frame_is_jit(const char *module)
{
    const char *b = elmon_base_name(module);
    if (!b)
        return 0;
    if (strcmp(b, ELMON_JIT_MODULE) == 0)
        return 1;
    size_t n = strlen(b);
    return strncmp(b, "perf-", 5) == 0 && n > 9 && strcmp(b + n - 4, ".map") == 0;
}

/* A perf map's entries for a runtime's own generated code: V8's builtins,
 * bytecode handlers and stubs; HotSpot's interpreter (every interpreted
 * Java method is one "Interpreter" blob), stubs, adapters and buffers,
 * named after their kind (JDK 17's 86 such names, tests/test_span.c).  A
 * compiled Java method is named by its signature instead. */
static int jit_plumbing(const char *name)
{
    static const char *const prefixes[] = {
        "Builtin:", "BytecodeHandler:", "Stub:", "Handler:",
        "Interpreter", "StubRoutines", "I2C/C2I adapters", "MethodHandles adapters", "adapters",
        "native signature handlers", "vtable chunks", "InlineCacheBuffer", "C1 temporary CodeBuffer",
        "Signature Handler Temp Buffer", "VM_Version stub", "jni_fast_Get", "resolve_", "g1_", "ic_miss_stub",
        "wrong_method", "flush_icache_stub", "getCPUIDBrandString_stub", "delayed StackOverflowError",
    };
    static const char *const suffixes[] = {"Blob", " Runtime1 stub", "_Java", " throw_exception"};
    if (has_prefix(name, prefixes, N_OF(prefixes)))
        return 1;
    size_t n = strlen(name);
    for (size_t i = 0; i < N_OF(suffixes); i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

/* A JIT entry for code of the runtime's own library, written in its
 * language: a Java method of the JDK ("void java.lang.Thread.sleep(long)"),
 * or JavaScript of Node's own modules ("JS:~readSync node:fs:708:18"). */
static int jit_library(const char *name)
{
    static const char *const jdk[] = {"java.", "javax.", "jdk.", "sun.", "com.sun."};
    if (strncmp(name, "JS:", 3) == 0) {
        const char *sp = strchr(name, ' ');
        return sp && strncmp(sp + 1, "node:", 5) == 0;
    }
    const char *paren = strchr(name, '(');
    const char *sp = paren ? memrchr(name, ' ', (size_t)(paren - name)) : NULL;
    return sp && has_prefix(sp + 1, jdk, N_OF(jdk));
}

/* A JIT entry as the culprit names it: V8's "JS:*spinFor /srv/app.js:3:17"
 * without its kind and tier mark ("spinFor /srv/app.js:3:17", an anonymous
 * function "(anonymous) ..."), a Java method without its return type
 * ("Blocky.spin(long)"), anything else as the map has it. */
static void jit_text(const char *name, char *out, size_t out_n)
{
    if (strncmp(name, "JS:", 3) == 0 || strncmp(name, "Eval:", 5) == 0) {
        const char *s = strchr(name, ':') + 1;
        s += *s == '*' || *s == '~' || *s == '^' || *s == '+';
        snprintf(out, out_n, "%s%s", *s == ' ' ? "(anonymous)" : "", s);
        return;
    }
    const char *paren = strchr(name, '(');
    const char *sp = paren ? memrchr(name, ' ', (size_t)(paren - name)) : NULL;
    snprintf(out, out_n, "%s", sp && !strchr(name, ':') ? sp + 1 : name);
}

int elmon_frame_class(const struct elmon_frame_view *f, const char *self)
{
    if (elmon_frame_is_jit(f->module)) {
        if (!f->function || !*f->function)
            return ELMON_FR_JIT_UNNAMED;
        if (jit_plumbing(f->function))
            return ELMON_FR_JIT_RUNTIME;
        return jit_library(f->function) ? ELMON_FR_JIT_LIBRARY : ELMON_FR_JIT_APP;
    }
    if (elmon_frame_is_runtime(f->module, f->function, self))
        return ELMON_FR_RUNTIME;
    if (elmon_frame_is_vm(f->module))
        return ELMON_FR_VM;
    return ELMON_FR_APP;
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
        if (elmon_frame_class(&fr[i], self) != ELMON_FR_APP)
            continue;
        if (fr[i].function && *fr[i].function)
            named = i;
        else if (unnamed < 0)
            unnamed = i;
    }
    if (named >= 0)
        return named;
    return unnamed;
}

static int is_libelmon(const struct elmon_frame_view *f, const char *self)
{
    const char *b = elmon_base_name(f->module);
    return (self && f->module && strcmp(f->module, self) == 0) || (b && strncmp(b, "libelmon", 8) == 0);
}

/* The frame a statement about the runtime names when no frame of the
 * application is known: the innermost named frame of the VM or JIT
 * plumbing or library, else of the C library, else -1. */
static int runtime_frame(const struct elmon_frame_view *fr, int n, const char *self)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            int k = elmon_frame_class(&fr[i], self);
            int want = pass == 0 ? k == ELMON_FR_VM || k == ELMON_FR_JIT_RUNTIME || k == ELMON_FR_JIT_LIBRARY
                                 : k == ELMON_FR_RUNTIME && !is_libelmon(&fr[i], self);
            if (want && fr[i].function && *fr[i].function)
                return i;
        }
    return -1;
}

static void native_text(const struct elmon_frame_view *f, char *out, size_t out_n)
{
    const char *mod = elmon_base_name(f->module ? f->module : "?");
    if (f->function && *f->function && f->file && *f->file)
        snprintf(out, out_n, "%s (%s:%d)", f->function, elmon_base_name(f->file), f->line);
    else if (f->function && *f->function)
        snprintf(out, out_n, "%s (%s)", f->function, mod);
    else
        snprintf(out, out_n, "%s+0x%llx", mod, (unsigned long long)f->offset);
}

int elmon_frames_jit_unnamed(const struct elmon_frame_view *fr, int n)
{
    for (int i = 0; i < n; i++)
        if (elmon_frame_class(&fr[i], NULL) == ELMON_FR_JIT_UNNAMED)
            return 1;
    return 0;
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
    /* The application's JIT-compiled code (JavaScript, Java), which the
     * runtime's native frames inside it merely serve. */
    for (int i = 0; i < n; i++)
        if (elmon_frame_class(&fr[i], self) == ELMON_FR_JIT_APP) {
            *index = i;
            jit_text(fr[i].function, out, out_n);
            return ELMON_CULPRIT_JIT;
        }
    int i = elmon_culprit_frame(fr, n, self);
    if (i >= 0) {
        *index = i;
        native_text(&fr[i], out, out_n);
        return ELMON_CULPRIT_NATIVE;
    }
    /* Only the runtime's own code is known: say so, naming where it is
     * ("in libjvm.so: os::PlatformEvent::park(long)"), rather than name
     * its plumbing as the culprit. */
    i = runtime_frame(fr, n, self);
    int j = 0;
    while (j < n && elmon_frame_class(&fr[j], self) != ELMON_FR_JIT_UNNAMED)
        j++;
    char what[400];
    if (i < 0) {
        /* Nothing named at all. */
        *index = j < n ? j : 0;
        native_text(&fr[*index], what, sizeof what);
        snprintf(out, out_n, j < n ? "in " ELMON_JIT_UNNAMED_TEXT " (%s)" : "in %s", what);
        return ELMON_CULPRIT_RUNTIME;
    }
    if (elmon_frame_is_jit(fr[i].module))
        jit_text(fr[i].function, what, sizeof what);
    else
        snprintf(what, sizeof what, "%s", fr[i].function);
    *index = i;
    const char *where = elmon_frame_is_jit(fr[i].module) ? "JIT code" : elmon_base_name(fr[i].module ? fr[i].module : "?");
    if (j < n && j < i)
        snprintf(out, out_n, "in " ELMON_JIT_UNNAMED_TEXT ", called from %s: %s", where, what);
    else if (j < n)
        snprintf(out, out_n, "in %s: %s, called from " ELMON_JIT_UNNAMED_TEXT, where, what);
    else
        snprintf(out, out_n, "in %s: %s", where, what);
    return ELMON_CULPRIT_RUNTIME;
}
