/*
 * Creating libelmon's own files in places the user names.
 */
#ifndef ELMON_OUTFILE_H
#define ELMON_OUTFILE_H

#include <stddef.h>

/* Expand %p (pid) and %% in pattern into out; -ENAMETOOLONG when it does
 * not fit, -EINVAL for any other %-sequence. */
int elmon_expand_path(const char *pattern, int pid, char *out, size_t n);

/* Open pattern's expansion for appending.  A new file is created with
 * O_EXCL|O_NOFOLLOW|O_CLOEXEC and mode 0600; an existing one is reused only
 * when it is a regular file of ours with no group or other permissions (as
 * we create them), so a planted symlink, someone else's file or a system
 * file is never written.  Returns the fd or
 * -errno; resolved receives the expanded path. */
int elmon_open_out(const char *pattern, char *resolved, size_t n);

/* Read a small file (/proc, /sys) with one read(2): at most n - 1 bytes,
 * NUL-terminated.  The length, or -1. */
long elmon_read_small(const char *path, char *buf, size_t n);

/* write(2) all of it, retrying on EINTR and short writes; 0 or -errno. */
int elmon_write_all(int fd, const char *p, size_t n);

#endif
