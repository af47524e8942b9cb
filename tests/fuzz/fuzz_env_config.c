/*
 * ELMON_* values (preload/config.c): the pure parsers against an
 * independent oracle, then the environment readers end to end, whose only
 * side effect on bad input must be exactly one printable warning line.
 *
 * Input: one selector byte (which range, which reader), then the value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "fuzz.h"

static const struct { uint64_t min, max; } ranges[] = {
    {1, 3600000}, {0, 60000}, {1, 86400000}, {1, 65536}, {0, UINT64_MAX}, {5, 5},
};
static const char *const words_yes[] = {"1", "true", "yes", "on"};
static const char *const words_no[] = {"0", "false", "no", "off"};
static const char *const choices[] = {"none", "gzip", "http/protobuf", "", 0};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_log_start();
    return 0;
}

static void check_uint(const char *v, uint64_t min, uint64_t max)
{
    uint64_t out = 12345;
    int rc = elmon_parse_uint(v, min, max, &out);
    size_t n = strlen(v);
    int digits = n > 0 && strspn(v, "0123456789") == n;
    if (!digits) {
        FUZZ_CHECK(rc == -EINVAL && out == 12345);
        return;
    }
    /* The oracle: strtoull on digits only, with its own overflow check. */
    errno = 0;
    unsigned long long want = strtoull(v, NULL, 10);
    if (errno == ERANGE || want < min || want > max) {
        FUZZ_CHECK(rc == -ERANGE && out == 12345);
        return;
    }
    FUZZ_CHECK(rc == 0 && out == want);
}

static void check_bool(const char *v)
{
    int out = -7, want = -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, words_yes[i]) == 0)
            want = 1;
        if (strcasecmp(v, words_no[i]) == 0)
            want = 0;
    }
    int rc = elmon_parse_bool(v, &out);
    FUZZ_CHECK(want < 0 ? rc == -EINVAL && out == -7 : rc == 0 && out == want);
}

static void check_enum(const char *v)
{
    int i = elmon_parse_enum(v, choices);
    if (i >= 0) {
        FUZZ_CHECK(i < 4 && strcasecmp(v, choices[i]) == 0);
        for (int k = 0; k < i; k++)
            FUZZ_CHECK(strcasecmp(v, choices[k]) != 0);
    } else {
        FUZZ_CHECK(i == -EINVAL);
        for (int k = 0; choices[k]; k++)
            FUZZ_CHECK(strcasecmp(v, choices[k]) != 0);
    }
}

/* A reader given NAME=value: the value when valid, else the default and
 * exactly one warning naming the variable; nothing logged when valid or
 * empty. */
static void check_readers(const char *v, unsigned sel)
{
    static const char name[] = "ELMON_FUZZ_MS";
    size_t n = strlen(v);
    char *entry = malloc(sizeof name + 1 + n);
    FUZZ_CHECK(entry);
    sprintf(entry, "%s=%s", name, v);
    fuzz_environ(&entry, 1);

    int valid;
    switch (sel % 3) {
    case 0: {
        uint64_t min = ranges[sel / 3 % 6].min, max = ranges[sel / 3 % 6].max, out;
        uint64_t def = min + (max - min) / 2;
        uint64_t got = elmon_env_uint(name, def, min, max, "ms");
        valid = n && elmon_parse_uint(v, min, max, &out) == 0;
        FUZZ_CHECK(got == (valid ? out : def));
        FUZZ_CHECK(got >= min && got <= max);
        break;
    }
    case 1: {
        int out, def = (int)(sel / 3) & 1;
        int got = elmon_env_bool(name, def);
        valid = n && elmon_parse_bool(v, &out) == 0;
        FUZZ_CHECK(got == (valid ? out : def));
        break;
    }
    default: {
        int def = (int)(sel / 3) % 4;
        int got = elmon_env_enum(name, choices, def);
        valid = n && elmon_parse_enum(v, choices) >= 0;
        FUZZ_CHECK(got == (valid ? elmon_parse_enum(v, choices) : def));
        FUZZ_CHECK(got >= 0 && got < 4);
        break;
    }
    }
    size_t len;
    const char *log = fuzz_log_take(&len);
    fuzz_check_log_text(log, len, 1);
    if (valid || n == 0) {
        FUZZ_CHECK(len == 0);
    } else {
        FUZZ_CHECK(len > 0 && memchr(log, '\n', len) == log + len - 1);   /* one line */
        FUZZ_CHECK(strstr(log, "elmon: warning: ELMON_FUZZ_MS='") == log);
    }
    fuzz_environ(NULL, 0);
    free(entry);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    char *v = fuzz_strndup(data + 1, size - 1);
    check_uint(v, ranges[sel % 6].min, ranges[sel % 6].max);
    check_bool(v);
    check_enum(v);
    check_readers(v, sel);
    free(v);
    return 0;
}
