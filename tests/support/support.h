/*
 * Shared helpers for libelmon's Check suites: running a real program under
 * LD_PRELOAD with a deadline, and reading JSON Lines event files.
 *
 * Paths come from the build (see tests/core.cmake):
 *   ELMON_SO        the built libelmon.so
 *   ELMON_BIN_DIR   where fixtures are built
 *   ELMON_SRC_DIR   the source tree
 */
#ifndef ELMON_TEST_SUPPORT_H
#define ELMON_TEST_SUPPORT_H

#include <check.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

struct run {
    int status;          /* waitpid status */
    int timed_out;       /* killed at the deadline */
    char *out, *err;     /* whole stdout and stderr, NUL-terminated (malloc) */
    double wall_ms;
};

/* Run argv with the current environment plus env (NULL-terminated
 * "NAME=value" strings; "NAME=" with nothing after unsets NAME) and, when
 * preload, LD_PRELOAD=ELMON_SO.  Killed (SIGKILL, whole process group)
 * after timeout_ms.  Returns 0, or -1 if it could not start. */
int run_prog(char *const argv[], char *const env[], int preload, int timeout_ms, struct run *r);
/* run_prog, no preload and no extra env, of head (NULL-terminated) followed
 * by the char * arguments of ap up to a NULL (at most 63 in all). */
int run_vargs(char *const head[], int timeout_ms, struct run *r, va_list ap);
void run_free(struct run *r);
/* Start in the background; returns the pid (its own process group). */
pid_t spawn_prog(char *const argv[], char *const env[], int preload, const char *out_path);
/* SIGTERM, then SIGKILL after grace_ms; returns the wait status. */
int stop_prog(pid_t pid, int grace_ms);

/* Run every test of s; the exit status for main: 0 when all passed, else 1. */
int run_suite(Suite *s);

/* A fresh private directory under $TMPDIR (or /tmp); malloc'd path. */
char *make_tmpdir(const char *tag);
/* A copy of file in dir, mode 0755 (malloc'd path): a program run as
 * another user cannot reach the build tree when the checkout sits in a 0700
 * directory (mktemp -d), so it gets libelmon.so and its scripts from here. */
char *copy_for_others(const char *file, const char *dir);
/* Every line of a file (malloc'd array, NULL-terminated); NULL if missing. */
char **read_lines(const char *path, int *n);
void free_lines(char **lines);
/* Files in dir whose names start with prefix, sorted (malloc'd). */
char **list_files(const char *dir, const char *prefix, int *n);
/* Every line of every file in dir whose name starts with prefix, in file
 * order (NULL-terminated, malloc'd); n_files may be NULL. */
char **lines_of(const char *dir, const char *prefix, int *n_files);
/* rm -rf dir (a directory make_tmpdir made), after giving its owner back
 * rwx on everything in it (a test may leave parts read-only). */
void remove_tree(const char *dir);

/* Minimal JSON field access for one flat-ish record line: the raw value of
 * the first "key": at any depth (string without quotes, unescaped only for
 * \" and \\), or NULL.  Returns a pointer into a static buffer. */
const char *json_get(const char *line, const char *key);
double json_num(const char *line, const char *key);   /* NaN when absent */
int json_is(const char *line, const char *key, const char *value);

/* Lines of the events files in dir (all files), filtered by "type". */
int count_type(char **lines, const char *type);
/* block records whose "end" is end. */
int count_blocks_ended(char **lines, const char *end);
/* Every block_begin in lines is followed by exactly one block of the same
 * pid, tid and turn, with a duration no shorter; no span has two blocks;
 * every pid with records has a summary.  NULL when so, else what is wrong
 * (a static string). */
const char *span_records_complete(char **lines);

/* A free TCP port on 127.0.0.1. */
int free_port(void);
/* Wait until 127.0.0.1:port accepts a connection; 0 or -1 after timeout. */
int wait_port(int port, int timeout_ms);
/* 1 when the program is on PATH (or an absolute path exists). */
int have_prog(const char *name);

/* A CPython on this machine: Debian's /usr/bin/python3, then each build
 * under `pyenv root`/versions (its bin/python3). */
struct cpython {
    char path[600];     /* its python3 */
    char prefix[600];   /* where its include/ and lib/ are */
    int minor;          /* 3.minor; -1: no CPython 3 answered */
};
/* At most max of them into out; says on stderr what it skipped and why. */
int cpythons(struct cpython *out, int max);
/* Unset every environment variable whose name starts with prefix. */
void unset_prefix(const char *prefix);
/* VmRSS of a live process in kB, or -1. */
long rss_kb(pid_t pid);

double mono_ms(void);

/* 1 in a build with ASan or TSan (gcc's macros, clang's __has_feature):
 * their runtimes reserve shadow memory and grow RSS by design, so bounds
 * on memory hold in the plain stage only. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TESTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TESTS_SANITIZED 1
#endif
#endif
#ifndef TESTS_SANITIZED
#define TESTS_SANITIZED 0
#endif

/* printf into a fresh string (malloc'd); NULL if out of memory. */
char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The local OTLP receiver (tests/otlp-receiver/receiver.js): decodes with
 * the official OpenTelemetry protos and dumps JSON Lines ("rec":"request",
 * "point", "log").  mode: "ok", "blackhole", "garbage", "partial",
 * "http:STATUS[:RETRY_AFTER]", "grpc:CODE", "slow:MS"; fail_first < 0 for
 * always; tls "CERT,KEY", "CERT,KEY,CA" (a client certificate from CA
 * required) or NULL.  Files go to dir.  0, or -1 if it did not start (then
 * log_path names its log). */
struct otlp_receiver {
    pid_t pid;
    int http, grpc;
    char dump[512], ports[512], log_path[512];
};
int receiver_start(struct otlp_receiver *r, const char *dir, const char *mode, int fail_first, const char *tls);
/* Stop it and return every line it dumped (NULL if none). */
char **receiver_stop(struct otlp_receiver *r);

/* Ended spans in a human log (text, not a path): lines "loop blocked N.N ms"
 * with N at least min_ms.  A span's length is the fixture's block plus
 * whatever the machine added (strace, a loaded CI host), so tests match on
 * a floor, never on the leading digits. */
int log_spans_min_ms(const char *log, double min_ms);

/* A byte a terminal would act on: C0 but newline, DEL, or C1 as UTF-8
 * (U+0080-U+009F).  The offset of the first in s, or -1. */
long raw_control_at(const char *s);
#define ck_assert_no_raw_control(what, s)                                                                   \
    do {                                                                                                    \
        long at_ = raw_control_at(s);                                                                       \
        ck_assert_msg(at_ < 0, "%s: raw control byte 0x%02x at offset %ld in:\n%.*s", what,                 \
                      at_ < 0 ? 0 : (unsigned char)(s)[at_], at_, (int)(at_ < 0 ? 0 : at_ + 40), s);        \
    } while (0)

#endif
