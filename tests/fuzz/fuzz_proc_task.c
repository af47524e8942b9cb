/*
 * /proc/self/task/TID/{stat,syscall,status} as the watchdog reads them to
 * explain a blocked thread (preload/cause.c), then the explanation built
 * from them (elmon_cause_fill, elmon_syscall_eintr).
 *
 * Checked: the state is the byte after the last ") " or none; the system
 * call number is -2, -1 or a number read from the text (-1 only for
 * "running"); and the cause is one of the documented classes with a
 * terminated system call name.
 *
 * Input: one selector byte, then the file, cut at 1023 bytes as the
 * watchdog's read is.
 */
#include <stdlib.h>
#include <string.h>
#include "cause.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    size_t n = size - 1 < 1023 ? size - 1 : 1023;
    char *buf = fuzz_strndup(data + 1, n);

    struct elmon_task t;
    memset(&t, 0, sizeof t);
    t.nr = -2;
    task_parse_stat(buf, &t);
    const char *p = strrchr(buf, ')');
    FUZZ_CHECK(t.state == (p && p[1] == ' ' ? p[2] : 0));

    task_parse_syscall(buf, &t);
    FUZZ_CHECK(t.nr >= -2);
    FUZZ_CHECK(t.nr != -1 || strncmp(buf, "running", 7) == 0);
    task_parse_status(buf, &t);
    FUZZ_CHECK(t.sigblk == 0 || strstr(buf, "SigBlk:"));

    struct elmon_span_cause c;
    double share = sel < 200 ? sel / 199.0 : -1;
    elmon_cause_fill(&c, &t, share, 1000.0 * (sel % 7));
    static const char *const classes[] = {"disk", "cpu", "sleep", "lock", "io", "unknown"};
    int known = 0;
    for (size_t i = 0; i < 6; i++)
        known |= strcmp(c.cls, classes[i]) == 0;
    FUZZ_CHECK(known);
    FUZZ_CHECK(memchr(c.syscall, 0, sizeof c.syscall));
    FUZZ_CHECK(t.nr < 0 ? c.syscall[0] == 0 : c.syscall[0] != 0);
    /* The first argument is taken as a file descriptor: keep it one of
     * ours that cannot be a socket with timeouts. */
    t.args[0] %= 3;
    int e = elmon_syscall_eintr(&t);
    FUZZ_CHECK(e == 0 || e == 1);
    free(buf);
    return 0;
}
