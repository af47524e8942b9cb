/*
 * Naming raw addresses, off the hot path: module, offset from its load
 * base, build-id, function (.symtab, else .dynsym) and file:line (DWARF),
 * through elfutils' libdwfl loaded with dlopen.  libdwfl keeps each
 * module's ELF and DWARF open once found, which is the per-module cache;
 * the module list is re-read from /proc/self/maps only when the loader's
 * count of loads and unloads moved.  Addresses outside every module are
 * looked up in the perf map of JIT compilers (/tmp/perf-PID.map).  Without
 * libdw, dladdr gives the module and the exported name.
 *
 * Threads: the thread that builds span reports (symbolize.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <libiberty/demangle.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "culprit.h"
#include "dl.h"
#include "ownfd.h"
#include "symbolize.h"
#include "log.h"
#include "unittest.h"

static struct {
    Dwfl *(*begin)(const Dwfl_Callbacks *);
    void (*report_begin)(Dwfl *);
    int (*proc_report)(Dwfl *, pid_t);
    int (*report_end)(Dwfl *, int (*)(Dwfl_Module *, void *, const char *, Dwarf_Addr, void *), void *);
    Dwfl_Module *(*addrmodule)(Dwfl *, Dwarf_Addr);
    const char *(*module_info)(Dwfl_Module *, void ***, Dwarf_Addr *, Dwarf_Addr *, Dwarf_Addr *,
                               Dwarf_Addr *, const char **, const char **);
    const char *(*addrinfo)(Dwfl_Module *, GElf_Addr, GElf_Off *, GElf_Sym *, GElf_Word *, Elf **,
                            Dwarf_Addr *);
    Dwfl_Line *(*getsrc)(Dwfl_Module *, Dwarf_Addr);
    const char *(*lineinfo)(Dwfl_Line *, Dwarf_Addr *, int *, int *, Dwarf_Word *, Dwarf_Word *);
    int (*build_id)(Dwfl_Module *, const unsigned char **, GElf_Addr *);
    Elf *(*getelf)(Dwfl_Module *, GElf_Addr *);
    void (*end)(Dwfl *);
    /* The line lookup for modules without .debug_aranges (below); optional. */
    Dwarf_Die *(*nextcu)(Dwfl_Module *, Dwarf_Die *, Dwarf_Addr *);
    int (*haspc)(Dwarf_Die *, Dwarf_Addr);
    Dwarf_Line *(*getsrc_die)(Dwarf_Die *, Dwarf_Addr);
    const char *(*linesrc)(Dwarf_Line *, Dwarf_Word *, Dwarf_Word *);
    int (*lineno)(Dwarf_Line *, int *);
    int (*lineaddr)(Dwarf_Line *, Dwarf_Addr *);
} dw;

static Dwfl *dwfl;
static Dwfl_Callbacks dwfl_cb;

/* The files libdw reads (modules, their debug files) stay open in it for
 * as long as their module does: they become libelmon's own descriptors
 * (core/ownfd.h), out of reach of a host that closes every descriptor;
 * libdw's own close of one, on the watchdog, releases it. */
static int (*std_find_elf)(Dwfl_Module *, void **, const char *, Dwarf_Addr, char **, Elf **);
static int (*std_find_debuginfo)(Dwfl_Module *, void **, const char *, Dwarf_Addr, const char *, const char *,
                                 GElf_Word, char **);

static int find_elf_own(Dwfl_Module *m, void **ud, const char *name, Dwarf_Addr base, char **file, Elf **elfp)
{
    int fd = std_find_elf(m, ud, name, base, file, elfp);
    return fd >= 0 ? elmon_own_adopt_or_keep(fd) : fd;
}

static int find_debuginfo_own(Dwfl_Module *m, void **ud, const char *name, Dwarf_Addr base, const char *file,
                              const char *link, GElf_Word crc, char **debug_file)
{
    int fd = std_find_debuginfo(m, ud, name, base, file, link, crc, debug_file);
    return fd >= 0 ? elmon_own_adopt_or_keep(fd) : fd;
}
static char *debuginfo_path;
static int load_state;              /* 0 not tried, 1 libdw, -1 dladdr only */
static unsigned long long seen_adds = ~0ull, seen_subs = ~0ull;

#define SYM(field, name)                                                   \
    do {                                                                   \
        *(void **)&dw.field = dlsym(h, name);                              \
        if (!dw.field)                                                     \
            goto fail;                                                     \
    } while (0)

int elmon_sym_load(void)
{
    if (load_state)
        return load_state == 1 ? 0 : -1;
    load_state = -1;
    void *h = elmon_dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        elmon_warn("libdw.so.1 not found; stacks name exported functions only, without file:line");
        return -1;
    }
    SYM(begin, "dwfl_begin");
    SYM(report_begin, "dwfl_report_begin");
    SYM(proc_report, "dwfl_linux_proc_report");
    SYM(report_end, "dwfl_report_end");
    SYM(addrmodule, "dwfl_addrmodule");
    SYM(module_info, "dwfl_module_info");
    SYM(addrinfo, "dwfl_module_addrinfo");
    SYM(getsrc, "dwfl_module_getsrc");
    SYM(lineinfo, "dwfl_lineinfo");
    SYM(build_id, "dwfl_module_build_id");
    SYM(getelf, "dwfl_module_getelf");
    SYM(end, "dwfl_end");
    *(void **)&dw.nextcu = dlsym(h, "dwfl_module_nextcu");
    *(void **)&dw.haspc = dlsym(h, "dwarf_haspc");
    *(void **)&dw.getsrc_die = dlsym(h, "dwarf_getsrc_die");
    *(void **)&dw.linesrc = dlsym(h, "dwarf_linesrc");
    *(void **)&dw.lineno = dlsym(h, "dwarf_lineno");
    *(void **)&dw.lineaddr = dlsym(h, "dwarf_lineaddr");
    *(void **)&std_find_elf = dlsym(h, "dwfl_linux_proc_find_elf");
    dwfl_cb.find_elf = std_find_elf ? find_elf_own : NULL;
    /* Separate debug info is looked up by build-id only
     * (/usr/lib/debug/.build-id/, where Debian's -dbgsym packages put it):
     * dwfl_standard_find_debuginfo would fall back to debuginfod, that is,
     * dlopen libdebuginfod (libcurl, gnutls and their constructors, inside the
     * host and under the loader lock that a forking or exiting host then waits
     * on) and, with DEBUGINFOD_URLS set, fetch from the network.  libelmon does
     * neither inside someone else's process. */
    *(void **)&std_find_debuginfo = dlsym(h, "dwfl_build_id_find_debuginfo");
    dwfl_cb.find_debuginfo = std_find_debuginfo ? find_debuginfo_own : NULL;
    if (!dwfl_cb.find_elf || !dwfl_cb.find_debuginfo)
        goto fail;
    dwfl_cb.debuginfo_path = &debuginfo_path;
    dwfl = dw.begin(&dwfl_cb);
    if (!dwfl)
        goto fail;
    load_state = 1;
    return 0;
fail:
    elmon_warn("libdw.so.1 lacks what libelmon needs; stacks name exported functions only");
    return -1;
}

static int loader_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    unsigned long long *c = arg;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

/* The unit of the last line found without .debug_aranges; valid until the
 * modules are reported again. */
static struct {
    Dwfl_Module *m;
    Dwarf_Die *cu;
    Dwarf_Addr bias;
} last_cu;

/* Modules not reported again are dropped by libdwfl; those reported again
 * keep their open ELF and DWARF. */
static void refresh_modules(void)
{
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(loader_counts, c);
    if (c[0] == seen_adds && c[1] == seen_subs)
        return;
    seen_adds = c[0];
    seen_subs = c[1];
    last_cu.m = NULL;
    dw.report_begin(dwfl);
    dw.proc_report(dwfl, getpid());
    dw.report_end(dwfl, NULL, NULL);
}

/* dwfl_module_getsrc finds the compilation unit through .debug_aranges,
 * which clang does not emit by default (gcc does): for a clang-built
 * program libdw 0.188 answers "address out of range" although the DWARF
 * has the line.  Then the units are searched by their own address ranges;
 * the unit of the previous hit (last_cu) is tried first, since a stack's
 * frames mostly share a few units. */
static Dwarf_Line *line_by_units(Dwfl_Module *m, Dwarf_Addr look, Dwarf_Addr *bias_out)
{
    if (!dw.nextcu || !dw.haspc || !dw.getsrc_die || !dw.linesrc || !dw.lineno || !dw.lineaddr)
        return NULL;
    if (last_cu.m == m && dw.haspc(last_cu.cu, look - last_cu.bias) == 1) {
        *bias_out = last_cu.bias;
        return dw.getsrc_die(last_cu.cu, look - last_cu.bias);
    }
    Dwarf_Addr bias;
    for (Dwarf_Die *cu = dw.nextcu(m, NULL, &bias); cu; cu = dw.nextcu(m, cu, &bias)) {
        if (dw.haspc(cu, look - bias) == 1) {
            last_cu.m = m;
            last_cu.cu = cu;
            last_cu.bias = bias;
            *bias_out = bias;
            return dw.getsrc_die(cu, look - bias);
        }
    }
    return NULL;
}

/* The line-table row holding look: its file, line and start address, or
 * NULL. */
static const char *line_row(Dwfl_Module *m, Dwarf_Addr look, int *line, Dwarf_Addr *row)
{
    Dwfl_Line *ln = dw.getsrc(m, look);
    if (ln)
        return dw.lineinfo(ln, row, line, NULL, NULL, NULL);
    Dwarf_Addr bias = 0, at = 0;
    Dwarf_Line *dl = line_by_units(m, look, &bias);
    const char *file = dl ? dw.linesrc(dl, NULL, NULL) : NULL;
    if (!file || dw.lineno(dl, line) != 0 || dw.lineaddr(dl, &at) != 0)
        return NULL;
    *row = at + bias;
    return file;
}

/* Row limit when stepping back over line-0 rows: a function's run of them
 * is a few rows long; the bound keeps a corrupt table from costing much. */
#define LINE0_MAX_STEPS 64

/* File and line of look.  A row of line 0 is code the compiler made for
 * no single statement (clang at -O1 emits them inside loops, for hoisted
 * loads and block entries); a sample landing there would name line 0, so
 * it is named by the nearest row before it in the same function that has
 * a line, the statement whose code runs into it. */
static const char *source_line(Dwfl_Module *m, Dwarf_Addr look, Dwarf_Addr fn_start, int *line)
{
    const char *first = NULL;
    for (int step = 0; step < LINE0_MAX_STEPS; step++) {
        Dwarf_Addr row = 0;
        int at = 0;
        const char *file = line_row(m, look, &at, &row);
        if (!file)
            break;
        if (at != 0) {
            *line = at;
            return file;
        }
        if (!first)
            first = file;
        if (row == 0 || row <= fn_start)
            break;
        look = row - 1;
    }
    *line = 0;
    return first;
}

/* ---- perf map: "START SIZE name" per line, hex ---- */

static struct jit_sym *jit;
static size_t n_jit;
/* The map as last read: a JIT appends to it (node) or rewrites it whole
 * (jcmd PID Compiler.perfmap), so any change of these reads it again. */
static struct { off_t size; ino_t ino; struct timespec mtime; } jit_seen = {-1, 0, {0, 0}};

static int cmp_jit(const void *a, const void *b)
{
    const struct jit_sym *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* One line of f without its newline, cut to n - 1 bytes; the rest of a
 * longer line is skipped, not taken for a line of its own ("1000 10 x"
 * inside a long name would name code that is not there).  0 at the end. */
static int read_line_capped(FILE *f, char *buf, size_t n)
{
    size_t k = 0;
    int c, any = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        any = 1;
        if (c == '\n')
            break;
        if (k + 1 < n)
            buf[k++] = (char)c;
    }
    buf[k] = 0;
    return any;
}

/* Replace the table with the perf map read from f, sorted by start. */
UNITTEST void jit_read(FILE *f)
{
    for (size_t i = 0; i < n_jit; i++)
        free(jit[i].name);
    n_jit = 0;
    size_t cap = 0;
    char line[1024];
    while (read_line_capped(f, line, sizeof line)) {
        unsigned long start, size;
        int off = 0;
        if (sscanf(line, "%lx %lx %n", &start, &size, &off) < 2 || !off)
            continue;
        if (n_jit == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct jit_sym *p = realloc(jit, ncap * sizeof *p);
            if (!p)
                break;
            jit = p;
            cap = ncap;
        }
        jit[n_jit].start = start;
        jit[n_jit].end = start + size;
        jit[n_jit].name = strdup(line + off);
        if (jit[n_jit].name)
            n_jit++;
    }
    if (n_jit)   /* jit is NULL until a line parses */
        qsort(jit, n_jit, sizeof *jit, cmp_jit);
}

static void jit_reload(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    struct stat st;
    if (stat(path, &st) < 0 || (st.st_size == jit_seen.size && st.st_ino == jit_seen.ino &&
                                st.st_mtim.tv_sec == jit_seen.mtime.tv_sec &&
                                st.st_mtim.tv_nsec == jit_seen.mtime.tv_nsec))
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    jit_read(f);
    fclose(f);
    jit_seen.size = st.st_size;
    jit_seen.ino = st.st_ino;
    jit_seen.mtime = st.st_mtim;
}

#ifdef ELMON_UNITTEST
/* The whole table, for the fuzz target's oracle. */
const struct jit_sym *jit_table(size_t *n)
{
    *n = n_jit;
    return jit;
}
#endif

UNITTEST const struct jit_sym *jit_lookup(uintptr_t addr)
{
    size_t lo = 0, hi = n_jit;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (addr < jit[mid].start)
            hi = mid;
        else if (addr >= jit[mid].end)
            lo = mid + 1;
        else
            return &jit[mid];
    }
    return NULL;
}

static const struct jit_sym *jit_find(uintptr_t addr)
{
    jit_reload();
    return jit_lookup(addr);
}

/* A copy in the report's text: "" when full. */
static const char *arena_str(struct elmon_arena *a, const char *s, size_t n)
{
    uint32_t off = elmon_arena_put(a, s, n);
    return off ? a->p + off : "";
}

static const char *hex_id(struct elmon_arena *c, const unsigned char *bits, int n)
{
    char hex[129];
    int k = 0;
    for (int i = 0; i < n && k < 126; i++)
        k += snprintf(hex + k, sizeof hex - (size_t)k, "%02x", bits[i]);
    return arena_str(c, hex, (size_t)k);
}

char *elmon_sym_demangle(const char *name)
{
    /* "_Z" C++ and legacy Rust, "_R" Rust v0; a symbol version suffix
     * ("@@GLIBCXX_3.4") is not part of the mangling. */
    if (!name || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
        return NULL;
    char raw[1024];
    size_t n = strcspn(name, "@");
    if (n >= sizeof raw)
        return NULL;
    memcpy(raw, name, n);
    raw[n] = 0;
    char *d = cplus_demangle(raw, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
    if (d && strlen(d) > ELMON_SYM_NAME_MAX) {
        /* Template-heavy names run to kilobytes: keep the front, which
         * names the function, and say it was cut. */
        memcpy(d + ELMON_SYM_NAME_MAX - 3, "...", 4);
    }
    return d;
}

/* f->function from a symbol table's name: demangled, the raw symbol kept. */
static void put_function(struct elmon_arena *c, struct elmon_frame *f, const char *name)
{
    char *d = elmon_sym_demangle(name);
    if (d) {
        f->function = arena_str(c, d, strlen(d));
        f->symbol = arena_str(c, name, strlen(name));
        free(d);
    } else {
        f->function = arena_str(c, name, strlen(name));
    }
}

static int sym_dladdr(struct elmon_arena *c, uintptr_t addr, uintptr_t look, struct elmon_frame *f)
{
    Dl_info di;
    if (!dladdr((void *)look, &di) || !di.dli_fname)
        return 0;
    f->module = arena_str(c, di.dli_fname, strlen(di.dli_fname));
    f->offset = addr - (uintptr_t)di.dli_fbase;
    if (di.dli_sname)
        put_function(c, f, di.dli_sname);
    return 1;
}

/* The frame of an address in a file other than the one the module list
 * gives: named after the file, its offset in it, and its function only
 * when the loader agrees that the address is that file's. */
static void sym_mapped_file(struct elmon_arena *c, uintptr_t addr, uintptr_t look, const struct elmon_sym_where *w,
                            struct elmon_frame *f)
{
    f->module = arena_str(c, w->path, strlen(w->path));
    f->offset = addr - w->start + w->file_off;
    Dl_info di;
    if (dladdr((void *)look, &di) && di.dli_fname && strcmp(di.dli_fname, w->path) == 0) {
        f->offset = addr - (uintptr_t)di.dli_fbase;
        if (di.dli_sname)
            put_function(c, f, di.dli_sname);
    }
}

void elmon_sym_frame(struct elmon_arena *c, uintptr_t addr, int is_return, const struct elmon_sym_where *w,
                     struct elmon_frame *f)
{
    memset(f, 0, sizeof *f);
    f->addr = addr;
    /* A return address may be one past the end of its function (a call
     * that does not return): name the call instead. */
    uintptr_t look = is_return && addr ? addr - 1 : addr;
    /* JIT code first: V8 remaps its embedded builtins from the node binary
     * into its code range, so /proc/self/maps (and libdwfl) call addresses
     * of JIT-compiled JavaScript part of /usr/bin/node. */
    const struct jit_sym *j = jit_find(look);
    if (j) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
        f->module = arena_str(c, path, strlen(path));
        f->offset = addr - j->start;
        f->function = arena_str(c, j->name, strlen(j->name));
        return;
    }
    /* Anonymous executable memory is JIT code, whatever module a list
     * would stretch over it. */
    if (w && w->found && !w->path) {
        f->module = arena_str(c, ELMON_JIT_MODULE, strlen(ELMON_JIT_MODULE));
        f->offset = addr - w->start;
        return;
    }
    Dwfl_Module *m = NULL;
    if (load_state == 1) {
        refresh_modules();
        m = dw.addrmodule(dwfl, look);
    }
    if (m) {
        Dwarf_Addr start = 0;
        const char *name = dw.module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
        if (w && w->found && w->path && w->path[0] == '/' && (!name || strcmp(name, w->path) != 0)) {
            sym_mapped_file(c, addr, look, w, f);
            return;
        }
        if (name)
            f->module = arena_str(c, name, strlen(name));
        f->offset = addr - start;
        GElf_Addr bias;
        dw.getelf(m, &bias);
        const unsigned char *bits;
        GElf_Addr vaddr;
        int n = dw.build_id(m, &bits, &vaddr);
        if (n > 0)
            f->build_id = hex_id(c, bits, n);
        GElf_Off off;
        GElf_Sym sym;
        const char *fn = dw.addrinfo(m, look, &off, &sym, NULL, NULL, NULL);
        if (fn)
            put_function(c, f, fn);
        /* The C library's line table (from its separate debug file) costs
         * the first capture tens of ms and names glibc's own sources. */
        const char *base = name ? strrchr(name, '/') : NULL;
        base = base ? base + 1 : name ? name : "";
        int skip_lines = strncmp(base, "libc.so", 7) == 0 || strncmp(base, "ld-linux", 8) == 0;
        int line = 0;
        const char *file = skip_lines ? NULL : source_line(m, look, fn ? look - off : look, &line);
        if (file) {
            f->file = arena_str(c, file, strlen(file));
            f->line = line;
        }
        return;
    }
    sym_dladdr(c, addr, look, f);
}

/* Same mappings in the child; its pid differs, so report it afresh. */
void elmon_sym_atfork_child(void)
{
    seen_adds = seen_subs = ~0ull;
    jit_seen.size = -1;
}
