/*
 * Native unwinding with libunwind, loaded with dlopen (libelmon links
 * against libc alone).
 *
 * One libunwind address space serves both capture paths: the signal
 * handler on the loop thread (registers from the signal's ucontext) and the
 * watchdog unwinding a thread parked in a system call (rip and rsp from
 * /proc/self/task/TID/syscall).  Its accessors never call into the dynamic
 * loader: the unwind tables of every module (eh_frame_hdr) and the
 * process's readable memory ranges are collected by the watchdog, with
 * dl_iterate_phdr and /proc/self/maps, before each capture.  So the handler
 * takes no loader lock (the classic libunwind-in-a-signal deadlock), reads
 * only memory known to be mapped (a wrong frame cannot fault), and calls
 * nothing that allocates: libunwind's own CIE pool is signal-safe, and the
 * address space is set to UNW_CACHE_NONE so no cache lock is taken.
 *
 * Threads: the watchdog (load, refresh, /proc unwinds), loop threads inside
 * the capture signal handler (elmon_unwind_regs, elmon_unwind_in_loader).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <libunwind-x86_64.h>
#include "capture.h"
#include "unwind.h"
#include "dl.h"
#include "log.h"

#define MAX_MODULES 1024
#define MAX_RANGES 16384

struct module {
    uintptr_t start_ip, end_ip;  /* the executable segment */
    uintptr_t hdr;               /* eh_frame_hdr, 0 when none */
    uintptr_t table;             /* its binary search table */
    uintptr_t table_len;         /* in words */
};

struct range {
    uintptr_t lo, hi;
};

/* The tables the accessors read.  Written by the watchdog in
 * elmon_unwind_refresh() while no handler can run: the capture protocol
 * arms one signal at a time, refreshes only between them, and refreshes
 * not at all while a handler it stopped waiting for is still walking
 * (capture.c n_walking). */
static struct module *modules;
static int n_modules;
static struct range *ranges;
static int n_ranges;
static struct range *xranges;    /* executable mappings, where code can be */
static int n_xranges;
static uintptr_t loader_lo, loader_hi;

static unw_addr_space_t uw_as;
static int (*uw_init_remote)(unw_cursor_t *, unw_addr_space_t, void *);
static int (*uw_step)(unw_cursor_t *);
static int (*uw_get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
static int (*uw_search)(unw_addr_space_t, unw_word_t, unw_dyn_info_t *, unw_proc_info_t *, int, void *);
static int load_state;           /* 0 not tried, 1 ready, -1 unavailable */

/* Most reads hit the range of the previous one (the stack, or the module
 * whose tables are being parsed).  Racy on purpose: captures are serial,
 * and a stale index is only a slower path. */
static int last_range;

/* The index of the range of the sorted table t that holds addr, -1. */
static int range_index(const struct range *t, int n, uintptr_t addr)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (addr < t[mid].lo)
            hi = mid - 1;
        else if (addr >= t[mid].hi)
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

static int readable(uintptr_t addr, size_t n)
{
    int k = __atomic_load_n(&last_range, __ATOMIC_RELAXED);
    if (k < n_ranges && addr >= ranges[k].lo && addr + n <= ranges[k].hi)
        return 1;
    k = range_index(ranges, n_ranges, addr);
    if (k < 0)
        return 0;
    __atomic_store_n(&last_range, k, __ATOMIC_RELAXED);
    return addr + n <= ranges[k].hi;
}

/* A return address can be code: in an executable mapping (a module's
 * text, the vDSO, or a JIT's anonymous code). */
static int code_address(uintptr_t ip)
{
    return range_index(xranges, n_xranges, ip) >= 0;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                              int need, void *arg)
{
    int lo = 0, hi = n_modules - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const struct module *m = &modules[mid];
        if (ip < m->start_ip) {
            hi = mid - 1;
        } else if (ip >= m->end_ip) {
            lo = mid + 1;
        } else {
            if (!m->table)
                return -UNW_ENOINFO;
            unw_dyn_info_t di;
            memset(&di, 0, sizeof di);
            di.start_ip = m->start_ip;
            di.end_ip = m->end_ip;
            di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
            di.u.rti.segbase = m->hdr;
            di.u.rti.table_data = m->table;
            di.u.rti.table_len = m->table_len;
            return uw_search(as, ip, &di, pi, need, arg);
        }
    }
    return -UNW_ENOINFO;
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    (void)as, (void)pi, (void)arg;
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dilap, void *arg)
{
    (void)as, (void)dilap, (void)arg;
    return -UNW_ENOINFO;
}

/* The walk reads whatever the walked stack holds, the redzones an ASan-built
 * host puts between its locals included, and (the "proc" capture of a
 * parked thread, record/capture.c's unwind_parked) a stack its thread may
 * be writing as it wakes up: by design, so the read is instrumented by
 * neither sanitizer (a plain load, not memcpy, which ASan intercepts).  A
 * torn read costs a stack the capture then discards, never a crash: every
 * address is checked against the readable ranges first.  (TSan's
 * suppression by function name was not enough: a host that closes every
 * descriptor, fault_fix's close-all case, closes TSan's symbolizer pipe,
 * and the report then came unsymbolized and unsuppressed.) */
__attribute__((no_sanitize("address", "thread"))) static int acc_access_mem(unw_addr_space_t as, unw_word_t addr,
                                                              unw_word_t *val, int write, void *arg)
{
    (void)as, (void)arg;
    if (write || !readable(addr, sizeof *val))
        return -UNW_EINVAL;
    *val = *(const volatile unw_word_t *)addr;
    return 0;
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct elmon_regs *r = arg;
    if (write || reg < 0 || reg > 16)
        return -UNW_EBADREG;
    /* A register /proc does not show reads as 0: libunwind asks for rbp on
     * every step, and a frame whose CFA really needs it then fails on an
     * unreadable address instead of a wrong one. */
    *val = (r->valid & (1u << reg)) ? r->r[reg] : 0;
    return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
    (void)as, (void)reg, (void)val, (void)write, (void)arg;
    return -UNW_EBADREG;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as, (void)c, (void)arg;
    return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t n,
                             unw_word_t *off, void *arg)
{
    (void)as, (void)addr, (void)buf, (void)n, (void)off, (void)arg;
    return -UNW_ENOINFO;
}

/* eh_frame_hdr: version 1, then eh_frame_ptr, fde_count and the table in
 * the encodings every toolchain emits (pcrel|sdata4, udata4,
 * datarel|sdata4).  Anything else: no table, the unwinder falls back to
 * the frame pointer for that module. */
static void module_table(struct module *m, uintptr_t hdr)
{
    const unsigned char *h = (const unsigned char *)hdr;
    if (!readable(hdr, 12) || h[0] != 1 || h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b)
        return;
    uint32_t count;
    memcpy(&count, h + 8, 4);
    m->hdr = hdr;
    m->table = hdr + 12;
    m->table_len = (uintptr_t)count * 8 / sizeof(unw_word_t);
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size, (void)arg;
    if (n_modules >= MAX_MODULES)
        return 1;
    struct module m = {0};
    uintptr_t eh = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X) && !m.end_ip) {
            m.start_ip = info->dlpi_addr + p->p_vaddr;
            m.end_ip = m.start_ip + p->p_memsz;
        } else if (p->p_type == PT_GNU_EH_FRAME) {
            eh = info->dlpi_addr + p->p_vaddr;
        }
    }
    if (!m.end_ip)
        return 0;
    if (eh)
        module_table(&m, eh);
    const char *name = info->dlpi_name;
    if (name && strstr(name, "/ld-linux")) {
        loader_lo = m.start_ip;
        loader_hi = m.end_ip;
    }
    modules[n_modules++] = m;
    return 0;
}

static int cmp_module(const void *a, const void *b)
{
    const struct module *x = a, *y = b;
    return x->start_ip < y->start_ip ? -1 : x->start_ip > y->start_ip;
}

/* Append [lo, hi) to a table filled in address order, merged with the
 * range before it when they touch. */
static void range_add(struct range *t, int *n, uintptr_t lo, uintptr_t hi)
{
    if (*n && t[*n - 1].hi == lo)
        t[*n - 1].hi = hi;
    else
        t[(*n)++] = (struct range){lo, hi};
}

static void read_ranges(void)
{
    n_ranges = n_xranges = 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[512];
    while (n_ranges < MAX_RANGES && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        int fields = sscanf(line, "%lx-%lx %7s", &lo, &hi, perms);
        /* The rest of a line longer than the buffer (a long path) is not
         * a line of its own. */
        char rest[64];
        if (!strchr(line, '\n'))
            while (fgets(rest, sizeof rest, f) && !strchr(rest, '\n'))
                ;
        if (fields != 3)
            continue;
        if (perms[2] == 'x' && n_xranges < MAX_RANGES)
            range_add(xranges, &n_xranges, lo, hi);
        if (perms[0] != 'r')
            continue;
        /* Device memory and the vvar page are readable in name only: the
         * path field, not a directory that happens to be called dev.
         * /dev/shm and /dev/zero are plain memory. */
        const char *path = strchr(line, '/');
        if (strstr(line, "[vvar]") ||
            (path && strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/shm/", 9) != 0 &&
             strncmp(path, "/dev/zero", 9) != 0))
            continue;
        range_add(ranges, &n_ranges, lo, hi);
    }
    fclose(f);
}

void elmon_unwind_refresh(void)
{
    if (load_state != 1)
        return;
    read_ranges();
    n_modules = 0;
    dl_iterate_phdr(add_module, NULL);
    qsort(modules, (size_t)n_modules, sizeof *modules, cmp_module);
}

/* Stack words scanned for a return address when the interrupted code
 * has no unwind information (see elmon_unwind_regs). */
#define SCAN_WORDS 8

/* 1 when ret can be a return address: it is in executable memory and the
 * bytes before it decode as a call (e8 rel32, or ff /2 with its ModRM,
 * SIB and displacement ending exactly at ret). */
__attribute__((no_sanitize_address)) static int after_call(uintptr_t ret)
{
    if (ret < 8 || !code_address(ret - 1) || !readable(ret - 7, 7))
        return 0;
    const volatile unsigned char *p = (const volatile unsigned char *)ret;
    if (p[-5] == 0xe8)
        return 1;
    for (int k = 2; k <= 7; k++) {
        unsigned m = p[-k + 1];
        if (p[-k] != 0xff || ((m >> 3) & 7) != 2)
            continue;
        unsigned mod = m >> 6, rm = m & 7;
        int len = 2;
        if (mod != 3 && rm == 4) {
            len++;                                   /* SIB */
            if (mod == 0 && (p[-k + 2] & 7) == 5)
                len += 4;                            /* no base: disp32 */
        }
        if (mod == 1)
            len += 1;
        else if (mod == 2 || (mod == 0 && rm == 5))
            len += 4;
        if (len == k)
            return 1;
    }
    return 0;
}

/* libunwind's walk from regs into addrs[n..max); returns the new n. */
static int walk(struct elmon_regs *regs, uintptr_t *addrs, int n, int max)
{
    unw_cursor_t cur;
    if (uw_init_remote(&cur, uw_as, regs) < 0)
        return n;
    while (n < max && uw_step(&cur) > 0) {
        unw_word_t ip;
        /* A return address outside every executable mapping is not code:
         * the walk followed a frame whose rules it guessed (a runtime
         * without CFI, such as TSan's interceptors) into data or off the
         * stack.  It and anything past it would be noise in the report.
         * (A guess that lands in executable memory is not caught here.) */
        if (uw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || !ip || !code_address((uintptr_t)ip - 1))
            break;
        addrs[n++] = ip;
    }
    return n;
}

/* Not instrumented: the scan reads the walked stack (see acc_access_mem). */
__attribute__((no_sanitize_address)) int elmon_unwind_regs(struct elmon_regs *regs, uintptr_t *addrs, int max)
{
    if (load_state != 1 || max <= 0 || !(regs->valid & (1u << 16)))
        return 0;
    int n = 0;
    addrs[n++] = regs->r[16];
    n = walk(regs, addrs, n, max);
    if (n > 1 || n >= max || !(regs->valid & (1u << 7)))
        return n;
    /* The walk could not leave the interrupted frame: its code has no
     * unwind information (a DSO's _init, which crti.o emits without CFI,
     * hit by the signal on the page fault of its first instruction during
     * a dlopen; hand-written assembly; a JIT's code).  Such code is most
     * often a leaf near its entry, its return address a few words above
     * the stack pointer: the first word there that follows a call
     * instruction is taken as the caller, and the walk goes on from it. */
    for (int i = 0; i < SCAN_WORDS; i++) {
        uintptr_t slot = (uintptr_t)regs->r[7] + (uintptr_t)i * 8;
        if (!readable(slot, 8))
            break;
        uintptr_t ret = *(const volatile uintptr_t *)slot;
        if (!after_call(ret))
            continue;
        struct elmon_regs caller = *regs;
        caller.r[16] = ret;
        caller.r[7] = slot + 8;
        addrs[n++] = ret;
        return walk(&caller, addrs, n, max);
    }
    return n;
}

int elmon_unwind_in_loader(uintptr_t pc)
{
    return pc >= loader_lo && pc < loader_hi;
}

void elmon_regs_from_ucontext(struct elmon_regs *r, const void *ucv)
{
    static const int map[17] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP,
                                REG_RSP, REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13,
                                REG_R14, REG_R15, REG_RIP};
    const ucontext_t *uc = ucv;
    for (int i = 0; i < 17; i++)
        r->r[i] = (uint64_t)uc->uc_mcontext.gregs[map[i]];
    r->valid = (1u << 17) - 1;
}

/* A first unwind of the watchdog's own stack: it runs libunwind's one-time
 * initialisation (tdep_init, the CIE pool) here, not in a handler. */
static __attribute__((noinline)) int warm_up(void)
{
    ucontext_t uc;
    if (getcontext(&uc) < 0)
        return 0;
    struct elmon_regs r;
    elmon_regs_from_ucontext(&r, &uc);
    uintptr_t a[8];
    return elmon_unwind_regs(&r, a, 8);
}

int elmon_unwind_load(void)
{
    if (load_state)
        return load_state == 1 ? 0 : -1;
    load_state = -1;
    void *h = elmon_dlopen("libunwind-x86_64.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        elmon_warn("libunwind-x86_64.so.8 not found (%s); no native stacks", dlerror());
        return -1;
    }
    unw_addr_space_t (*create)(unw_accessors_t *, int) = (unw_addr_space_t (*)(unw_accessors_t *, int))dlsym(h, "_Ux86_64_create_addr_space");
    int (*policy)(unw_addr_space_t, unw_caching_policy_t) = (int (*)(unw_addr_space_t, unw_caching_policy_t))dlsym(h, "_Ux86_64_set_caching_policy");
    uw_init_remote = (int (*)(unw_cursor_t *, unw_addr_space_t, void *))dlsym(h, "_Ux86_64_init_remote");
    uw_step = (int (*)(unw_cursor_t *))dlsym(h, "_Ux86_64_step");
    uw_get_reg = (int (*)(unw_cursor_t *, unw_regnum_t, unw_word_t *))dlsym(h, "_Ux86_64_get_reg");
    uw_search = (int (*)(unw_addr_space_t, unw_word_t, unw_dyn_info_t *, unw_proc_info_t *, int, void *))dlsym(h, "_Ux86_64_dwarf_search_unwind_table");
    modules = malloc(MAX_MODULES * sizeof *modules);
    ranges = malloc(MAX_RANGES * sizeof *ranges);
    xranges = malloc(MAX_RANGES * sizeof *xranges);
    if (!create || !policy || !uw_init_remote || !uw_step || !uw_get_reg || !uw_search || !modules || !ranges ||
        !xranges) {
        elmon_warn("libunwind-x86_64.so.8 lacks what libelmon needs; no native stacks");
        return -1;
    }
    static unw_accessors_t acc = {
        .find_proc_info = acc_find_proc_info,
        .put_unwind_info = acc_put_unwind_info,
        .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
        .access_mem = acc_access_mem,
        .access_reg = acc_access_reg,
        .access_fpreg = acc_access_fpreg,
        .resume = acc_resume,
        .get_proc_name = acc_get_proc_name,
    };
    uw_as = create(&acc, 0);
    if (!uw_as) {
        elmon_warn("libunwind: cannot create an address space; no native stacks");
        return -1;
    }
    policy(uw_as, UNW_CACHE_NONE);
    load_state = 1;
    elmon_unwind_refresh();
    if (warm_up() < 2) {
        elmon_warn("libunwind cannot unwind this process; no native stacks");
        load_state = -1;
        return -1;
    }
    return 0;
}
