/*
 * Safe creation of the event, folded-stack and log files.  Cold path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "log.h"
#include "outfile.h"
#include "ownfd.h"
#include "real.h"

int elmon_expand_path(const char *pattern, int pid, char *out, size_t n)
{
    size_t len = 0;
    for (const char *p = pattern; *p; p++) {
        char tmp[24];
        const char *add = tmp;
        size_t k;
        if (*p != '%') {
            tmp[0] = *p;
            k = 1;
        } else if (p[1] == 'p') {
            k = (size_t)snprintf(tmp, sizeof tmp, "%d", pid);
            p++;
        } else if (p[1] == '%') {
            tmp[0] = '%';
            k = 1;
            p++;
        } else {
            return -EINVAL;
        }
        if (len + k + 1 > n)
            return -ENAMETOOLONG;
        memcpy(out + len, add, k);
        len += k;
    }
    if (len == 0)
        return -EINVAL;
    out[len] = 0;
    return 0;
}

/* Filesystems whose "files" are the kernel's interfaces: writing
 * /proc/self/clear_refs or /proc/self/mem, or a sysfs attribute, is an
 * action, not a log. */
static int kernel_fs(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0)
        return 1;
    switch ((unsigned long)sf.f_type) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEBUGFS_MAGIC: case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC: case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC: case BPF_FS_MAGIC:
    case DEVPTS_SUPER_MAGIC: case EFIVARFS_MAGIC: case PSTOREFS_MAGIC:
        return 1;
    case TMPFS_MAGIC: {
        /* devtmpfs says tmpfs: told apart by being /dev's filesystem. */
        struct stat f, dev;
        return fstat(fd, &f) == 0 && stat("/dev", &dev) == 0 && f.st_dev == dev.st_dev;
    }
    default:
        return 0;
    }
}

static void close_quiet(int fd)
{
    int saved = errno;
    if (!elmon_real.close)
        elmon_resolve_real();
    if (elmon_real.close)
        elmon_real.close(fd);
    errno = saved;
}

int elmon_open_parent(const char *path, char *last, size_t n)
{
    int dfd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k >= n) {
            close_quiet(dfd);
            return -ENAMETOOLONG;
        }
        memcpy(last, p, k);
        last[k] = 0;
        const char *rest = end;
        while (rest && *rest == '/')
            rest++;
        if (!rest || !*rest)
            break;   /* last holds the final component */
        p = rest;
        if (k == 0 || strcmp(last, ".") == 0)
            continue;
        int next = openat(dfd, last, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (next < 0) {
            struct stat st;
            if (fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err = ELOOP;
            close_quiet(dfd);
            return -err;
        }
        close_quiet(dfd);
        dfd = next;
    }
    if (!last[0] || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
        close_quiet(dfd);
        return -EISDIR;
    }
    return dfd;
}

int elmon_open_out(const char *pattern, char *resolved, size_t n)
{
    int rc = elmon_expand_path(pattern, getpid(), resolved, n);
    if (rc < 0)
        return rc;
    char name[256];
    int dfd = elmon_open_parent(resolved, name, sizeof name);
    if (dfd < 0)
        return dfd;
    int fd = openat(dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        fd = openat(dfd, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    rc = fd < 0 ? -errno : 0;
    close_quiet(dfd);
    if (fd < 0)
        return rc;
    struct stat st;
    /* Only a file shaped like one we made (ours, 0600 or stricter, one
     * link, on a real filesystem): a mistyped path as root must not append
     * to /etc/passwd, nor a hard link planted in a shared directory lead
     * to another file. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        rc = -EPERM;
    else if (kernel_fs(fd))
        rc = -EXDEV;
    else if (st.st_nlink != 1)
        rc = -EMLINK;
    if (rc < 0) {
        close_quiet(fd);
        return rc;
    }
    /* O_NONBLOCK only guarded the open against a FIFO planted in the way. */
    fcntl(fd, F_SETFL, O_APPEND);
    fd = elmon_own_adopt(fd);
    return fd < 0 ? -EMFILE : fd;
}

int elmon_out_usable(int *fd, const char *var, int *warned)
{
    if (*fd < 0)
        return 0;
    if (elmon_own_ok(*fd))
        return 1;
    elmon_own_release(*fd);
    *fd = -1;
    if (!*warned) {
        *warned = 1;
        elmon_warn("the host took %s's descriptor (a dup2 onto it, or a close libelmon could not see); "
                   "reopening the file", var);
    }
    return 0;
}

const char *elmon_open_out_why(int rc)
{
    switch (rc) {
    case -ELOOP:
        return "a symbolic link in the path";
    case -EPERM:
        return "not a regular file of this user with mode 0600";
    case -EXDEV:
        return "a kernel interface (procfs, sysfs, devtmpfs), not a file";
    case -EMLINK:
        return "the file has more than one hard link";
    default:
        return strerror(-rc);
    }
}

long elmon_read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, n - 1);
    close_quiet(fd);
    if (k < 0)
        return -1;
    buf[k] = 0;
    return (long)k;
}

int elmon_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
