/*
 * elmon attach's half inside the host (see attach.h).  The settings file
 * is made by the injector before it calls dlopen: /tmp/elmon-attach-UID/
 * PID.settings (UID the effective user, PID as this process sees itself),
 * a 0600 file in a 0700 directory, both the user's own.  Each line is
 * NAME=VALUE for an ELMON_* variable.  The constructor reads it, removes
 * it, and redirects the calls, all inside dlopen: the loader's lock is
 * held, so no other thread's dlopen is half done (an object mapped but not
 * yet relocated, whose slots the loader would still rewrite or protect).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attach.h"
#include "config.h"
#include "exit.h"
#include "got.h"
#include "log.h"
#include "loop.h"
#include "ownfd.h"
#include "real.h"

/* Every function libelmon interposes (hot/wrap.c, process/elmon.c). */
static const char *const wrapped[] = {
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "__poll_chk", "ppoll", "__ppoll_chk", "select", "pselect",
    "epoll_ctl", "epoll_create", "epoll_create1", "close", "close_range", "closefrom", "dup2", "dup3", "nanosleep",
    "clock_nanosleep", "usleep", "sleep", "prctl", "syscall", "_exit", "_Exit",
};
#define N_WRAPPED (sizeof wrapped / sizeof wrapped[0])

__attribute__((visibility("default"))) int elmon_attach_state;
/* What the watchdog's late passes redirect (the constructor's list). */
static struct elmon_got_target targets[N_WRAPPED];
static size_t n_targets;
static unsigned long long seen_adds;
static unsigned retry_ticks;
/* A late pass that found an object still being relocated comes back at
 * each tick for this many ticks (2 s at the watchdog's 10 ms). */
#define LATE_RETRY_TICKS 200
__attribute__((visibility("default"))) int elmon_attach_result;

/* The user's own, with no group or other access. */
static int private_of_mine(const struct stat *st, int dir)
{
    return (dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode)) && st->st_uid == geteuid() && !(st->st_mode & 077);
}

/* 1 when LD_PRELOAD names libelmon: loaded at start-up, not attached. */
static int preloaded_as(const char *self)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !self)
        return 0;
    const char *base = strrchr(self, '/');
    base = base ? base + 1 : self;
    for (const char *p = strstr(pre, base); p; p = strstr(p + 1, base))
        if ((p[strlen(base)] == 0 || strchr(": \t", p[strlen(base)])) && (p == pre || strchr(": \t/", p[-1])))
            return 1;
    return 0;
}

/* The settings file's text into buf, the file removed: its length, or
 * -ENOENT (no attach), -EPERM (not private, not ours), -errno. */
static int read_settings(char *buf, size_t n)
{
    char dir[64], path[96];
    struct stat st;
    snprintf(dir, sizeof dir, "/tmp/elmon-attach-%u", (unsigned)geteuid());
    snprintf(path, sizeof path, "%s/%d.settings", dir, (int)getpid());
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!private_of_mine(&st, 1))
        return -EPERM;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t k = -1;
    int e = EPERM;
    if (fstat(fd, &st) == 0 && private_of_mine(&st, 0) && st.st_size < (off_t)n) {
        k = read(fd, buf, n - 1);
        e = errno;
    }
    close(fd);
    unlink(path);
    if (k < 0)
        return -e;
    buf[k] = 0;
    return (int)k;
}

int elmon_attach_preloaded(void)
{
    Dl_info self;
    return dladdr((void *)elmon_attach_preloaded, &self) && self.dli_fname && preloaded_as(self.dli_fname);
}

int elmon_attach_at_load(int preloaded)
{
    Dl_info self;
    if (preloaded || !dladdr((void *)elmon_attach_at_load, &self) || !self.dli_fname)
        return 0;
    char buf[8192];
    int rc = read_settings(buf, sizeof buf);
    if (rc == -ENOENT)
        return 0;   /* a dlopen of someone else's, not elmon attach */
    int result;
    if (rc < 0) {
        result = rc;
    } else if (!__atomic_load_n(&elmon_active, __ATOMIC_ACQUIRE)) {
        result = -ECANCELED;   /* ELMON_DISABLE, AT_SECURE */
    } else {
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (strncmp(line, "ELMON_", 6) == 0 && strchr(line, '='))
                elmon_env_snapshot_set(line);
        result = elmon_attach_redirect(self.dli_fname, self.dli_fbase);
    }
    __atomic_store_n(&elmon_attach_result, result, __ATOMIC_RELEASE);
    return result;
}

int elmon_attach_redirect(const char *self_path, void *self_base)
{
    /* Inside our own dlopen: a second reference to ourselves, for dlsym on
     * our own scope (our wrappers, not the libc functions before us). */
    void *h = dlopen(self_path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return -ENOENT;
    /* RTLD_NEXT from the last object loaded still finds libc (it searches
     * libelmon's own scope after libelmon): never one of our wrappers. */
    if (!elmon_real.epoll_wait || (void *)elmon_real.epoll_wait == dlsym(h, "epoll_wait")) {
        dlclose(h);
        return -ELOOP;
    }
    size_t n = 0;
    for (size_t i = 0; i < N_WRAPPED; i++) {
        Dl_info at;
        void *p = dlsym(h, wrapped[i]);
        /* Ours only (dlsym on our handle falls back to our dependencies).
         * The global scope's definition, which libelmon is not part of
         * (loaded RTLD_LOCAL), is what a late pass may replace. */
        if (p && dladdr(p, &at) && at.dli_fbase == self_base)
            targets[n++] = (struct elmon_got_target){wrapped[i], p, dlsym(RTLD_DEFAULT, wrapped[i])};
    }
    dlclose(h);
    n_targets = n;
    seen_adds = elmon_got_objects_added();
    long done = elmon_got_redirect(targets, n, (void *)elmon_attach_redirect, NULL);
    __atomic_store_n(&elmon_attach_state, 1, __ATOMIC_RELEASE);
    return (int)(done > INT32_MAX ? INT32_MAX : done);
}

void elmon_attach_tick(void)
{
    if (__atomic_load_n(&elmon_attach_state, __ATOMIC_ACQUIRE) != 1)
        return;
    unsigned long long adds = elmon_got_objects_added();
    if (adds == seen_adds && !retry_ticks)
        return;
    if (adds != seen_adds)
        retry_ticks = LATE_RETRY_TICKS;
    seen_adds = adds;
    long pending = 0;
    long done = elmon_got_redirect_late(targets, n_targets, (void *)elmon_attach_redirect, &pending);
    retry_ticks = pending ? retry_ticks - 1 : 0;
    if (done && elmon_opt.verbose)
        elmon_logf("attach: %ld call site%s of objects loaded since redirected%s", done, done == 1 ? "" : "s",
                   pending ? " (more once the loader is done)" : "");
}

__attribute__((visibility("default"))) int elmon_attach_stop(void)
{
    int state = __atomic_load_n(&elmon_attach_state, __ATOMIC_ACQUIRE);
    if (state == 2)
        return -EALREADY;
    if (state != 1)
        return -ENOTSUP;
    elmon_got_close();   /* no late pass after this */
    long n = elmon_got_restore();
    /* As when the host confines itself (process/elmon.c's on_confine):
     * while every call is still allowed, the end of the measurement, then
     * no call of libelmon's on any thread.  A thread inside a wrapper
     * finishes its call there. */
    elmon_exit_work(0);
    elmon_own_disown_all();
    __atomic_store_n(&elmon_attach_state, 2, __ATOMIC_RELEASE);
    return (int)(n > INT32_MAX ? INT32_MAX : n);
}
