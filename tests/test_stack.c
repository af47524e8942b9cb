/*
 * Stack capture (preload/capture*.c and friends): real programs under
 * LD_PRELOAD whose loop blocks in a known place; the events file must name
 * that place and the cause, and the host must not notice the capture.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include "support.h"
#include "culprit.h"
#include "symbolize.h"
#include "unwind.h"

#define FIX ELMON_BIN_DIR "/stack_fix"
/* The same fixture built by clang (tests/stack.cmake), whose DWARF has no
 * .debug_aranges: file:line must come out the same. */
#define FIX_CLANG ELMON_BIN_DIR "/stack_fix_clang"
/* And built with AddressSanitizer: the culprit is the fixture's function,
 * not the runtime's interceptor of read or clock_gettime. */
#define FIX_ASAN ELMON_BIN_DIR "/stack_fix_asan"
#define FIX_SRC ELMON_SRC_DIR "/tests/fixtures/stack_fix.c"
#define PY_SRC ELMON_SRC_DIR "/tests/fixtures/stack_asyncio.py"
/* And as a shared object, which this process loads and symbolizes itself. */
#define FIX_CLANG_SO ELMON_BIN_DIR "/libstack_fix_clang.so"

struct outcome {
    struct run r;
    char **lines;
    char *dir;
};

/* Run argv under libelmon with an events file and the extra settings. */
static void run_with(struct outcome *o, char *const argv[], const char *e1, const char *e2)
{
    o->dir = make_tmpdir("stack");
    char ev[512];
    snprintf(ev, sizeof ev, "ELMON_EVENTS=%s/events.json", o->dir);
    char *env[] = {ev, "ELMON_CAPTURE_WAIT_MS=200", (char *)e1, (char *)e2, NULL};
    if (!e1)
        env[2] = NULL;
    ck_assert_int_eq(run_prog(argv, env, 1, 60000, &o->r), 0);
    ck_assert_msg(!o->r.timed_out, "%s timed out; stderr:\n%s", argv[0], o->r.err);
    ck_assert_msg(WIFEXITED(o->r.status) && WEXITSTATUS(o->r.status) == 0,
                  "%s failed (status %d); stderr:\n%s", argv[0], o->r.status, o->r.err);
    char path[600];
    snprintf(path, sizeof path, "%s/events.json", o->dir);
    o->lines = read_lines(path, NULL);
    ck_assert_msg(o->lines, "no events file; stderr:\n%s", o->r.err);
    const char *why = span_records_complete(o->lines);
    ck_assert_msg(!why, "%s", why);
}

static void done(struct outcome *o)
{
    free_lines(o->lines);
    run_free(&o->r);
    free(o->dir);
}

/* The first "block" record whose text contains needle (NULL: any). */
static const char *block_with(struct outcome *o, const char *needle)
{
    for (int i = 0; o->lines[i]; i++)
        if (json_is(o->lines[i], "type", "block") && (!needle || strstr(o->lines[i], needle)))
            return o->lines[i];
    return NULL;
}

/* Line of the first line of src holding text. */
static int line_of(const char *src, const char *text)
{
    int n;
    char **lines = read_lines(src, &n);
    ck_assert_ptr_nonnull(lines);
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        if (strstr(lines[i], text))
            found = i + 1;
    free_lines(lines);
    ck_assert_int_gt(found, 0);
    return found;
}

/* Line of the "BLOCK:tag" marker in a source file. */
static int marker_line(const char *src, const char *tag)
{
    char pat[64];
    snprintf(pat, sizeof pat, "BLOCK:%s ", tag);
    return line_of(src, pat);
}

/* The frame object of function fn in a record's stack: its file and line. */
static int frame_of(const char *rec, const char *fn, char *file, size_t n)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"function\":\"%s\"", fn);
    const char *p = strstr(rec, pat);
    if (!p)
        return -1;
    const char *end = strchr(p, '}');
    const char *f = strstr(p, "\"file\":\"");
    const char *l = strstr(p, "\"line\":");
    if (!f || !l || f > end || l > end)
        return 0;
    f += 8;
    snprintf(file, n, "%.*s", (int)(strchr(f, '"') - f), f);
    return atoi(l + 7);
}

/* The record names fn at file:line near the BLOCK marker, with the cause. */
/* build: 0 this build's compiler, 1 clang, 2 clang with ASan. */
static void check_c_block(int build, const char *mode, const char *fn, const char *cls, const char *syscall,
                          const char *how)
{
    struct outcome o;
    /* The sanitizer stages (scripts/test-sanitizers) preload their shared
     * runtime into every program: an executable with ASan linked in refuses
     * it, and TSan's crashes an uninstrumented one.  There build 0 is
     * itself clang-built and instrumented, and covers both cases. */
    if (build != 0 && getenv("ELMON_TEST_PRELOAD_PREFIX"))
        return;
    const char *fix = build == 0 ? FIX : build == 1 ? FIX_CLANG : FIX_ASAN;
    ck_assert_msg(build == 0 || access(fix, X_OK) == 0,
                  "%s missing: tests/stack.cmake builds it with clang (scripts/install-deps installs clang)", fix);
    char *argv[] = {(char *)fix, "-m", (char *)mode, NULL};
    run_with(&o, argv, NULL, NULL);
    const char *rec = block_with(&o, fn);
    ck_assert_msg(rec, "no block record names %s; stderr:\n%s\nfirst record: %s", fn, o.r.err,
                  o.lines[0] ? o.lines[0] : "none");
    char file[512] = "";
    int line = frame_of(rec, fn, file, sizeof file);
    int want = marker_line(FIX_SRC, mode);
    ck_assert_msg(strstr(file, "stack_fix.c"), "%s: file %s", fn, file);
    /* The signal lands anywhere in the blocking statement's loop: in
     * stack_busy_cpu that is the loop's lines, marker - 1 to marker + 3
     * (the store of a new max_gap_us, which the capture's own gap makes
     * run once). */
    ck_assert_msg(line >= want - 2 && line <= want + 3, "%s: line %d, BLOCK marker at %d", fn, line, want);
    ck_assert_msg(json_is(rec, "class", cls), "cause class %s, wanted %s: %s", json_get(rec, "class"), cls, rec);
    if (syscall)
        ck_assert_msg(strstr(json_get(rec, "syscall"), syscall), "syscall %s: %s", json_get(rec, "syscall"), rec);
    ck_assert_msg(json_is(rec, "capture", how), "capture %s, wanted %s", json_get(rec, "capture"), how);
    ck_assert_msg(json_get(rec, "culprit") && strstr(json_get(rec, "culprit"), fn), "culprit %s", json_get(rec, "culprit"));
    /* The fixture's frame carries its module's build-id and its offset. */
    char pat[128];
    snprintf(pat, sizeof pat, "\"function\":\"%s\"", fn);
    const char *fr = strstr(rec, pat);
    while (fr > rec && *fr != '{')
        fr--;
    const char *bid = strstr(fr, "\"build_id\":\"");
    ck_assert_msg(bid && strspn(bid + 12, "0123456789abcdef") >= 40, "no build-id in %.300s", fr);
    ck_assert_msg(strstr(fr, "\"offset\":\"0x") && strstr(fr, "\"offset\":\"0x") < strchr(fr, '}'), "no offset in %.300s", fr);
    /* The human line on stderr (ELMON_LOG's default) is followed by the
     * symbolized stack, the function among its frames. */
    const char *human = strstr(o.r.err, "still blocked");
    ck_assert_msg(human, "no human line: %s", o.r.err);
    char framepat[128];
    snprintf(framepat, sizeof framepat, "  %s (", fn);
    const char *hf = strstr(human, framepat);
    ck_assert_msg(strstr(human, "\n    #0  ") && hf && strstr(hf, "stack_fix.c:") &&
                  strstr(hf, "stack_fix.c:") < strchr(hf, '\n'), "no stack under the human line: %.1500s", human);
    /* block_begin of the same span carries the same capture. */
    int begun = 0;
    for (int i = 0; o.lines[i]; i++)
        begun |= json_is(o.lines[i], "type", "block_begin") && strstr(o.lines[i], fn) != NULL;
    ck_assert(begun);
    if (strcmp(mode, "usleep") == 0) {
        const char *u = strstr(o.r.out, "usleep_ms=");
        ck_assert_ptr_nonnull(u);
        ck_assert_msg(atof(u + 10) >= 299.0, "usleep was shortened: %s", u);
    }
    done(&o);
}

/* A sample that lands on a line-table row of line 0 (clang emits them
 * inside loops) is named by the statement before it in the same function,
 * never "line 0".  Deterministic: every such row of stack_busy_cpu in
 * the clang-built shared object is symbolized here, in this process, and
 * compared with the rows objdump decodes from the same line table. */
START_TEST(line_zero_rows_named_by_statement_before)
{
    ck_assert_msg(access(FIX_CLANG_SO, R_OK) == 0,
                  "%s missing: tests/stack.cmake builds it with clang (scripts/install-deps installs clang)", FIX_CLANG_SO);
    void *h = dlopen(FIX_CLANG_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h, "dlopen: %s", dlerror());
    void *fn = dlsym(h, "stack_busy_cpu");
    ck_assert_ptr_nonnull(fn);
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    ck_assert(dladdr1(fn, &di, (void **)&sym, RTLD_DL_SYMENT) && sym);
    uintptr_t base = (uintptr_t)di.dli_fbase;
    uintptr_t lo = (uintptr_t)fn - base, hi = lo + sym->st_size;
    /* The rows: "FILE LINE 0xADDR [x]", sorted by address within a sequence. */
    struct run r;
    char *argv[] = {"objdump", "--dwarf=decodedline", FIX_CLANG_SO, NULL};
    ck_assert_int_eq(run_prog(argv, NULL, 0, 60000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "objdump: %s", r.err);
    ck_assert_int_eq(elmon_sym_load(), 0);
    static char text[1 << 20];
    struct elmon_arena a, *c = &a;
    elmon_arena_init(&a, text, sizeof text);
    int last_line = 0, zeros = 0, named = 0;
    for (char *ln = strtok(r.out, "\n"); ln; ln = strtok(NULL, "\n")) {
        char file[512];
        int line;
        unsigned long addr;
        if (sscanf(ln, "%511s %d 0x%lx", file, &line, &addr) != 3 || addr < lo || addr >= hi)
            continue;
        if (line != 0) {
            last_line = line;
            /* A row with a line keeps it. */
            struct elmon_frame f;
            elmon_sym_frame(c, base + addr, 0, NULL, &f);
            ck_assert_msg(f.line == line, "row 0x%lx of line %d named line %d", addr, line, f.line);
            named++;
            continue;
        }
        ck_assert_msg(last_line > 0, "stack_busy_cpu starts with a row of line 0: %s", ln);
        zeros++;
        struct elmon_frame f;
        elmon_sym_frame(c, base + addr, 0, NULL, &f);
        ck_assert_msg(f.file && strstr(f.file, "stack_fix.c"), "row 0x%lx: file %s", addr, f.file ? f.file : "none");
        ck_assert_msg(f.line == last_line, "row 0x%lx of line 0 named line %d, the statement before is line %d",
                      addr, f.line, last_line);
        /* The same from a return address just past it. */
        elmon_sym_frame(c, base + addr + 1, 1, NULL, &f);
        ck_assert_int_eq(f.line, last_line);
    }
    /* Without such rows the case would prove nothing: clang 14 -O1 emits
     * several in this loop. */
    ck_assert_msg(zeros > 0 && named > 0, "stack_busy_cpu: %d rows of line 0, %d with a line\n%s", zeros, named, r.out);
    run_free(&r);
    dlclose(h);
}
END_TEST

/* A sample that lands inside a sanitizer's runtime is never the culprit:
 * the code that called into it is.  Deterministic: every function the
 * statically linked ASan runtime adds to the clang+ASan fixture is put,
 * as the innermost frame, under an interceptor and stack_busy_cpu, as
 * the signal finds them when it lands in a helper of
 * __interceptor_clock_gettime (__asan::QuickCheckForUnpoisonedRegion, seen
 * on CI). */
static struct elmon_frame_view frame_at(const char *module, const char *function, const char *file, int line)
{
    struct elmon_frame_view f = {.module = module, .function = function, .file = file, .line = line};
    return f;
}

/* The text symbols nm lists for a program, sorted, one per line. */
static char **text_symbols(const char *prog, int *n)
{
    struct run r;
    char *argv[] = {"nm", "--defined-only", (char *)prog, NULL};
    ck_assert_int_eq(run_prog(argv, NULL, 0, 60000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "nm %s: %s", prog, r.err);
    char **syms = calloc(strlen(r.out) / 4 + 2, sizeof *syms);
    *n = 0;
    for (char *ln = strtok(r.out, "\n"); ln; ln = strtok(NULL, "\n")) {
        char kind, name[1024];
        if (sscanf(ln, "%*s %c %1023s", &kind, name) == 2 && strchr("tTwW", kind) && name[0] != '.')
            syms[(*n)++] = strdup(name);
    }
    run_free(&r);
    return syms;
}

static int has_symbol(char **syms, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(syms[i], name) == 0)
            return 1;
    return 0;
}

/* A mangled name whose outermost namespace is a sanitizer's: _ZN, an
 * optional K, then <length><name>. */
static int runtime_namespace(const char *sym)
{
    static const char *const spaces[] = {"__asan", "__sanitizer", "__interception", "__lsan", "__ubsan", "__sancov"};
    if (strncmp(sym, "_ZN", 3) != 0)
        return 0;
    const char *p = sym + 3 + (sym[3] == 'K');
    char *end;
    long len = strtol(p, &end, 10);
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
        if (end != p && len == (long)strlen(spaces[i]) && strncmp(end, spaces[i], (size_t)len) == 0)
            return 1;
    return 0;
}

START_TEST(sanitizer_runtime_never_culprit)
{
    ck_assert_msg(access(FIX_ASAN, R_OK) == 0 && access(FIX_CLANG, R_OK) == 0,
                  "%s missing: tests/stack.cmake builds it with clang (scripts/install-deps installs clang)", FIX_ASAN);
    int n_asan, n_plain;
    char **asan = text_symbols(FIX_ASAN, &n_asan), **plain = text_symbols(FIX_CLANG, &n_plain);
    ck_assert(has_symbol(asan, n_asan, "__interceptor_clock_gettime"));
    int runtime = 0, named = 0;
    for (int i = 0; i < n_asan; i++) {
        if (has_symbol(plain, n_plain, asan[i]))
            continue;   /* the fixture's own code */
        runtime++;
        struct elmon_frame_view st[] = {
            frame_at(FIX_ASAN, asan[i], NULL, 0),
            frame_at(FIX_ASAN, "__interceptor_clock_gettime", NULL, 0),
            frame_at(FIX_ASAN, "stack_busy_cpu", FIX_SRC, 58),
            frame_at(FIX_ASAN, "main", FIX_SRC, 158),
        };
        ck_assert_msg(elmon_culprit_frame(st, 4, NULL) == 2, "culprit %s", st[elmon_culprit_frame(st, 4, NULL)].function);
        /* Reached through an instrumentation entry (__asan_report_load8)
         * rather than an interceptor, a function in one of the runtime's
         * namespaces (read here from the mangled name itself) is still
         * known by its name. */
        if (runtime_namespace(asan[i])) {
            named++;
            struct elmon_frame_view en[] = {st[0], frame_at(FIX_ASAN, "stack_busy_cpu", FIX_SRC, 58)};
            ck_assert_msg(elmon_culprit_frame(en, 2, NULL) == 1, "culprit %s without an interceptor", asan[i]);
        }
    }
    /* The runtime is there: thousands of functions, not a handful, most
     * of them in its namespaces. */
    ck_assert_msg(runtime > 1000 && named > 1000, "only %d runtime functions (%d in its namespaces) in %s", runtime,
                  named, FIX_ASAN);
    /* The name rule is the runtime's namespaces, not any C++ name; and the
     * helper rule is for the interceptor's own module. */
    struct elmon_frame_view app[] = {
        frame_at(FIX_ASAN, "_ZN3app6handleEv", NULL, 0),
        frame_at(FIX_ASAN, "main", FIX_SRC, 158),
    };
    ck_assert_int_eq(elmon_culprit_frame(app, 2, NULL), 0);
    struct elmon_frame_view lib[] = {
        frame_at("/srv/libplugin.so", "plugin_cmp", NULL, 0),
        frame_at(FIX_ASAN, "__interceptor_qsort", NULL, 0),
        frame_at(FIX_ASAN, "main", FIX_SRC, 158),
    };
    ck_assert_int_eq(elmon_culprit_frame(lib, 3, NULL), 0);
    /* A user's callback run by an interceptor (qsort's comparator) has its
     * source lines and is the culprit. */
    struct elmon_frame_view cb[] = {
        frame_at(FIX_ASAN, "by_name", FIX_SRC, 40),
        frame_at(FIX_ASAN, "_ZL22wrapped_qsort_r_comparPKvS0_Pv", NULL, 0),
        frame_at(FIX_ASAN, "__interceptor_qsort_r", NULL, 0),
        frame_at(FIX_ASAN, "main", FIX_SRC, 158),
    };
    ck_assert_int_eq(elmon_culprit_frame(cb, 4, NULL), 0);
    /* A shared runtime (gcc's -fsanitize=address): its module is skipped. */
    struct elmon_frame_view sh[] = {
        frame_at("/usr/lib/x86_64-linux-gnu/libasan.so.8", NULL, NULL, 0),
        frame_at("/usr/lib/x86_64-linux-gnu/libasan.so.8", "read", NULL, 0),
        frame_at("/usr/lib/x86_64-linux-gnu/libc.so.6", "read", NULL, 0),
        frame_at("/srv/app", "handle", "app.c", 12),
    };
    ck_assert_int_eq(elmon_culprit_frame(sh, 4, NULL), 3);
    ck_assert_int_eq(elmon_culprit_frame(sh, 0, NULL), -1);
    for (int i = 0; i < n_asan; i++)
        free(asan[i]);
    for (int i = 0; i < n_plain; i++)
        free(plain[i]);
    free(asan);
    free(plain);
}
END_TEST

/* The walk ends at a return address outside mapped memory.  A leaf
 * function's entry has CFA = rsp + 8 and its return address at [rsp]: a
 * fake stack whose first word is 0x1000 makes the unwinder's next frame
 * that address, as a frame without CFI did under TSan on CI ("addr":
 * "0x1000" after the runtime's frames); an address in data is no code
 * either. */
static __attribute__((noinline)) int unwind_leaf(int x)
{
    return x + 1;
}

static uint64_t fake_stack[64];

START_TEST(unwind_stops_at_unmapped_return_address)
{
    ck_assert_int_eq(elmon_unwind_load(), 0);
    elmon_unwind_refresh();
    uintptr_t addrs[8];
    struct elmon_regs regs = {.valid = (1u << 17) - 1};
    regs.r[16] = (uint64_t)(uintptr_t)unwind_leaf;
    regs.r[7] = (uint64_t)(uintptr_t)&fake_stack[8];   /* rsp */
    regs.r[6] = 0;                                      /* rbp */
    /* A return address in this program's code is followed... */
    fake_stack[8] = (uint64_t)(uintptr_t)unwind_leaf + 1;
    int n = elmon_unwind_regs(&regs, addrs, 8);
    ck_assert_msg(n >= 2 && addrs[1] == (uintptr_t)unwind_leaf + 1, "n %d", n);
    /* ...one in no mapping is not, nor one in data (this very stack). */
    const uint64_t bad[] = {0x1000, (uint64_t)(uintptr_t)&fake_stack[20]};
    for (int i = 0; i < 2; i++) {
        fake_stack[8] = bad[i];
        n = elmon_unwind_regs(&regs, addrs, 8);
        ck_assert_msg(n == 1 && addrs[0] == (uintptr_t)unwind_leaf, "return address %#lx: n %d, addrs[1] %#lx",
                      (unsigned long)bad[i], n, n > 1 ? (unsigned long)addrs[1] : 0ul);
    }
    ck_assert_int_eq(unwind_leaf(1), 2);
}
END_TEST

/* A /proc/self/maps line longer than the reader's buffer (a long path) is
 * read to its end, not taken for a line of its own: here the path's tail
 * reads "0-7fffffffffff r-xp ...", which as a line would declare the
 * whole address space readable code, so the walk would follow 0x1000. */
START_TEST(maps_long_path_is_one_line)
{
    ck_assert_int_eq(elmon_unwind_load(), 0);
    char *dir = make_tmpdir("maps");
    /* The path starts at column 73 of its maps line (x86-64 addresses are
     * 12 hex digits); the reader's first 511 bytes end 438 bytes into it. */
    char path[1024];
    int len = snprintf(path, sizeof path, "%s", dir);
    ck_assert_msg(len <= 438 - 3, "TMPDIR too long for this case: %s", dir);
    while (len < 438 - 1) {
        /* "/" and a component: the last one ends exactly at the mark, and
         * none leaves less than two bytes for the next. */
        int left = 438 - 1 - len, comp = left - 1;
        if (comp > 200)
            comp = left - 201 >= 2 ? 200 : 199;
        path[len++] = '/';
        memset(path + len, 'p', (size_t)comp);
        len += comp;
        path[len] = 0;
        ck_assert_int_eq(mkdir(path, 0700), 0);
    }
    ck_assert_int_eq(len, 438 - 1);
    len += snprintf(path + len, sizeof path - (size_t)len, "/0-7fffffffffff r-xp 00000000 00:00 0 ");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path + len, sizeof path - (size_t)len, "/lib.so");
    char *cp[] = {"cp", FIX_CLANG_SO, path, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(cp, NULL, 0, 30000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cp: %s", r.err);
    run_free(&r);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h, "dlopen: %s", dlerror());
    /* The layout assumed above, checked on the real line. */
    char **maps = read_lines("/proc/self/maps", NULL);
    int seen = 0;
    for (int i = 0; maps[i]; i++) {
        char *p = strstr(maps[i], path);
        if (p) {
            ck_assert_int_eq((int)(p - maps[i]), 73);
            seen = 1;
        }
    }
    free_lines(maps);
    ck_assert(seen);
    elmon_unwind_refresh();
    uintptr_t addrs[8];
    struct elmon_regs regs = {.valid = (1u << 17) - 1};
    regs.r[16] = (uint64_t)(uintptr_t)unwind_leaf;
    regs.r[7] = (uint64_t)(uintptr_t)&fake_stack[8];
    fake_stack[8] = 0x1000;
    int n = elmon_unwind_regs(&regs, addrs, 8);
    ck_assert_msg(n == 1, "0x1000 taken for code: n %d", n);
    dlclose(h);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* A perf map line longer than the reader's buffer keeps its cut name, and
 * its tail, which here reads "1000 100 JS:*phantom", names nothing. */
START_TEST(perf_map_long_name_is_one_line)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    /* One for this pid can only be a dead process's (a JIT that left its
     * map behind, as node does). */
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    FILE *f = fdopen(fd, "w");
    /* "7f0000000000 40 " is 16 bytes; the reader's first 1023 end 1007
     * bytes into the name. */
    fprintf(f, "7f0000000000 40 JS:*long ");
    for (int i = 0; i < 1007 - 9; i++)
        fputc('x', f);
    fprintf(f, "1000 100 JS:*phantom\n7f0000000100 40 JS:*short\n");
    fclose(f);
    ck_assert_int_eq(elmon_sym_load(), 0);
    static char text[65536];
    struct elmon_arena a, *c = &a;
    elmon_arena_init(&a, text, sizeof text);
    struct elmon_frame fr;
    elmon_sym_frame(c, 0x1010, 0, NULL, &fr);
    ck_assert_msg(!fr.function || !strstr(fr.function, "phantom"), "0x1010 named %s", fr.function);
    elmon_sym_frame(c, 0x7f0000000010, 0, NULL, &fr);
    ck_assert_msg(fr.function && strncmp(fr.function, "JS:*long xxx", 12) == 0 && strlen(fr.function) == 1007,
                  "long name: %.40s (%zu)", fr.function ? fr.function : "none", fr.function ? strlen(fr.function) : 0);
    elmon_sym_frame(c, 0x7f0000000110, 0, NULL, &fr);
    ck_assert_str_eq(fr.function ? fr.function : "none", "JS:*short");
    unlink(path);
}
END_TEST

/* C++ and Rust symbols are demangled, parameters and all; anything else is
 * left alone; a name of kilobytes is cut, marked. */
START_TEST(symbols_demangled)
{
    static const char *const cases[][2] = {
        {"_ZN3app5CacheIiE4loadERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
         "app::Cache<int>::load(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)"},
        {"_ZN2os13PlatformEvent4parkEl", "os::PlatformEvent::park(long)"},
        {"_ZNSt6chrono3_V212steady_clock3nowEv@@GLIBCXX_3.4.19", "std::chrono::_V2::steady_clock::now()"},
        /* Rust, legacy (the hash is left out) and v0 */
        {"_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write"},
        {"_RNvCs1234_7mycrate4main", "mycrate::main"},
        {"main", NULL}, {"_start", NULL}, {"__select", NULL}, {"_Znot_a_name", NULL}, {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *d = elmon_sym_demangle(cases[i][0]);
        if (cases[i][1])
            ck_assert_msg(d && strcmp(d, cases[i][1]) == 0, "%s: %s", cases[i][0], d ? d : "(none)");
        else
            ck_assert_msg(!d, "%s demangled to %s", cases[i][0], d);
        free(d);
    }
    /* A template nested 60 deep (about 1.3 KB), cut at ELMON_SYM_NAME_MAX. */
    char deep[4096] = "_Z1fI";
    for (int i = 0; i < 60; i++)
        strcat(deep, "St6vectorI");
    strcat(deep, "i");
    for (int i = 0; i < 60; i++)
        strcat(deep, "E");
    strcat(deep, "EvT_");
    char *d = elmon_sym_demangle(deep);
    ck_assert_msg(d && strlen(d) == ELMON_SYM_NAME_MAX && strcmp(d + ELMON_SYM_NAME_MAX - 3, "...") == 0 &&
                  strncmp(d, "void f<std::vector<", 19) == 0, "%s", d ? d : "(none)");
    free(d);
}
END_TEST

/* The mapping that held an address when its stack was taken decides its
 * module: anonymous memory is [jit] (whatever the module lists say), a
 * file other than libdwfl's module is named after the file. */
START_TEST(frame_module_is_its_mapping)
{
    ck_assert_int_eq(elmon_sym_load(), 0);
    static char text[65536];
    struct elmon_arena a;
    elmon_arena_init(&a, text, sizeof text);
    struct elmon_frame fr;
    uintptr_t addr = (uintptr_t)(void *)elmon_sym_demangle;
    elmon_sym_frame(&a, addr, 0, NULL, &fr);
    ck_assert_msg(fr.function && strcmp(fr.function, "elmon_sym_demangle") == 0, "%s", fr.function);
    struct elmon_sym_where anon = {1, addr & ~(uintptr_t)0xfff, 0, NULL};
    elmon_sym_frame(&a, addr, 0, &anon, &fr);
    ck_assert_str_eq(fr.module, "[jit]");
    ck_assert_ptr_null(fr.function);
    ck_assert_uint_eq(fr.offset, addr & 0xfff);
    struct elmon_sym_where other = {1, addr & ~(uintptr_t)0xfff, 0x5000, "/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1"};
    elmon_sym_frame(&a, addr, 0, &other, &fr);
    ck_assert_str_eq(fr.module, "/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1");
    ck_assert_ptr_null(fr.function);
    ck_assert_uint_eq(fr.offset, (addr & 0xfff) + 0x5000);
}
END_TEST

/* A program under a directory called dev (~/dev/project) is unwound like
 * any other: only device files (/dev/...) are left out of the readable
 * ranges.  Before, its own unwind tables were unreadable and the walk
 * guessed past its first frame. */
START_TEST(unwind_program_under_a_dev_directory)
{
    char *dir = make_tmpdir("unwdev");
    char *sub = strf("%s/dev", dir), *prog = strf("%s/dev/stack_fix", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    char *cp[] = {"cp", FIX, prog, NULL};
    struct run r;
    ck_assert_int_eq(run_prog(cp, NULL, 0, 30000, &r), 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cp: %s", r.err);
    run_free(&r);
    struct outcome o;
    char *argv[] = {prog, "-m", "cpu", NULL};
    run_with(&o, argv, NULL, NULL);
    const char *rec = block_with(&o, "stack_busy_cpu");
    ck_assert_msg(rec && json_is(rec, "capture", "signal"), "no signal capture: %s", rec ? rec : o.r.err);
    /* From stack_busy_cpu out to main, every frame is a named function of
     * the program. */
    const char *from = strstr(rec, "\"function\":\"stack_busy_cpu\"");
    const char *to = strstr(rec, "\"function\":\"main\"");
    ck_assert_msg(from && to && from < to, "stack_busy_cpu ... main not in %s", rec);
    for (const char *p = strstr(from, "},{"); p && p < to; p = strstr(p + 3, "},{")) {
        const char *fr = p + 2, *end = strchr(fr, '}');
        const char *mod = strstr(fr, "\"module\":\""), *fn = strstr(fr, "\"function\":\"");
        const char *mod_end = mod ? strchr(mod + 10, '"') : NULL;
        ck_assert_msg(mod && mod < end && mod_end - (mod + 10) >= 14 && strncmp(mod_end - 14, "/dev/stack_fix", 14) == 0 &&
                          fn && fn < end,
                      "frame %.*s in %s", (int)(end - fr + 1), fr, rec);
    }
    done(&o);
    unlink(prog);
    rmdir(sub);
    remove_tree(dir);
    free(prog);
    free(sub);
    free(dir);
}
END_TEST

/* The keys of the JSON object that starts at obj ('{'), its own level only. */
static int object_keys(const char *obj, char keys[][40], int max)
{
    int depth = 0, n = 0;
    for (const char *p = obj; *p; p++) {
        if (*p == '"') {
            const char *q = p + 1;
            while (*q && *q != '"')
                q += q[0] == '\\' && q[1] ? 2 : 1;
            if (!*q)
                break;
            if (depth == 1 && q[1] == ':' && n < max)
                snprintf(keys[n++], 40, "%.*s", (int)(q - p - 1), p + 1);
            p = q;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth == 0) {
            break;
        }
    }
    return n;
}

/* The members of `cause` and of a `stack[]` frame in a real record are the
 * rows of docs/STACKS.md's table (`cause.X`, `stack[].X`), both ways. */
START_TEST(capture_members_match_table)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "cpu", NULL};
    run_with(&o, argv, NULL, NULL);
    const char *rec = block_with(&o, "stack_busy_cpu");
    ck_assert_msg(rec, "no block record: %s", o.r.err);
    /* Every member is filled by an answered signal capture. */
    ck_assert_msg(json_is(rec, "capture", "signal"), "capture %s, not an answered signal: %s", json_get(rec, "capture"),
                  rec);
    char **doc = read_lines(ELMON_SRC_DIR "/docs/STACKS.md", NULL);
    ck_assert_ptr_nonnull(doc);
    static const char *const objs[] = {"cause", "stack[]"};
    for (int k = 0; k < 2; k++) {
        char table[32][40];
        int nt = 0;
        size_t pl = strlen(objs[k]);
        for (int i = 0; doc[i]; i++) {
            /* a row's first cell: `obj.key` or `obj.a`, `obj.b` */
            if (strncmp(doc[i], "| `", 3) != 0)
                continue;
            const char *cell_end = strstr(doc[i] + 2, " |");
            for (const char *p = doc[i] + 2; p && cell_end && p < cell_end; p = strchr(p + 1, '`')) {
                if (p[0] == '`' && strncmp(p + 1, objs[k], pl) == 0 && p[1 + pl] == '.' && nt < 32) {
                    int len = (int)strcspn(p + 2 + pl, "`");
                    snprintf(table[nt++], 40, "%.*s", len, p + 2 + pl);
                }
            }
        }
        ck_assert_msg(nt >= 6, "docs/STACKS.md: %d rows for %s", nt, objs[k]);
        char pat[32];
        snprintf(pat, sizeof pat, "\"%s\":%s", k == 0 ? "cause" : "stack", k == 0 ? "{" : "[{");
        const char *obj = strstr(rec, pat);
        ck_assert_msg(obj, "no %s in %s", pat, rec);
        obj = strchr(obj, '{');
        char keys[32][40];
        int nk = object_keys(obj, keys, 32);
        for (int i = 0; i < nk; i++) {
            int found = 0;
            for (int t = 0; t < nt && !found; t++)
                found = strcmp(keys[i], table[t]) == 0;
            ck_assert_msg(found, "%s.%s is in records but not in docs/STACKS.md", objs[k], keys[i]);
        }
        for (int t = 0; t < nt; t++) {
            int found = 0;
            for (int i = 0; i < nk && !found; i++)
                found = strcmp(keys[i], table[t]) == 0;
            ck_assert_msg(found, "docs/STACKS.md lists %s.%s, the record has no such member: %s", objs[k], table[t],
                          rec);
        }
    }
    /* The handler's CPU time is part of its wall time, and not nothing. */
    const char *cause = strstr(rec, "\"cause\":{");
    double wall = json_num(cause, "handler_us"), cpu = json_num(cause, "handler_cpu_us");
    ck_assert_msg(cpu > 0 && cpu <= wall + 1.0, "handler %.1f us, of it CPU %.1f us", wall, cpu);
    free_lines(doc);
    done(&o);
}
END_TEST

START_TEST(c_busy_cpu)
{
    check_c_block(_i, "cpu", "stack_busy_cpu", "cpu", NULL, "signal");
}
END_TEST

START_TEST(c_usleep_not_shortened)
{
    check_c_block(_i, "usleep", "stack_usleep", "sleep", "nanosleep", "proc");
}
END_TEST

/* A select given no descriptor is a sleep (CPython up to 3.10 sleeps
 * so), not I/O. */
START_TEST(c_select_sleep)
{
    check_c_block(_i, "select0", "stack_select_sleep", "sleep", "select", "proc");
}
END_TEST

START_TEST(c_pipe_read)
{
    check_c_block(_i, "pipe", "stack_pipe_read", "io", "read", "signal");
}
END_TEST

START_TEST(c_mutex)
{
    check_c_block(_i, "mutex", "stack_mutex_wait", "lock", "futex", "signal");
}
END_TEST

START_TEST(python_asyncio)
{
    ck_assert_msg(access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3 (scripts/install-deps installs it)");
    struct outcome o;
    char *argv[] = {"/usr/bin/python3", PY_SRC, NULL};
    run_with(&o, argv, NULL, NULL);
    const char *names[] = {"slow_handler", "hash_handler"};
    for (int k = 0; k < 2; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\"function\":\"%s\"", names[k]);
        const char *rec = block_with(&o, pat);
        ck_assert_msg(rec, "no block names %s; stderr:\n%s", names[k], o.r.err);
        const char *py = strstr(rec, "\"python\":[");
        ck_assert_ptr_nonnull(py);
        ck_assert_msg(strstr(py, "stack_asyncio.py"), "no file: %s", py);
        char culprit[256];
        if (k == 0)   /* the line of the sleep itself */
            snprintf(culprit, sizeof culprit, "%s (stack_asyncio.py:%d)", names[k], line_of(PY_SRC, "time.sleep(0.3)"));
        else
            snprintf(culprit, sizeof culprit, "%s (stack_asyncio.py:", names[k]);
        ck_assert_msg(strstr(json_get(rec, "culprit"), culprit), "culprit %s", json_get(rec, "culprit"));
        /* The Python frames come from the interpreter's memory: the sleep
         * is walked from /proc, never signalled; the spinner is, for its
         * native stack. */
        ck_assert_msg(json_is(rec, "capture", k == 0 ? "proc" : "signal"), "capture %s", json_get(rec, "capture"));
        ck_assert_msg(json_is(rec, "class", k == 0 ? "sleep" : "cpu"), "class %s", json_get(rec, "class"));
    }
    /* time.sleep slept its whole time. */
    const char *s = strstr(o.r.out, "slept_ms=");
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(atof(s + 9) >= 299.0, "time.sleep shortened: %s", s);
    done(&o);
}
END_TEST

static int redis_cmd(int port, const char *const *args, int n, char *reply, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    char buf[1024];
    int k = snprintf(buf, sizeof buf, "*%d\r\n", n);
    for (int i = 0; i < n; i++)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "$%zu\r\n%s\r\n", strlen(args[i]), args[i]);
    if (write(fd, buf, (size_t)k) != k) {
        close(fd);
        return -1;
    }
    ssize_t r = read(fd, reply, cap - 1);
    reply[r > 0 ? r : 0] = 0;
    close(fd);
    return r > 0 ? 0 : -1;
}

START_TEST(redis_commands)
{
    ck_assert_msg(have_prog("redis-server"), "no redis-server (scripts/install-deps installs it)");
    char *dir = make_tmpdir("stack-redis");
    char ev[512], port_s[16], out[512];
    int port = free_port();
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(ev, sizeof ev, "ELMON_EVENTS=%s/events.json", dir);
    snprintf(out, sizeof out, "%s/redis.out", dir);
    char *argv[] = {"redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--enable-debug-command", "yes", "--dir", dir, NULL};
    char *env[] = {ev, NULL};
    pid_t pid = spawn_prog(argv, env, 1, out);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(wait_port(port, 10000), 0);
    char reply[256];
    const char *sleep_cmd[] = {"DEBUG", "SLEEP", "0.3"};
    ck_assert_int_eq(redis_cmd(port, sleep_cmd, 3, reply, sizeof reply), 0);
    const char *eval_cmd[] = {"EVAL", "local i=0 while i < 30000000 do i=i+1 end return i", "0"};
    ck_assert_int_eq(redis_cmd(port, eval_cmd, 3, reply, sizeof reply), 0);
    ck_assert_msg(strstr(reply, "30000000"), "eval reply %s", reply);
    usleep(200000);
    stop_prog(pid, 3000);
    char path[600];
    snprintf(path, sizeof path, "%s/events.json", dir);
    char **lines = read_lines(path, NULL);
    ck_assert_ptr_nonnull(lines);
    int sleep_ok = 0, eval_ok = 0;
    for (int i = 0; lines[i]; i++) {
        if (!json_is(lines[i], "type", "block"))
            continue;
        if (strstr(lines[i], "\"function\":\"debugCommand\"") && json_is(lines[i], "class", "sleep"))
            sleep_ok = 1;
        if (strstr(lines[i], "\"function\":\"evalGenericCommand\"") && json_is(lines[i], "class", "cpu"))
            eval_ok = 1;
    }
    ck_assert_msg(sleep_ok, "no block names debugCommand with class sleep");
    ck_assert_msg(eval_ok, "no block names evalGenericCommand with class cpu");
    free_lines(lines);
    free(dir);
}
END_TEST

START_TEST(thread_blocks_signal)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "sigblock", NULL};
    run_with(&o, argv, NULL, NULL);
    const char *rec = block_with(&o, NULL);
    ck_assert_ptr_nonnull(rec);
    ck_assert_msg(strstr(json_get(rec, "note"), "blocks signal"), "note: %s", json_get(rec, "note"));
    ck_assert(!json_is(rec, "capture", "signal"));
    ck_assert(json_is(rec, "class", "cpu"));
    ck_assert_msg(json_num(rec, "duration_ms") < 1000, "the capture waited on the thread");
    done(&o);
}
END_TEST

START_TEST(host_uses_signal)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "hostsig", NULL};
    char sig[64];
    snprintf(sig, sizeof sig, "ELMON_SIGNAL=%d", SIGRTMAX);
    run_with(&o, argv, sig, NULL);
    ck_assert_msg(strstr(o.r.out, "host_handler_calls=0"), "host handler called: %s", o.r.out);
    ck_assert_msg(strstr(o.r.err, "in use by the host"), "no warning: %s", o.r.err);
    const char *rec = block_with(&o, "\"function\":\"stack_busy_cpu\"");
    ck_assert_msg(rec, "no stack with another signal; stderr:\n%s", o.r.err);
    ck_assert(json_is(rec, "capture", "signal"));
    done(&o);
}
END_TEST

START_TEST(signal_inside_dlopen)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "dlopen", "-n", "40", "-b", "150", "-l", ELMON_BIN_DIR "/libstack_dso.so", NULL};
    run_with(&o, argv, "ELMON_BLOCK_MS=20", "ELMON_CAPTURES_PER_MIN=0");
    int n = 0;
    for (int i = 0; o.lines[i]; i++) {
        if (!json_is(o.lines[i], "type", "block"))
            continue;
        n++;
        const char *rec = o.lines[i];
        /* Every span has a report: a stack, or a note saying why not. */
        ck_assert_msg(!json_is(rec, "cause", "null"), "no cause: %s", rec);
        ck_assert_msg(strstr(rec, "\"function\":\"stack_dlopen_loop\"") || !json_is(rec, "note", "null"),
                      "neither stack nor note: %s", rec);
    }
    ck_assert_int_ge(n, 6);
    done(&o);
}
END_TEST

/* A signal that lands in code with no unwind information (here assembly
 * that also zeroes rbp; in signal_inside_dlopen, a new DSO's _init) still
 * gives the caller: the walk finds its return address on the stack. */
START_TEST(code_without_unwind_info)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "nocfi", "-n", "40", "-b", "150", NULL};
    run_with(&o, argv, "ELMON_BLOCK_MS=20", "ELMON_CAPTURES_PER_MIN=0");
    int signalled = 0, in_spin = 0;
    for (int i = 0; o.lines[i]; i++) {
        const char *rec = o.lines[i];
        if (!json_is(rec, "type", "block") || !json_is(rec, "capture", "signal"))
            continue;
        signalled++;
        ck_assert_msg(strstr(rec, "\"function\":\"stack_nocfi_loop\""), "the caller is missing: %s", rec);
        const char *first = strstr(rec, "\"stack\":[{");
        const char *spin = strstr(rec, "\"function\":\"stack_nocfi_spin\"");
        in_spin += first && spin && spin < strstr(first, "}");
    }
    ck_assert_int_ge(signalled, 4);
    ck_assert_msg(in_spin >= 1, "no signal landed in stack_nocfi_spin (%d signalled)", signalled);
    done(&o);
}
END_TEST

START_TEST(thread_churn)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "churn", "-n", "300", "-b", "30", NULL};
    run_with(&o, argv, "ELMON_BLOCK_MS=10", "ELMON_CAPTURES_PER_MIN=0");
    int signalled = 0;
    for (int i = 0; o.lines[i]; i++)
        signalled += json_is(o.lines[i], "type", "block") && json_is(o.lines[i], "capture", "signal") &&
                     strstr(o.lines[i], "stack_busy_cpu") != NULL;
    ck_assert_int_ge(signalled, 10);
    ck_assert_msg(!strstr(o.r.err, "arrived late"), "stray signals: %s", o.r.err);
    done(&o);
}
END_TEST

START_TEST(folded_file)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "cpu", NULL};
    char *dir = make_tmpdir("stack-folded");
    char fo[512];
    snprintf(fo, sizeof fo, "ELMON_FOLDED=%s/blocks-%%p.folded", dir);
    run_with(&o, argv, fo, NULL);
    int n;
    char **files = list_files(dir, "blocks-", &n);
    ck_assert_int_eq(n, 1);
    char path[600];
    if (files[0][0] == '/')
        snprintf(path, sizeof path, "%s", files[0]);
    else
        snprintf(path, sizeof path, "%s/%s", dir, files[0]);
    int nl;
    char **lines = read_lines(path, &nl);
    ck_assert_int_eq(nl, 1);
    ck_assert_msg(strncmp(lines[0], "stack_fix;", 10) == 0 && strstr(lines[0], ";main;") &&
                  strstr(lines[0], ";stack_busy_cpu"), "folded: %s", lines[0]);
    const char *w = strrchr(lines[0], ' ');
    ck_assert_msg(w && atoi(w + 1) >= 295 && atoi(w + 1) <= 400, "weight: %s", lines[0]);
    free_lines(lines);
    free_lines(files);
    free(dir);
    done(&o);
}
END_TEST

/* ELMON_STACKS=native: no Python frames, and CPython under the strict
 * signal policy (its time.sleep is read from /proc, not interrupted);
 * ELMON_SIGNAL=none: no thread is ever signalled, a parked one still gets
 * its stack from /proc. */
START_TEST(stacks_native_and_signal_none)
{
    struct outcome o;
    char *py[] = {"/usr/bin/python3", PY_SRC, NULL};
    run_with(&o, py, "ELMON_STACKS=native", NULL);
    int n = 0;
    for (int i = 0; o.lines[i]; i++) {
        if (!json_is(o.lines[i], "type", "block"))
            continue;
        n++;
        ck_assert_msg(strstr(o.lines[i], "\"python\":[]"), "python frames with ELMON_STACKS=native: %s", o.lines[i]);
        ck_assert_msg(!strstr(json_get(o.lines[i], "culprit"), "_handler"), "culprit %s", json_get(o.lines[i], "culprit"));
    }
    ck_assert_int_eq(n, 2);
    const char *rec = block_with(&o, "clock_nanosleep would be interrupted");
    ck_assert_msg(rec, "time.sleep was signalled under ELMON_STACKS=native");
    ck_assert(json_is(rec, "capture", "proc"));
    ck_assert_msg(strstr(rec, "\"stack\":[{") && strstr(rec, "clock_nanosleep"), "%.300s", rec);
    done(&o);

    char *argv[] = {FIX, "-m", "pipe", NULL};
    run_with(&o, argv, "ELMON_SIGNAL=none", NULL);
    rec = block_with(&o, "stack_pipe_read");
    ck_assert_msg(rec, "no parked stack with ELMON_SIGNAL=none: %s", o.lines[0] ? o.lines[0] : "none");
    ck_assert(json_is(rec, "capture", "proc"));
    done(&o);
}
END_TEST

START_TEST(stacks_off_and_cap)
{
    struct outcome o;
    char *argv[] = {FIX, "-m", "cpu", NULL};
    run_with(&o, argv, "ELMON_STACKS=off", NULL);
    const char *rec = block_with(&o, NULL);
    ck_assert_ptr_nonnull(rec);
    ck_assert_msg(strstr(rec, ",\"cause\":null,\"stack\":[],\"python\":[],\"task\":null,\"culprit\":null"), "%s", rec);
    done(&o);

    char *argv2[] = {FIX, "-m", "deep", "-d", "3", "-n", "22", "-b", "100", NULL};
    run_with(&o, argv2, "ELMON_CAPTURES_PER_MIN=1", NULL);
    int captured = 0, capped = 0;
    for (int i = 0; o.lines[i]; i++) {
        if (!json_is(o.lines[i], "type", "block"))
            continue;
        captured += json_is(o.lines[i], "capture", "signal");
        capped += strstr(o.lines[i], "ELMON_CAPTURES_PER_MIN") != NULL;
    }
    /* One capture in the minute; the other three spans are capped, except
     * one the watchdog, delayed on a loaded machine, saw only after it
     * ended (no crossing, so no capture attempt to cap). */
    ck_assert_int_eq(captured, 1);
    ck_assert_int_ge(capped, 2);
    done(&o);

    run_with(&o, argv, "ELMON_STACKS=sideways", NULL);
    ck_assert_msg(strstr(o.r.err, "ELMON_STACKS='sideways'") || strstr(o.r.err, "ELMON_STACKS=\"sideways\"") ||
                  strstr(o.r.err, "ELMON_STACKS=sideways"), "no warning: %s", o.r.err);
    ck_assert_ptr_nonnull(block_with(&o, "stack_busy_cpu"));
    done(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stack");
    TCase *c = tcase_create("c");
    tcase_add_loop_test(c, c_busy_cpu, 0, 3);   /* this compiler, clang, clang+ASan */
    tcase_add_loop_test(c, c_usleep_not_shortened, 0, 3);   /* this compiler, clang, clang+ASan */
    tcase_add_loop_test(c, c_select_sleep, 0, 3);   /* this compiler, clang, clang+ASan */
    tcase_add_loop_test(c, c_pipe_read, 0, 3);   /* this compiler, clang, clang+ASan */
    tcase_add_loop_test(c, c_mutex, 0, 3);   /* this compiler, clang, clang+ASan */
    tcase_add_test(c, line_zero_rows_named_by_statement_before);
    tcase_add_test(c, sanitizer_runtime_never_culprit);
    tcase_add_test(c, unwind_stops_at_unmapped_return_address);
    tcase_add_test(c, unwind_program_under_a_dev_directory);
    tcase_add_test(c, maps_long_path_is_one_line);
    tcase_add_test(c, perf_map_long_name_is_one_line);
    tcase_add_test(c, symbols_demangled);
    tcase_add_test(c, frame_module_is_its_mapping);
    tcase_add_test(c, capture_members_match_table);
    suite_add_tcase(s, c);
    TCase *h = tcase_create("hosts");
    tcase_add_test(h, python_asyncio);
    tcase_add_test(h, redis_commands);
    suite_add_tcase(s, h);
    TCase *e = tcase_create("edges");
    tcase_add_test(e, thread_blocks_signal);
    tcase_add_test(e, host_uses_signal);
    tcase_add_test(e, signal_inside_dlopen);
    tcase_add_test(e, code_without_unwind_info);
    tcase_add_test(e, thread_churn);
    suite_add_tcase(s, e);
    TCase *o = tcase_create("output");
    tcase_add_test(o, folded_file);
    tcase_add_test(o, stacks_off_and_cap);
    tcase_add_test(o, stacks_native_and_signal_none);
    suite_add_tcase(s, o);
    return run_suite(s);
}
