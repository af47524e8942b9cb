/*
 * libelmon's own descriptors (ownfd.h has the rule and the threads).
 *
 * An entry's fd is published last (release store) and cleared first, so a
 * reader that sees an fd sees its device and inode.  Closing goes through
 * elmon_real.close: libelmon's own close() would be its wrapper, which
 * hides these very numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ownfd.h"
#include "real.h"

/* Above the numbers a host uses, yet low enough that the kernel's
 * descriptor table does not grow much for it (a table sized for a
 * million descriptors costs 8 MB). */
#define OWN_FLOOR_MAX 1024
#define OWN_FLOOR_MIN 10

struct own {
    int fd;        /* -1: free */
    int lost;      /* the host has the number now */
    dev_t dev;
    ino_t ino;
};

int elmon_own_lowest = INT_MAX;
__thread int elmon_own_thread __attribute__((tls_model("initial-exec")));
static struct own own[ELMON_OWN_MAX] = {[0 ... ELMON_OWN_MAX - 1] = {.fd = -1}};
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;
/* Entries at and above this index are free: a host's close of a high
 * number scans only the used part. */
static int own_used;

static int real_close(int fd)
{
    if (!elmon_real.close)
        elmon_resolve_real();
    return elmon_real.close ? elmon_real.close(fd) : -1;
}

int elmon_own_floor(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return OWN_FLOOR_MAX;
    rlim_t half = rl.rlim_cur / 2;
    return half > OWN_FLOOR_MAX ? OWN_FLOOR_MAX : half < OWN_FLOOR_MIN ? 0 : (int)half;
}

/* Under own_lock. */
static void recompute_lowest(void)
{
    int lo = INT_MAX;
    for (int i = 0; i < ELMON_OWN_MAX; i++) {
        int fd = __atomic_load_n(&own[i].fd, __ATOMIC_RELAXED);
        if (fd >= 0 && fd < lo)
            lo = fd;
    }
    __atomic_store_n(&elmon_own_lowest, lo, __ATOMIC_RELEASE);
}

static struct own *find(int fd)
{
    if (fd < 0)
        return NULL;
    int n = __atomic_load_n(&own_used, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (__atomic_load_n(&own[i].fd, __ATOMIC_ACQUIRE) == fd)
            return &own[i];
    return NULL;
}

static int adopt(int fd, int keep_when_full);

int elmon_own_adopt(int fd)
{
    return adopt(fd, 0);
}

int elmon_own_adopt_or_keep(int fd)
{
    return adopt(fd, 1);
}

static int adopt(int fd, int keep_when_full)
{
    if (fd < 0)
        return -1;
    int saved = errno;
    int floor = elmon_own_floor();
    if (floor > 0 && fd < floor) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, floor);
        if (high >= 0) {
            real_close(fd);
            fd = high;
        }
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        real_close(fd);
        errno = saved;
        return -1;
    }
    pthread_mutex_lock(&own_lock);
    struct own *e = NULL;
    for (int i = 0; i < ELMON_OWN_MAX && !e; i++)
        if (__atomic_load_n(&own[i].fd, __ATOMIC_RELAXED) < 0)
            e = &own[i];
    if (e) {
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        __atomic_store_n(&e->lost, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&e->fd, fd, __ATOMIC_RELEASE);
        int idx = (int)(e - own);
        if (idx >= own_used)
            __atomic_store_n(&own_used, idx + 1, __ATOMIC_RELEASE);
        recompute_lowest();
    }
    pthread_mutex_unlock(&own_lock);
    if (!e && !keep_when_full) {
        /* Not one we could guard: do not keep it. */
        real_close(fd);
        fd = -1;
    }
    errno = saved;
    return fd;
}

/* Same file as adopted?  fstat is async-signal-safe. */
static int same_file(const struct own *e, int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == e->dev && st.st_ino == e->ino;
}

int elmon_own_ok(int fd)
{
    struct own *e = find(fd);
    if (!e || __atomic_load_n(&e->lost, __ATOMIC_ACQUIRE))
        return 0;
    int saved = errno;
    int ok = same_file(e, fd);
    errno = saved;
    if (!ok)
        __atomic_store_n(&e->lost, 1, __ATOMIC_RELEASE);
    return ok;
}

/* Forget fd's entry; close it when it is still ours, or when it has no
 * entry and close_untracked says so.  The close's result. */
static int own_close(int fd, int close_untracked)
{
    pthread_mutex_lock(&own_lock);
    struct own *e = find(fd);
    int rc = 0, mine = close_untracked;
    if (e) {
        mine = !__atomic_load_n(&e->lost, __ATOMIC_ACQUIRE) && same_file(e, fd);
        __atomic_store_n(&e->fd, -1, __ATOMIC_RELEASE);
        recompute_lowest();
    }
    if (mine)
        rc = real_close(fd);
    pthread_mutex_unlock(&own_lock);
    return rc;
}

void elmon_own_release(int fd)
{
    own_close(fd, 0);
}

int elmon_own_close(int fd)
{
    return own_close(fd, 1);
}

void elmon_own_atfork_child(void)
{
    pthread_mutex_init(&own_lock, NULL);
}

void elmon_own_disown_all(void)
{
    for (int i = 0; i < ELMON_OWN_MAX; i++)
        __atomic_store_n(&own[i].lost, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&elmon_own_lowest, INT_MAX, __ATOMIC_RELEASE);
}

void elmon_own_taken(int fd)
{
    struct own *e = find(fd);
    if (e)
        __atomic_store_n(&e->lost, 1, __ATOMIC_RELEASE);
}

int elmon_own_sorted(unsigned first, unsigned last, int *out)
{
    int n = 0, used = __atomic_load_n(&own_used, __ATOMIC_ACQUIRE);
    for (int i = 0; i < used; i++) {
        int fd = __atomic_load_n(&own[i].fd, __ATOMIC_ACQUIRE);
        if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last || __atomic_load_n(&own[i].lost, __ATOMIC_ACQUIRE))
            continue;
        int k = n++;
        while (k > 0 && out[k - 1] > fd) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = fd;
    }
    return n;
}
