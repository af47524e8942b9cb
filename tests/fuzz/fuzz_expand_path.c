/*
 * ELMON_EVENTS / ELMON_LOG patterns (preload/outfile.c elmon_expand_path):
 * %p and %% expand, any other %-sequence is refused, and the result never
 * passes the output's size, which is exactly the size given.
 *
 * Input: 4 bytes of pid, one byte of output size, then the pattern.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "outfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int pid;
    memcpy(&pid, data, sizeof pid);
    size_t n = data[4] * 17u % 4200;
    char *pattern = fuzz_strndup(data + 5, size - 5);
    char *out = malloc(n ? n : 1);
    FUZZ_CHECK(out);
    int rc = elmon_expand_path(pattern, pid, out, n);

    /* The oracle, with room to spare. */
    size_t plen = strlen(pattern);
    char *want = malloc(plen * 12 + 1), num[16];
    FUZZ_CHECK(want);
    int bad = 0;
    size_t w = 0, first_over = 0;
    snprintf(num, sizeof num, "%d", pid);
    for (const char *p = pattern; *p && !bad; p++) {
        if (*p != '%') {
            want[w++] = *p;
        } else if (p[1] == 'p') {
            memcpy(want + w, num, strlen(num));
            w += strlen(num);
            p++;
        } else if (p[1] == '%') {
            want[w++] = '%';
            p++;
        } else {
            bad = 1;
        }
        /* The first step that would not fit decides, before a later bad %. */
        if (!bad && !first_over && w + 1 > n)
            first_over = w;
    }
    want[w] = 0;
    if (first_over)
        FUZZ_CHECK(rc == -ENAMETOOLONG);
    else if (bad || w == 0)
        FUZZ_CHECK(rc == -EINVAL);
    else
        FUZZ_CHECK(rc == 0 && strcmp(out, want) == 0 && strlen(out) < n);
    free(want);
    free(out);
    free(pattern);
    return 0;
}
