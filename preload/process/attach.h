/*
 * process/attach.c: libelmon loaded into a running process by
 * `elmon attach` (docs/ATTACH.md).  The injector calls dlopen, which runs
 * the constructor as for any load, then elmon_attach_start(settings): the
 * settings file is read once into the environment copy and removed, and
 * the calls other objects bound to libc are redirected to the wrappers.
 * `elmon detach` calls elmon_attach_stop, which puts them back.
 *
 * Owns: the attach settings file's reading, the list of symbols redirected
 * (libelmon's interposed functions), the attach state (attached, detached).
 * Threads: the host thread the injector borrows, once, while the host's
 * other threads run on.
 * May not: be reached from the hot path or a signal handler; read a
 * settings file that is not the user's own and private; rewrite libelmon's
 * own slots (its calls must reach libc) or start a thread.
 */
#ifndef ELMON_ATTACH_H
#define ELMON_ATTACH_H

/* The injector's entry: the number of call sites redirected (>= 0), or
 * -ECANCELED (libelmon inactive: ELMON_DISABLE, AT_SECURE), -EALREADY,
 * -ELOOP (the real functions resolve to libelmon's own), -errno of the
 * settings file.  A negative answer comes before any slot is touched, so
 * the injector may dlclose the library again. */
int elmon_attach_start(const char *settings);

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

/* 1 while attached. */
int elmon_attached(void);

#endif
