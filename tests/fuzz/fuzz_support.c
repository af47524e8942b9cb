/*
 * Helpers of the fuzz targets (see fuzz.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"
#include "log.h"

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s);
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

extern char **environ;
static char *env_mem[64];

void fuzz_environ(char **entries, size_t n)
{
    FUZZ_CHECK(n < sizeof env_mem / sizeof env_mem[0]);
    for (size_t i = 0; i < n; i++)
        env_mem[i] = entries[i];
    env_mem[n] = NULL;
    environ = env_mem;
}

static int log_rd = -1;
static char log_path[64];

static void log_cleanup(void)
{
    unlink(log_path);
}

void fuzz_log_start(void)
{
    /* ELMON_LOG must name a file libelmon creates itself (O_EXCL, 0600). */
    snprintf(log_path, sizeof log_path, "/tmp/elmon-fuzz-%d.log", (int)getpid());
    unlink(log_path);
    char *env[] = {NULL, NULL};
    char var[96];
    snprintf(var, sizeof var, "ELMON_LOG=%s", log_path);
    env[0] = var;
    fuzz_environ(env, 1);
    elmon_log_open();
    FUZZ_CHECK(elmon_log_enabled());
    log_rd = open(log_path, O_RDWR | O_CLOEXEC);
    FUZZ_CHECK(log_rd >= 0);
    atexit(log_cleanup);
    fuzz_environ(NULL, 0);
}

const char *fuzz_log_take(size_t *len)
{
    static char text[1 << 16];
    ssize_t k = pread(log_rd, text, sizeof text - 1, 0);
    FUZZ_CHECK(k >= 0);
    text[k] = 0;
    FUZZ_CHECK(ftruncate(log_rd, 0) == 0);
    if (len)
        *len = (size_t)k;
    return text;
}

void fuzz_check_log_text(const char *text, size_t len, int ascii)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl);                          /* whole lines only */
        FUZZ_CHECK(strncmp(p, "elmon: ", 7) == 0);
        for (const unsigned char *c = (const unsigned char *)p; c < (const unsigned char *)nl; c++)
            FUZZ_CHECK(*c >= 0x20 && *c != 0x7f && (!ascii || *c < 0x80));
        p = nl + 1;
    }
}

size_t fuzz_utf8_seq(const unsigned char *s, size_t avail)
{
    /* Table 3-7 of the Unicode standard, byte by byte. */
    unsigned c = s[0];
    if (c <= 0x7f)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c == 0xe0)
        n = 3, lo = 0xa0;
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        n = 3;
    else if (c == 0xed)
        n = 3, hi = 0x9f;
    else if (c == 0xf0)
        n = 4, lo = 0x90;
    else if (c >= 0xf1 && c <= 0xf3)
        n = 4;
    else if (c == 0xf4)
        n = 4, hi = 0x8f;
    else
        return 0;
    if (n > avail || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

int fuzz_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = fuzz_utf8_seq(u + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}
