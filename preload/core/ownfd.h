/*
 * libelmon's own descriptors: the events, folded-stack and log files, the
 * live-stats directory, the Python-frames pipe and the exporter's sockets.
 *
 * Owns: the table of them (ELMON_OWN_MAX entries), each with the device
 * and inode it held when adopted.
 *
 * The rule (docs/RELIABILITY.md, "Descriptors"):
 *   - adopted descriptors are moved above the numbers hosts use
 *     (elmon_own_floor(): half the soft RLIMIT_NOFILE, at most 1024) and
 *     made close-on-exec;
 *   - the host never had them, so its close of one behaves as it would
 *     without libelmon: close() fails with EBADF, close_range() and
 *     closefrom() leave them out (wrap.c), and they stay libelmon's;
 *   - dup2/dup3 onto one is the host naming that number on purpose: it
 *     gets it, and the entry is marked lost;
 *   - every use checks the number still holds the same file
 *     (elmon_own_ok): a close the interposition cannot see (a raw system
 *     call) followed by the host's open is caught there, and the entry is
 *     marked lost.  A lost entry is never read, written or closed again;
 *     its user reopens what it needs or stops that output with one warning.
 *
 * Threads: adopt and release on whichever libelmon thread opens or closes
 * its file (a mutex orders writers); elmon_own_maybe,
 * elmon_own_taken, elmon_own_sorted and elmon_own_ok on any thread,
 * inside the host's close() and from signal handlers: they are
 * async-signal-safe (atomics and fstat), take no lock and keep errno.
 * May not: touch a descriptor that is not in its table.
 */
#ifndef ELMON_OWNFD_H
#define ELMON_OWNFD_H

#include <limits.h>

/* libelmon's outputs need a handful; libdw keeps one or two per module
 * it symbolized (interpret/symbolize.c). */
#define ELMON_OWN_MAX 256

/* The lowest adopted number, INT_MAX when none: the close wrappers' one
 * load and compare. */
extern int elmon_own_lowest;

static inline int elmon_own_maybe(int fd)
{
    return fd >= __atomic_load_n(&elmon_own_lowest, __ATOMIC_RELAXED);
}

/* Where adopted descriptors go: the first number above the host's range. */
int elmon_own_floor(void);

/* Take fd as libelmon's: duplicated at or above the floor, close-on-exec,
 * the original closed.  Returns the descriptor to use from now on (fd
 * itself, still tracked, when it cannot be moved), or -1 with fd closed
 * when the table is full. */
int elmon_own_adopt(int fd);
/* The same, but with the table full fd is handed back as it is, unguarded
 * (libdw's files: a module read without the guard beats one not read). */
int elmon_own_adopt_or_keep(int fd);

/* 1 while fd is an adopted entry that still holds the file it was adopted
 * with; otherwise 0, and an entry that changed is marked lost.  For the
 * host's close(fd): 1 means fd is libelmon's and the host never had it
 * (EBADF); 0 means the host may close it (not ours, or no longer the file
 * we adopted). */
int elmon_own_ok(int fd);

/* Close fd and forget it, if it is still ours (a lost entry is only
 * forgotten: its number belongs to the host now). */
void elmon_own_release(int fd);

/* In a new child (one thread): the table stays, the descriptors were
 * inherited with it; only the writers' mutex is made fresh. */
void elmon_own_atfork_child(void);

/* libelmon is done with every descriptor (the host confined itself):
 * the host's closes reach them from now on, and nothing here makes a
 * system call again. */
void elmon_own_disown_all(void);


/* dup2/dup3 onto fd by the host: an entry there is lost from now on. */
void elmon_own_taken(int fd);

/* 1 on libelmon's own threads (hot/registry.c's elmon_thread_start sets
 * it): a close there of an adopted descriptor is libelmon's own release,
 * by whatever library does it (libdw closing the files it was handed). */
extern __thread int elmon_own_thread __attribute__((tls_model("initial-exec")));

/* close(fd) on one of libelmon's threads of an adopted descriptor: forget
 * it and close it if still ours; the close's result. */
int elmon_own_close(int fd);

/* The live entries within [first, last], ascending, into out (at least
 * ELMON_OWN_MAX); their number. */
int elmon_own_sorted(unsigned first, unsigned last, int *out);

#endif
