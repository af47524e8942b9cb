/*
 * elmon attach's half inside the host (see attach.h).  The settings file
 * is made by the injector: a 0600 file `settings` in a fresh 0700
 * directory of the target's /tmp, both owned by the target's effective
 * user; its path arrives as the argument.  Each line is NAME=VALUE for
 * an ELMON_* variable.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attach.h"
#include "config.h"
#include "exit.h"
#include "ownfd.h"
#include "got.h"
#include "real.h"
#include "loop.h"

/* Every function libelmon interposes (hot/wrap.c, process/elmon.c). */
static const char *const wrapped[] = {
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "__poll_chk", "ppoll", "__ppoll_chk", "select", "pselect",
    "epoll_ctl", "epoll_create", "epoll_create1", "close", "close_range", "closefrom", "dup2", "dup3", "nanosleep",
    "clock_nanosleep", "usleep", "sleep", "prctl", "syscall", "_exit", "_Exit",
};
#define N_WRAPPED (sizeof wrapped / sizeof wrapped[0])

static int attached;
__attribute__((visibility("default"))) int elmon_attach_state;

int elmon_attached(void)
{
    return __atomic_load_n(&elmon_attach_state, __ATOMIC_ACQUIRE) == 1;
}

/* The user's own private file in the user's own private directory. */
static int private_of_mine(const struct stat *st, int dir)
{
    return (dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode)) && st->st_uid == geteuid() && !(st->st_mode & 077);
}

static int read_settings(const char *path)
{
    char dir[PATH_MAX];
    struct stat st;
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    dirname(dir);
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!private_of_mine(&st, 1))
        return -EPERM;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[8192];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && private_of_mine(&st, 0) && st.st_size < (off_t)sizeof buf)
        n = read(fd, buf, sizeof buf - 1);
    int e = n < 0 ? (errno ? errno : EPERM) : 0;
    close(fd);
    unlink(path);
    rmdir(dir);
    if (n < 0)
        return -e;
    buf[n] = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, "ELMON_", 6) == 0 && strchr(line, '='))
            elmon_env_snapshot_set(line);
    return 0;
}

__attribute__((visibility("default"))) int elmon_attach_start(const char *settings)
{
    if (!__atomic_load_n(&elmon_active, __ATOMIC_ACQUIRE))
        return -ECANCELED;
    if (__atomic_exchange_n(&attached, 1, __ATOMIC_ACQ_REL))
        return -EALREADY;
    Dl_info self;
    void *h = NULL;
    if (dladdr((void *)elmon_attach_start, &self) && self.dli_fname)
        h = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        __atomic_store_n(&attached, 0, __ATOMIC_RELEASE);
        return -ENOENT;
    }
    /* RTLD_NEXT from the last object loaded still finds libc (it searches
     * libelmon's own scope after libelmon): never one of our wrappers. */
    if (!elmon_real.epoll_wait || elmon_real.epoll_wait == (void *)dlsym(h, "epoll_wait")) {
        dlclose(h);
        __atomic_store_n(&attached, 0, __ATOMIC_RELEASE);
        return -ELOOP;
    }
    int rc = settings ? read_settings(settings) : 0;
    if (rc < 0) {
        dlclose(h);
        __atomic_store_n(&attached, 0, __ATOMIC_RELEASE);
        return rc;
    }
    struct elmon_got_target t[N_WRAPPED];
    size_t n = 0;
    for (size_t i = 0; i < N_WRAPPED; i++) {
        Dl_info at;
        void *p = dlsym(h, wrapped[i]);
        /* Ours only (dlsym on our handle falls back to our dependencies). */
        if (p && dladdr(p, &at) && at.dli_fbase == self.dli_fbase)
            t[n++] = (struct elmon_got_target){wrapped[i], p};
    }
    dlclose(h);
    long failed = 0;
    long done = elmon_got_redirect(t, n, (void *)elmon_attach_start, &failed);
    __atomic_store_n(&elmon_attach_state, 1, __ATOMIC_RELEASE);
    return (int)(done > INT32_MAX ? INT32_MAX : done);
}

__attribute__((visibility("default"))) int elmon_attach_stop(void)
{
    int state = __atomic_load_n(&elmon_attach_state, __ATOMIC_ACQUIRE);
    if (state == 2)
        return -EALREADY;
    if (state != 1)
        return -ENOTSUP;
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
