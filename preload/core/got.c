/*
 * GOT redirection for elmon attach (see got.h).  The dynamic section's
 * pointers are relocated by the loader in place for most objects; an
 * entry below the object's base is an offset still, and gets it added.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "got.h"

/* The slots changed, with what they held, for elmon_got_restore. */
struct changed {
    void **slot;
    void *was, *now;
    uintptr_t relro_lo, relro_hi;
};
static struct changed *changed;
static size_t n_changed, cap_changed;
/* Orders the passes (the constructor's, the watchdog's late ones) and the
 * restore; closed once the restore ran, after which no pass stores. */
static pthread_mutex_t got_lock = PTHREAD_MUTEX_INITIALIZER;
static int closed;

static void remember(void **slot, void *was, void *now, uintptr_t lo, uintptr_t hi)
{
    if (n_changed == cap_changed) {
        size_t cap = cap_changed ? 2 * cap_changed : 64;
        struct changed *c = realloc(changed, cap * sizeof *c);
        if (!c)
            return;   /* that slot stays redirected after a restore */
        changed = c;
        cap_changed = cap;
    }
    changed[n_changed++] = (struct changed){slot, was, now, lo, hi};
}

struct pass {
    const struct elmon_got_target *t;
    size_t n;
    const void *self;
    int late;             /* elmon_got_redirect_late: the loader may be at work */
    long done, failed, pending;
    const char *find;     /* elmon_got_slot: the symbol sought */
    void **found;
};

static int maps(const struct dl_phdr_info *info, const void *p)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)p >= a && (uintptr_t)p < a + ph->p_memsz)
            return 1;
    }
    return 0;
}

static uintptr_t dyn_ptr(const struct dl_phdr_info *info, uintptr_t v)
{
    return v < info->dlpi_addr ? v + info->dlpi_addr : v;
}

/* Stores to into the slot, through a RELRO page made writable for it. */
static int store(void **slot, void *to, uintptr_t relro_lo, uintptr_t relro_hi)
{
    uintptr_t a = (uintptr_t)slot;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t pg = a & ~(uintptr_t)(page - 1);
    int ro = a >= relro_lo && a < relro_hi;
    if (ro && mprotect((void *)pg, (size_t)page, PROT_READ | PROT_WRITE) < 0)
        return -errno;
    __atomic_store_n(slot, to, __ATOMIC_RELEASE);
    if (ro)
        mprotect((void *)pg, (size_t)page, PROT_READ);
    return 0;
}

/* 1 when the page holding p is writable now (/proc/self/maps): a RELRO
 * page the loader has not yet protected, so it is still relocating the
 * object.  -1 when that cannot be read. */
static int page_writable(const void *p)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    char line[512];
    int w = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            w = perms[1] == 'w';
            break;
        }
    }
    fclose(f);
    return w;
}

/* A late pass's store: only over a slot the loader has finished with (it
 * holds the symbol's definition, or a relocated lazy slot's PLT stub in
 * its own object), by compare-and-swap, so a concurrent lazy resolution
 * of the same slot is never overwritten.  0 stored, 1 not yet (come back:
 * the object is being relocated), -1 never (someone else's value). */
static int store_late(const struct dl_phdr_info *info, void **slot, void *was, const struct elmon_got_target *t,
                      uintptr_t relro_lo, uintptr_t relro_hi)
{
    if (!(t->from && was == t->from) && !maps(info, was)) {
        /* Not relocated yet: 0 (a GLOB_DAT), or the stub's link-time
         * address (a lazy slot the loader has yet to add the base to). */
        if (!was || maps(info, (const void *)((uintptr_t)was + info->dlpi_addr)))
            return 1;
        return -1;  /* bound to another interposer's definition */
    }
    uintptr_t a = (uintptr_t)slot;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t pg = a & ~(uintptr_t)(page - 1);
    int ro = a >= relro_lo && a < relro_hi;
    if (ro) {
        /* Writable: the loader protects it when it is done; storing now
         * and protecting it ourselves would fault the loader's next write. */
        if (page_writable(slot) != 0)
            return 1;
        if (mprotect((void *)pg, (size_t)page, PROT_READ | PROT_WRITE) < 0)
            return -1;
    }
    int ok = __atomic_compare_exchange_n(slot, &was, t->to, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (ro)
        mprotect((void *)pg, (size_t)page, PROT_READ);
    return ok ? 0 : 1;
}

static void relocs(struct pass *ps, const struct dl_phdr_info *info, const ElfW(Rela) *r, size_t bytes,
                   const ElfW(Sym) *symtab, const char *strtab, uintptr_t relro_lo, uintptr_t relro_hi)
{
    for (size_t i = 0; i < bytes / sizeof *r; i++) {
        unsigned type = ELF64_R_TYPE(r[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
            continue;
        const char *name = strtab + symtab[ELF64_R_SYM(r[i].r_info)].st_name;
        void **slot = (void **)(info->dlpi_addr + r[i].r_offset);
        if (ps->find) {
            if (!ps->found && strcmp(name, ps->find) == 0)
                ps->found = slot;
            continue;
        }
        for (size_t k = 0; k < ps->n; k++) {
            if (strcmp(name, ps->t[k].name) != 0)
                continue;
            if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) == ps->t[k].to)
                break;   /* already (DT_RELASZ may cover DT_JMPREL too) */
            /* A page that cannot be made writable keeps its slot: the
             * others are still redirected (the caller cannot undo them). */
            void *was = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
            if (ps->late) {
                int rc = store_late(info, slot, was, &ps->t[k], relro_lo, relro_hi);
                if (rc == 0) {
                    remember(slot, was, ps->t[k].to, relro_lo, relro_hi);
                    ps->done++;
                } else if (rc > 0) {
                    ps->pending++;
                }
            } else if (store(slot, ps->t[k].to, relro_lo, relro_hi) < 0) {
                ps->failed++;
            } else {
                remember(slot, was, ps->t[k].to, relro_lo, relro_hi);
                ps->done++;
            }
            break;
        }
    }
}

static int one_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct pass *ps = arg;
    if (ps->find ? !maps(info, ps->self) : maps(info, ps->self))
        return 0;
    /* The dynamic loader's few slots are its own business. */
    if (info->dlpi_name && strstr(info->dlpi_name, "/ld-linux"))
        return 0;
    const ElfW(Dyn) *dyn = NULL;
    uintptr_t relro_lo = 0, relro_hi = 0;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        else if (ph->p_type == PT_GNU_RELRO) {
            /* As the loader protects it: whole pages only (_dl_protect_relro). */
            relro_lo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)(page - 1);
            relro_hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(uintptr_t)(page - 1);
        }
    }
    if (!dyn)
        return 0;
    uintptr_t symtab = 0, strtab = 0, jmprel = 0, rela = 0;
    size_t pltsz = 0, relasz = 0;
    long pltrel = DT_RELA;
    for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: symtab = dyn_ptr(info, d->d_un.d_ptr); break;
        case DT_STRTAB: strtab = dyn_ptr(info, d->d_un.d_ptr); break;
        case DT_JMPREL: jmprel = dyn_ptr(info, d->d_un.d_ptr); break;
        case DT_PLTRELSZ: pltsz = d->d_un.d_val; break;
        case DT_PLTREL: pltrel = (long)d->d_un.d_val; break;
        case DT_RELA: rela = dyn_ptr(info, d->d_un.d_ptr); break;
        case DT_RELASZ: relasz = d->d_un.d_val; break;
        }
    }
    if (!symtab || !strtab)
        return 0;
    if (jmprel && pltrel == DT_RELA)
        relocs(ps, info, (const ElfW(Rela) *)jmprel, pltsz, (const ElfW(Sym) *)symtab, (const char *)strtab, relro_lo,
               relro_hi);
    if (rela)
        relocs(ps, info, (const ElfW(Rela) *)rela, relasz, (const ElfW(Sym) *)symtab, (const char *)strtab, relro_lo,
               relro_hi);
    return ps->find && ps->found;
}

/* One pass over every loaded object, unless the restore has closed them. */
static void run_pass(struct pass *ps)
{
    pthread_mutex_lock(&got_lock);
    if (!closed)
        dl_iterate_phdr(one_object, ps);
    pthread_mutex_unlock(&got_lock);
}

long elmon_got_redirect(const struct elmon_got_target *t, size_t n, const void *self, long *failed)
{
    struct pass ps = {.t = t, .n = n, .self = self};
    run_pass(&ps);
    if (failed)
        *failed = ps.failed;
    return ps.done;
}

long elmon_got_redirect_late(const struct elmon_got_target *t, size_t n, const void *self, long *pending)
{
    struct pass ps = {.t = t, .n = n, .self = self, .late = 1};
    run_pass(&ps);
    if (pending)
        *pending = ps.pending;
    return ps.done;
}

static int first_adds(struct dl_phdr_info *info, size_t size, void *arg)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds)
        *(unsigned long long *)arg = info->dlpi_adds;
    return 1;
}

unsigned long long elmon_got_objects_added(void)
{
    unsigned long long adds = 0;
    dl_iterate_phdr(first_adds, &adds);
    return adds;
}

void **elmon_got_slot(const char *name, const void *in)
{
    struct pass ps = {.self = in, .find = name};
    dl_iterate_phdr(one_object, &ps);
    return ps.found;
}

/* One object's remembered slots put back, while dl_iterate_phdr keeps it
 * from being unloaded: a slot of an object dlclose'd since the attach is
 * unmapped, and is dropped rather than touched. */
static int restore_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    long *n = arg;
    for (size_t i = 0; i < n_changed; i++) {
        struct changed *c = &changed[i];
        if (!c->slot || !maps(info, c->slot))
            continue;
        /* A slot someone else has changed since is theirs now. */
        if (__atomic_load_n(c->slot, __ATOMIC_ACQUIRE) == c->now && store(c->slot, c->was, c->relro_lo, c->relro_hi) == 0)
            (*n)++;
        c->slot = NULL;
    }
    return 0;
}

long elmon_got_restore(void)
{
    long n = 0;
    pthread_mutex_lock(&got_lock);
    dl_iterate_phdr(restore_object, &n);
    n_changed = 0;
    pthread_mutex_unlock(&got_lock);
    return n;
}

void elmon_got_close(void)
{
    pthread_mutex_lock(&got_lock);
    closed = 1;
    pthread_mutex_unlock(&got_lock);
}

/* A fork while the watchdog held the lock leaves the child's copy locked. */
void elmon_got_atfork_child(void)
{
    pthread_mutex_init(&got_lock, NULL);
}
