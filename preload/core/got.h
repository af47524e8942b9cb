/*
 * core/got.c: redirection of the calls other objects already bound to the
 * C library, for `elmon attach`.  A library loaded by dlopen into a running
 * process comes after libc in every lookup, so its wrappers are reached
 * only once the GOT slots of those calls name them: each loaded object's
 * R_X86_64_JUMP_SLOT and R_X86_64_GLOB_DAT relocations for a wanted symbol
 * get the wrapper's address, one aligned 8-byte store each.
 *
 * Objects loaded after the attach are found by the watchdog (a late pass):
 * it cannot hold the loader's lock, so a late pass stores only over a
 * slot the loader is done with (below), and comes back for the rest.
 *
 * Owns: the list of slots it changed and what they held, for the restore;
 * the lock that orders passes and the restore.
 * Threads: libelmon's constructor inside elmon attach's dlopen (a host
 * thread lent by the injector, the loader's lock held), the watchdog (late
 * passes), elmon detach's call, and a fork child's one thread, beside
 * host threads that go on calling through the slots.
 * May not: run on the hot path or in a signal handler; store into a slot
 * but with one atomic 8-byte store; leave a RELRO page writable; rewrite
 * the object that holds the targets (its own calls must reach libc).
 */
#ifndef ELMON_GOT_H
#define ELMON_GOT_H

#include <stddef.h>

struct elmon_got_target {
    const char *name;    /* the symbol a relocation names */
    void *to;            /* what its slot is to hold */
    void *from;          /* the symbol's definition in the global scope: a
                            late pass replaces only it (or a PLT stub) */
};

/* Rewrites every slot of every loaded object for the symbols of t, except
 * in the object mapping `self` and in the dynamic loader.  The number of
 * slots it changed (one that already held its target is left alone);
 * *failed (when not NULL) the slots left as they were because their RELRO
 * page could not be made writable.  Never an error: once one slot is
 * stored the caller cannot take libelmon away. */
long elmon_got_redirect(const struct elmon_got_target *t, size_t n, const void *self, long *failed);

/* The same for objects loaded since (dlopen in the host), from a thread
 * that does not hold the loader's lock, which may be relocating one of
 * them right now.  A slot is stored only by compare-and-swap over what the
 * loader leaves when it is done: the target's `from`, or a lazy slot's PLT
 * stub inside its own object; on a RELRO page only once the loader has
 * made the page read-only.  A slot still holding an unrelocated offset, a
 * writable RELRO page or a lost swap counts in *pending (try again later);
 * a slot bound elsewhere (another interposer) is left alone.  The number
 * stored. */
long elmon_got_redirect_late(const struct elmon_got_target *t, size_t n, const void *self, long *pending);

/* The loader's count of objects ever loaded (dlpi_adds): a late pass is
 * due when it changed. */
unsigned long long elmon_got_objects_added(void);

/* Puts back what every slot changed by a pass held, when it still holds
 * the wrapper: the number put back (`elmon detach`).  Slots of objects
 * unloaded since are dropped, never touched. */
long elmon_got_restore(void);

/* No pass stores after this (`elmon detach`, before the restore). */
void elmon_got_close(void);

/* The fork child's lock made anew (process/pipeline.c's atfork child). */
void elmon_got_atfork_child(void);

/* The slot of name in the object mapping `in`, or NULL (for the tests). */
void **elmon_got_slot(const char *name, const void *in);

#endif
