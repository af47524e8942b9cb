/*
 * What the libFuzzer targets share (fuzz_support.c): an invariant check
 * that aborts with a message (libFuzzer then saves the input), a private
 * environment built from the input, the warnings libelmon logged during
 * one run, and an independent UTF-8 validator to hold libelmon's against.
 */
#ifndef ELMON_FUZZ_H
#define ELMON_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_CHECK(cond)                                                   \
    do {                                                                   \
        if (!(cond))                                                       \
            fuzz_fail(__FILE__, __LINE__, #cond);                          \
    } while (0)
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* A NUL-terminated copy of data (malloc). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Replace environ with these NAME=value strings (n of them, each owned by
 * the caller until the next call); getenv sees only them. */
void fuzz_environ(char **entries, size_t n);

/* Route libelmon's human log (ELMON_LOG) to a private file; call once.
 * fuzz_log_take() returns what was logged since the previous call
 * (NUL-terminated, static) and empties the file. */
void fuzz_log_start(void);
const char *fuzz_log_take(size_t *len);
/* Every line of a log text: whole, "elmon: " first, and no control
 * character, so no outside byte can break or forge a line or drive a
 * terminal.  Warnings must hold printable ASCII only (ascii). */
void fuzz_check_log_text(const char *text, size_t len, int ascii);

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. */
size_t fuzz_utf8_seq(const unsigned char *s, size_t avail);
int fuzz_utf8_valid(const char *s, size_t n);

#endif
