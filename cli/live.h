/*
 * Reading libelmon's live stats files (layout and rules: common/statsfile.h),
 * for `elmon stat`, `elmon top` (live.c) and `elmon serve` (serve.c).
 *
 * Owns: nothing past the calls; each struct live holds one open file.
 * Threads: the caller's; no state is shared between struct live values
 * but live_copy's scratch copy, so one thread at a time.
 * May not: map a file (a truncation would be a SIGBUS), block on a host
 * (preads and one pwrite of wanted_until_ns, nothing waits on the writer),
 * or read a file not owned by the uid asked for.
 */
#ifndef ELMON_CLI_LIVE_H
#define ELMON_CLI_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "statsfile.h"

struct live {
    int pid;
    uid_t uid;                      /* the owner the file and its header must name */
    int fd;                         /* the file, read and written with pread/pwrite; -1 none */
    int bad;                        /* the file cannot be read as a stats file: why says why */
    char why[200];
    char path[4200];
    struct elmon_stats_file copy;   /* the last consistent, checked copy */
    int have_copy;                  /* copy holds one */
    uint64_t asked_ns;
    int fresh;                      /* copy holds figures refreshed after our ask */
};

enum { LIVE_OK = 0, LIVE_NONE = -1, LIVE_STALE = -2, LIVE_BAD = -3, LIVE_BUSY = -4 };

/* Open DIR/PID.stats and check its owner (uid) and header.  A stale file
 * (its process is gone or exec'ed) is removed: LIVE_STALE; one this elmon
 * cannot read is LIVE_BAD, with lv->why; no file, LIVE_NONE. */
int live_attach(struct live *lv, const char *dir, int pid, uid_t uid);
/* Close it; lv->bad and lv->why stay for the message. */
void live_detach(struct live *lv);
/* Move the file's wanted_until_ns forward (the writer then refreshes once
 * a second for ELMON_STATS_WANTED_NS); sets lv->asked_ns.  LIVE_OK or LIVE_BAD. */
int live_ask(struct live *lv);
/* Copy the figures under the seqlock into lv->copy, checked: LIVE_OK,
 * LIVE_BAD, or LIVE_BUSY (lv->copy keeps the previous copy). */
int live_copy(struct live *lv);
/* The same with at most tries looks, 500 us apart: a reader that must not
 * wait on a writer that died mid-update asks for one. */
int live_copy_tries(struct live *lv, int tries);
/* Every live stats file of DIR owned by uid (stale ones removed), or of
 * the pids asked for, in *out (malloc'd): those that can be read and
 * those that cannot (lv->bad).  Returns how many. */
size_t live_scan(const char *dir, uid_t uid, char **pids, int n_pids, struct live **out);

#endif
