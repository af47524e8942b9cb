/*
 * Creating libelmon's own files in places the user names, and the small
 * file I/O its writers share.
 *
 * Owns: no state; the rules every file libelmon makes or reuses follows
 * (each listed at elmon_open_out below).
 * Threads: any libelmon thread off the hot path: the constructor (the
 * clock's /sys read), the thread registering the first loop (the log
 * file), the watchdog (events, folded and stats files; /proc readings),
 * the exiting thread.
 * May not: follow a symlink on an output's path, reuse a file that is not
 * the user's own private regular file, or run on the hot path or in a
 * signal handler.
 */
#ifndef ELMON_OUTFILE_H
#define ELMON_OUTFILE_H

#include <stddef.h>

/* Expand %p (pid) and %% in pattern into out; -ENAMETOOLONG when it does
 * not fit, -EINVAL for any other %-sequence. */
int elmon_expand_path(const char *pattern, int pid, char *out, size_t n);

/* Open pattern's expansion for appending, as one of libelmon's own
 * descriptors (ownfd.h).  Every directory on the way is opened with
 * O_NOFOLLOW from the one before it, so a symlink anywhere in the path is
 * refused (-ELOOP).  A new file is created with O_EXCL|O_NOFOLLOW|O_CLOEXEC
 * and mode 0600; an existing one is reused only when it is a regular file
 * of ours with no group or other permissions (as we create them, else
 * -EPERM), with one link (-EMLINK), and not a kernel interface on procfs,
 * sysfs or devtmpfs (-EXDEV).  Returns the fd or -errno; resolved receives
 * the expanded path.  elmon_open_out_why(rc) says why in words. */
int elmon_open_out(const char *pattern, char *resolved, size_t n);
const char *elmon_open_out_why(int rc);

/* The directory that holds path's last component, reached component by
 * component with O_NOFOLLOW (an O_PATH descriptor for the *at calls, the
 * caller closes it with elmon_real.close), the component in last; or
 * -errno (-ELOOP for a symlink on the way). */
int elmon_open_parent(const char *path, char *last, size_t n);

/* Before each write to an output libelmon opened with elmon_open_out:
 * 1 when *fd is still its own.  When the host took the number (dup2 onto
 * it, or a raw close and its own open), the entry is forgotten, *fd
 * becomes -1 and *warned is set on the first time with one warning naming
 * var: the caller reopens its file.  0 then. */
int elmon_out_usable(int *fd, const char *var, int *warned);

/* Read a small file (/proc, /sys) with one read(2): at most n - 1 bytes,
 * NUL-terminated.  The length, or -1. */
long elmon_read_small(const char *path, char *buf, size_t n);

/* write(2) all of it, retrying on EINTR and short writes; 0 or -errno. */
int elmon_write_all(int fd, const char *p, size_t n);

#endif
