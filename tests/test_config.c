/*
 * Environment parsing: good, bad, empty and huge values, and the one
 * warning each bad value earns.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "config.h"
#include "log.h"
#include "outfile.h"
#include "support.h"

START_TEST(parse_uint_table)
{
    static const struct {
        const char *s;
        uint64_t min, max;
        int rc;
        uint64_t v;
    } t[] = {
        {"50", 1, 100, 0, 50},
        {"1", 1, 100, 0, 1},
        {"100", 1, 100, 0, 100},
        {"0", 1, 100, -ERANGE, 0},
        {"101", 1, 100, -ERANGE, 0},
        {"abc", 1, 100, -EINVAL, 0},
        {"", 1, 100, -EINVAL, 0},
        {"-5", 1, 100, -EINVAL, 0},
        {"+5", 1, 100, -EINVAL, 0},
        {" 5", 1, 100, -EINVAL, 0},
        {"5ms", 1, 100, -EINVAL, 0},
        {"1e3", 1, 100000, -EINVAL, 0},
        {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", 0, UINT64_MAX, -ERANGE, 0},
        {"99999999999999999999999999", 0, UINT64_MAX, -ERANGE, 0},
    };
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t v = 0;
        int rc = elmon_parse_uint(t[i].s, t[i].min, t[i].max, &v);
        ck_assert_msg(rc == t[i].rc, "'%s': rc %d, want %d", t[i].s, rc, t[i].rc);
        if (rc == 0)
            ck_assert_uint_eq(v, t[i].v);
    }
    ck_assert_int_eq(elmon_parse_uint(NULL, 0, 1, &(uint64_t){0}), -EINVAL);
}
END_TEST

START_TEST(parse_bool_table)
{
    const char *yes[] = {"1", "true", "TRUE", "yes", "On"};
    const char *no[] = {"0", "false", "False", "no", "off"};
    const char *bad[] = {"2", "", "y", "truee", "nope"};
    for (int i = 0; i < 5; i++) {
        int v = -1;
        ck_assert_int_eq(elmon_parse_bool(yes[i], &v), 0);
        ck_assert_int_eq(v, 1);
        ck_assert_int_eq(elmon_parse_bool(no[i], &v), 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(elmon_parse_bool(bad[i], &v), -EINVAL);
    }
}
END_TEST

/* Warnings go to ELMON_LOG; point it at a file and count lines. */
static char logpath[256];

static void log_setup(void)
{
    snprintf(logpath, sizeof logpath, "/tmp/elmon-test-config-%d.log", getpid());
    unlink(logpath);
    setenv("ELMON_LOG", logpath, 1);
    elmon_log_open();
}

static void log_teardown(void)
{
    unlink(logpath);
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(env_good_bad_empty)
{
    setenv("ELMON_BLOCK_MS", "75", 1);
    ck_assert_uint_eq(elmon_env_uint("ELMON_BLOCK_MS", 50, 1, 3600000, "ms"), 75);
    setenv("ELMON_BLOCK_MS", "", 1);
    ck_assert_uint_eq(elmon_env_uint("ELMON_BLOCK_MS", 50, 1, 3600000, "ms"), 50);
    ck_assert_int_eq(count_lines(slurp(logpath)), 0);

    setenv("ELMON_BLOCK_MS", "abc", 1);
    ck_assert_uint_eq(elmon_env_uint("ELMON_BLOCK_MS", 50, 1, 3600000, "ms"), 50);
    const char *log = slurp(logpath);
    ck_assert_int_eq(count_lines(log), 1);
    ck_assert_ptr_nonnull(strstr(log, "ELMON_BLOCK_MS='abc'"));
    ck_assert_ptr_nonnull(strstr(log, "using 50"));

    setenv("ELMON_BLOCK_MS", "-5", 1);
    ck_assert_uint_eq(elmon_env_uint("ELMON_BLOCK_MS", 50, 1, 3600000, "ms"), 50);
    ck_assert_int_eq(count_lines(slurp(logpath)), 2);
}
END_TEST

START_TEST(env_huge_and_binary_value)
{
    size_t n = 1 << 20;
    char *huge = malloc(n + 1);
    memset(huge, '7', n);
    huge[n] = 0;
    setenv("ELMON_CRITICAL_MS", huge, 1);
    ck_assert_uint_eq(elmon_env_uint("ELMON_CRITICAL_MS", 500, 1, 3600000, "ms"), 500);
    const char *log = slurp(logpath);
    ck_assert_int_eq(count_lines(log), 1);
    ck_assert_msg(strlen(log) < 400, "the warning quotes at most a prefix of the value");
    ck_assert_ptr_nonnull(strstr(log, "..."));
    free(huge);

    setenv("ELMON_VERBOSE", "\xff\x01yes", 1);
    ck_assert_int_eq(elmon_env_bool("ELMON_VERBOSE", 0), 0);
    log = slurp(logpath);
    ck_assert_ptr_nonnull(strstr(log, "\\xff\\x01yes"));
}
END_TEST

START_TEST(config_load_defaults_and_order)
{
    unsetenv("ELMON_BLOCK_MS");
    setenv("ELMON_CRITICAL_MS", "20", 1);
    elmon_config_load();
    ck_assert_uint_eq(elmon_opt.block_ms, 50);
    ck_assert_uint_eq(elmon_opt.critical_ms, 50);
    ck_assert_ptr_nonnull(strstr(slurp(logpath), "ELMON_CRITICAL_MS='20' is below ELMON_BLOCK_MS"));
}
END_TEST

START_TEST(enum_warns_with_choices)
{
    static const char *const modes[] = {"auto", "tsc", "monotonic", 0};
    setenv("ELMON_CLOCK", "MONOTONIC", 1);
    ck_assert_int_eq(elmon_env_enum("ELMON_CLOCK", modes, 0), 2);
    setenv("ELMON_CLOCK", "hpet", 1);
    ck_assert_int_eq(elmon_env_enum("ELMON_CLOCK", modes, 0), 0);
    ck_assert_ptr_nonnull(strstr(slurp(logpath), "is not one of auto, tsc, monotonic; using auto"));
}
END_TEST

START_TEST(expand_path)
{
    char out[64];
    ck_assert_int_eq(elmon_expand_path("/tmp/ev.%p.jsonl", 42, out, sizeof out), 0);
    ck_assert_str_eq(out, "/tmp/ev.42.jsonl");
    ck_assert_int_eq(elmon_expand_path("a%%b", 1, out, sizeof out), 0);
    ck_assert_str_eq(out, "a%b");
    ck_assert_int_eq(elmon_expand_path("a%x", 1, out, sizeof out), -EINVAL);
    ck_assert_int_eq(elmon_expand_path("", 1, out, sizeof out), -EINVAL);
    ck_assert_int_eq(elmon_expand_path("%p%p%p%p%p%p%p%p%p%p", 1234567, out, 16), -ENAMETOOLONG);
}
END_TEST

START_TEST(open_out_is_safe)
{
    char dir[] = "/tmp/elmon-outfile-XXXXXX", path[256], res[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/new", dir);
    int fd = elmon_open_out(path, res, sizeof res);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);
    /* Reopening our own file appends. */
    fd = elmon_open_out(path, res, sizeof res);
    ck_assert_int_ge(fd, 0);
    close(fd);
    /* A symlink planted at the path is not followed. */
    char link[256], target[256];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(elmon_open_out(link, res, sizeof res), -ELOOP);
    ck_assert_int_eq(access(target, F_OK), -1);
    /* A file others can read or write is refused (as root, a mistyped
     * path must not append to a system file). */
    char shared[256];
    snprintf(shared, sizeof shared, "%s/shared", dir);
    close(open(shared, O_CREAT | O_WRONLY, 0600));
    chmod(shared, 0666);
    ck_assert_int_eq(elmon_open_out(shared, res, sizeof res), -EPERM);
    /* A FIFO planted at the path is refused without blocking. */
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_lt(elmon_open_out(fifo, res, sizeof res), 0);
    unlink(fifo);
    unlink(shared);
    unlink(link);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *pure = tcase_create("parse");
    tcase_add_test(pure, parse_uint_table);
    tcase_add_test(pure, parse_bool_table);
    tcase_add_test(pure, expand_path);
    tcase_add_test(pure, open_out_is_safe);
    suite_add_tcase(s, pure);
    TCase *env = tcase_create("env");
    tcase_add_checked_fixture(env, log_setup, log_teardown);
    tcase_add_test(env, env_good_bad_empty);
    tcase_add_test(env, env_huge_and_binary_value);
    tcase_add_test(env, config_load_defaults_and_order);
    tcase_add_test(env, enum_warns_with_choices);
    suite_add_tcase(s, env);
    return run_suite(s);
}
