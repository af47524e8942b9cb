/*
 * libelmon's process-wide life: the constructor that decides whether the
 * library is active, fork, the end of measurement when the host confines
 * itself, and exit (the destructor, _exit and _Exit).
 *
 * Owns: the decision that makes the library active (elmon_active stored
 * once, at the end of the constructor, before elmon attach's settings and
 * redirection, process/attach.c), the fork handlers it registers,
 * ELMON_CHILDREN's edit of LD_PRELOAD, the interposed _exit and _Exit.
 * Threads: the loader's thread (constructor, destructor), the forking
 * thread (atfork), the thread that calls _exit/_Exit, the thread about to
 * install a seccomp filter (on_confine).
 * May not: read any setting in every process but ELMON_DISABLE,
 * ELMON_CHILDREN and AT_SECURE (the rest wait for a first loop), start a
 * thread from the constructor (the watchdog comes with the first loop),
 * or let _exit skip the exit work of a process it measures.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "attach.h"
#include "config.h"
#include "dl.h"
#include "registry.h"
#include "log.h"
#include "exit.h"
#include "clock.h"
#include "ownfd.h"
#include "pipeline.h"
#include "real.h"
#include "turn.h"
#include "watchdog.h"

static void atfork_prepare(void)
{
    elmon_dl_atfork_prepare();
}

static void atfork_parent(void)
{
    elmon_dl_atfork_parent();
}

static void atfork_child(void)
{
    elmon_own_atfork_child();
    elmon_pipeline_atfork_child();
}

/* ELMON_CHILDREN=0 (`elmon run --no-children`): this process is measured
 * but the programs it executes are not, so libelmon takes itself out of the
 * LD_PRELOAD they inherit.  Forked copies keep running libelmon's code.
 * Constructors of preloaded libraries run before main, while the process
 * has one thread, so changing the environment here is safe. */
static void children_off(void)
{
    const char *v = getenv("ELMON_CHILDREN");
    const char *pre = getenv("LD_PRELOAD");
    int children = 1;
    Dl_info self;
    if (!v || !*v || elmon_parse_bool(v, &children) < 0 || children || !pre ||
        !dladdr((void *)children_off, &self) || !self.dli_fname)
        return;
    char *copy = strdup(pre), *out = calloc(1, strlen(pre) + 1), *save = NULL;
    if (!copy || !out)
        goto done;
    for (char *tok = strtok_r(copy, ": \t", &save); tok; tok = strtok_r(NULL, ": \t", &save)) {
        const char *base = strrchr(tok, '/');
        if (strcmp(tok, self.dli_fname) == 0 || strcmp(base ? base + 1 : tok, "libelmon.so") == 0)
            continue;
        if (*out)
            strcat(out, ":");
        strcat(out, tok);
    }
    if (*out)
        setenv("LD_PRELOAD", out, 1);
    else
        unsetenv("LD_PRELOAD");
done:
    free(copy);
    free(out);
}

/* The host confines itself (hot/wrap.c saw the seccomp call, which has
 * not run yet): end the measurement as an exit would (spans closed,
 * summaries written, the exporter flushed), while every call is still
 * allowed; after it libelmon makes no call on any thread. */
static void on_confine(const char *how)
{
    if (!__atomic_load_n(&elmon_active, __ATOMIC_ACQUIRE))
        return;
    elmon_warn("the process confines itself with %s; libelmon stops measuring here (a sandbox forbids the "
               "calls it makes)", how);
    elmon_exit_work(0);
    elmon_own_disown_all();
}

/* ELMON_DISABLE, ELMON_CHILDREN and AT_SECURE are the only settings read
 * for every process: they decide whether the library does anything at all. */
__attribute__((constructor)) static void elmon_init(void)
{
    elmon_resolve_real();
    int preloaded = elmon_attach_preloaded();
    if (getauxval(AT_SECURE)) {
        elmon_attach_at_load(preloaded);   /* refused: inactive */
        return;
    }
    children_off();
    const char *d = getenv("ELMON_DISABLE");
    int disable = 0;
    if (d && *d && elmon_parse_bool(d, &disable) < 0)
        disable = 0;   /* warned about at the first loop, if one runs */
    if (disable) {
        elmon_attach_at_load(preloaded);   /* refused: inactive */
        return;
    }
    elmon_env_snapshot();
    elmon_registry_init(elmon_watchdog_ensure);
    elmon_registry_on_confine(on_confine);
    elmon_clock_probe();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    __atomic_store_n(&elmon_active, 1, __ATOMIC_RELEASE);
    /* Loaded by elmon attach: the settings, then the calls redirected. */
    elmon_attach_at_load(preloaded);
}

__attribute__((destructor)) static void elmon_fini(void)
{
    elmon_exit_work(0);
}

/* _exit and _Exit end the process without atexit handlers or destructors
 * (every multiprocessing and pool worker leaves through os._exit): the
 * spans and summaries are written here first.  exit() reaches the kernel
 * through glibc's internal _exit, not this one, after exit_work ran. */
static __attribute__((noreturn)) void exit_now(int status)
{
    if (__atomic_load_n(&elmon_active, __ATOMIC_ACQUIRE) && elmon_same_process())
        elmon_exit_work(1);
    if (!elmon_real.exit_now)
        elmon_resolve_real();
    if (elmon_real.exit_now)
        elmon_real.exit_now(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    exit_now(status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
    exit_now(status);
}
