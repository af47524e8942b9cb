/*
 * Safe creation of the event, folded-stack and log files.  Cold path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "outfile.h"

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

int elmon_open_out(const char *pattern, char *resolved, size_t n)
{
    int rc = elmon_expand_path(pattern, getpid(), resolved, n);
    if (rc < 0)
        return rc;
    int fd = open(resolved, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    if (errno != EEXIST)
        return -errno;
    fd = open(resolved, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ELOOP ? -ELOOP : -errno;
    struct stat st;
    /* Only a file shaped like one we made (ours, 0600 or stricter): a
     * mistyped path as root must not append to /etc/passwd. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077)) {
        close(fd);
        return -EPERM;
    }
    /* O_NONBLOCK only guarded the open against a FIFO planted in the way. */
    fcntl(fd, F_SETFL, O_APPEND);
    return fd;
}

long elmon_read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, n - 1);
    close(fd);
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
