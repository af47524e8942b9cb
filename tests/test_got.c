/*
 * core/got.c: the GOT slots of a loaded object redirected to a target and
 * put back, through a read-only (full RELRO) page; the object holding the
 * targets left alone.  The library is tests/fixtures/got_dso.c.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "got.h"
#include "support.h"

int got_dso_poll(void);
void *got_dso_poll_address(void);

static int fake_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    (void)fds, (void)n, (void)timeout;
    return 4242;
}

/* The test program's own call, through its own PLT. */
static __attribute__((noinline)) int own_poll(void)
{
    return poll(0, 0, 0);
}

/* "r--p"-style permissions of the mapping holding p. */
static void perms_of(const void *p, char out[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    strcpy(out, "?");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            strcpy(out, perms);
            break;
        }
    }
    if (f)
        fclose(f);
}

static const struct elmon_got_target to_fake[] = {{"poll", (void *)fake_poll}};

START_TEST(redirect_through_relro_and_back)
{
    void *real = dlsym(RTLD_DEFAULT, "poll");
    ck_assert_ptr_nonnull(real);
    ck_assert_int_eq(got_dso_poll(), 0);
    void **slot = elmon_got_slot("poll", (void *)got_dso_poll);
    ck_assert_ptr_nonnull(slot);
    char before[5], after[5];
    perms_of(slot, before);
    ck_assert_str_eq(before, "r--p");   /* full RELRO */

    long failed = -1;
    long n = elmon_got_redirect(to_fake, 1, (void *)own_poll, &failed);
    ck_assert_int_eq(failed, 0);
    /* The DSO's one slot for poll: a GLOB_DAT, which its PLT call reads
     * too (ld shares the slot when the address is taken).  In a sanitizer
     * build the runtime's own objects hold poll slots as well (3 in all
     * under ASan); the DSO's is checked through its calls below. */
    if (TESTS_SANITIZED)
        ck_assert_int_ge(n, 1);
    else
        ck_assert_int_eq(n, 1);
    ck_assert_int_eq(got_dso_poll(), 4242);
    ck_assert_ptr_eq(got_dso_poll_address(), (void *)fake_poll);
    perms_of(slot, after);
    ck_assert_str_eq(after, "r--p");   /* read-only again */
    /* The object holding the targets (here the test program) is skipped. */
    ck_assert_int_eq(own_poll(), 0);
    /* Again: nothing left to change. */
    ck_assert_int_eq(elmon_got_redirect(to_fake, 1, (void *)own_poll, NULL), 0);

    ck_assert_int_ge(elmon_got_restore(), n);
    ck_assert_int_eq(got_dso_poll(), 0);
    ck_assert_ptr_eq(got_dso_poll_address(), real);
    perms_of(slot, after);
    ck_assert_str_eq(after, "r--p");
    ck_assert_int_eq(elmon_got_restore(), 0);
}
END_TEST

START_TEST(unnamed_symbols_untouched)
{
    static const struct elmon_got_target other[] = {{"epoll_wait", (void *)fake_poll}};
    void **slot = elmon_got_slot("poll", (void *)got_dso_poll);
    void *was = *slot;
    elmon_got_redirect(other, 1, (void *)own_poll, NULL);
    ck_assert_ptr_eq(*slot, was);
    ck_assert_int_eq(got_dso_poll(), 0);
    elmon_got_restore();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("got");
    TCase *tc = tcase_create("got");
    tcase_add_test(tc, redirect_through_relro_and_back);
    tcase_add_test(tc, unnamed_symbols_untouched);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
