/*
 * process/attach.c: libelmon loaded into a running process by
 * `elmon attach` (docs/ATTACH.md).  The injector writes the settings file
 * and calls dlopen; the constructor, finding the file for its pid, reads
 * it once into the environment copy, removes it, and redirects the calls
 * other objects bound to libc to the wrappers, under the loader's lock.
 * `elmon detach` calls elmon_attach_stop, which puts them back.
 *
 * Owns: the attach settings file's reading, the list of symbols redirected
 * (libelmon's interposed functions), the attach state (attached, detached).
 * Threads: the host thread the injector borrows (inside dlopen, then for
 * detach), the watchdog (elmon_attach_tick), while the host's other
 * threads run on.
 * May not: be reached from the hot path or a signal handler; read a
 * settings file that is not the user's own and private; rewrite libelmon's
 * own slots (its calls must reach libc) or start a thread.
 */
#ifndef ELMON_ATTACH_H
#define ELMON_ATTACH_H

/* The constructor's last step: when this process's attach settings file
 * (/tmp/elmon-attach-UID/PID.settings) is there and libelmon was not
 * preloaded (the argument), its ELMON_* lines go into the environment copy, it is
 * removed, and the calls are redirected.  The answer, also stored in
 * elmon_attach_result for the injector to read: 0 when this is no attach,
 * the number of call sites redirected, or -ECANCELED (libelmon inactive:
 * ELMON_DISABLE, AT_SECURE), -EPERM (the file or its directory not
 * private or not ours), -ELOOP (the real functions resolve to libelmon's
 * own), -errno.  A negative answer comes before any slot is touched, so
 * the injector may dlclose the library again. */
int elmon_attach_at_load(int preloaded);
/* 1 when LD_PRELOAD names libelmon; asked first thing in the constructor,
 * before ELMON_CHILDREN=0 takes libelmon out of it. */
int elmon_attach_preloaded(void);
extern int elmon_attach_result;

/* The redirection itself (self: libelmon's path and base). */
int elmon_attach_redirect(const char *self_path, void *self_base);

/* The watchdog's tick: when the host has loaded objects since the last
 * look (dlopen: a Python extension imported later), their calls are
 * redirected too (core/got.h's late pass); cheap otherwise (one
 * dl_iterate_phdr step).  Nothing unless attached. */
void elmon_attach_tick(void);

/* `elmon detach`: the slots put back, then the measurement ended as at
 * exit (spans closed, summaries written, sinks shut down; no call of
 * libelmon's after it on any thread).  The library stays mapped: a thread
 * may be inside a wrapper still.  The number of slots put back, or
 * -ENOTSUP (not attached: preloaded, or never started), -EALREADY. */
int elmon_attach_stop(void);

/* What elmon attach and detach read from the process's memory (exported,
 * so the injector finds it in the dynamic symbols): 0 never attached
 * (preloaded, or loaded otherwise), 1 attached, 2 detached. */
extern int elmon_attach_state;

#endif
