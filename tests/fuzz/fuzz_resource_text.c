/*
 * The files the OTLP resource is read from (exporter/resource.c):
 * /proc/self/cgroup and mountinfo (otlp_container_id), /etc/os-release
 * (os_pretty_name), /proc/self/cmdline (cmdline_args), uname's machine
 * (otlp_host_arch).
 *
 * Checked: a container id is 64 lowercase hex digits found in the text;
 * PRETTY_NAME is one line of the text and fits its buffer; command
 * arguments are the NUL-separated strings of exactly the bytes given,
 * also when the last has no NUL (a title set over argv, or a cut read).
 *
 * Input: one selector byte, then the file's bytes.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "resource.h"

static void check_container(const char *text)
{
    char out[65];
    memset(out, 'X', sizeof out);
    if (otlp_container_id(text, out) < 0) {
        FUZZ_CHECK(out[0] == 'X');
        return;
    }
    FUZZ_CHECK(out[64] == 0 && strspn(out, "0123456789abcdef") == 64);
    FUZZ_CHECK(strstr(text, out));
}

static void check_pretty(const char *text, size_t n)
{
    char *out = malloc(n ? n : 1);
    FUZZ_CHECK(out);
    if (n)
        out[0] = 0;
    os_pretty_name(text, out, n);
    if (n) {
        size_t len = strnlen(out, n);
        FUZZ_CHECK(len < n && !strchr(out, '\n'));
        FUZZ_CHECK(strstr(text, out));
    }
    free(out);
}

static void check_cmdline(const uint8_t *data, size_t size)
{
    /* Exactly the bytes read, no terminator: reading past them is a bug. */
    char *cmd = malloc(size ? size : 1);
    FUZZ_CHECK(cmd);
    memcpy(cmd, data, size);
    struct otlp_resource r = {0};
    cmdline_args(cmd, size, &r);
    size_t at = 0;
    for (size_t i = 0; i < r.n_args; i++) {
        const char *a = r.command_args[i];
        FUZZ_CHECK(a && *a);
        size_t k = strlen(a);
        FUZZ_CHECK(at + k <= size && memcmp(cmd + at, a, k) == 0);
        FUZZ_CHECK(at + k == size || cmd[at + k] == 0);
        at += k + 1;
    }
    /* It stops at the end or at an empty argument, nowhere else. */
    FUZZ_CHECK(at >= size || cmd[at] == 0);
    otlp_resource_free(&r);
    free(cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    char *text = fuzz_strndup(data + 1, size - 1);
    switch (sel % 4) {
    case 0:
        check_container(text);
        break;
    case 1:
        check_pretty(text, sel / 4 * 5);
        check_pretty(text, 256);
        break;
    case 2:
        check_cmdline(data + 1, size - 1);
        break;
    default: {
        const char *a = otlp_host_arch(text);
        FUZZ_CHECK(a == text || strlen(a) < 8);
        break;
    }
    }
    free(text);
    return 0;
}
