/*
 * core/got.c: the GOT slots of a loaded object redirected to a target and
 * put back, through a read-only (full RELRO) page; the object holding the
 * targets left alone.  The library is tests/fixtures/got_dso.c.  Late
 * passes (objects loaded after the attach, while the loader may still be
 * relocating one) on tests/fixtures/got_lazy.c, loaded with dlopen: a PLT
 * stub or the symbol's definition replaced; an unrelocated slot, a RELRO
 * page not yet protected and another interposer's binding left alone.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
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

static const struct elmon_got_target to_fake[] = {{"poll", (void *)fake_poll, NULL}};

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
    static const struct elmon_got_target other[] = {{"epoll_wait", (void *)fake_poll, NULL}};
    void **slot = elmon_got_slot("poll", (void *)got_dso_poll);
    void *was = *slot;
    elmon_got_redirect(other, 1, (void *)own_poll, NULL);
    ck_assert_ptr_eq(*slot, was);
    ck_assert_int_eq(got_dso_poll(), 0);
    elmon_got_restore();
}
END_TEST

static void *lazy_open(int (**call)(void), void ***slot)
{
    void *h = dlopen(GOT_LAZY_PATH, RTLD_LAZY | RTLD_LOCAL);
    ck_assert_msg(h, "%s", dlerror());
    *call = (int (*)(void))dlsym(h, "got_lazy_poll");
    ck_assert_ptr_nonnull(*call);
    *slot = elmon_got_slot("poll", (void *)*call);
    ck_assert_ptr_nonnull(*slot);
    return h;
}

/* Not called yet: the slot holds the PLT stub, inside got_lazy itself. */
START_TEST(late_pass_over_plt_stub)
{
    int (*call)(void);
    void **slot;
    lazy_open(&call, &slot);
    void *stub = *slot;
    Dl_info in;
    ck_assert(dladdr(stub, &in) && strstr(in.dli_fname, "got_lazy"));
    struct elmon_got_target t = {"poll", (void *)fake_poll, dlsym(RTLD_DEFAULT, "poll")};
    long pending = -1;
    ck_assert_int_ge(elmon_got_redirect_late(&t, 1, (void *)own_poll, &pending), 1);
    ck_assert_int_eq(pending, 0);
    ck_assert_ptr_eq(*slot, (void *)fake_poll);
    ck_assert_int_eq(call(), 4242);
    ck_assert_int_ge(elmon_got_restore(), 1);
    ck_assert_ptr_eq(*slot, stub);
    ck_assert_int_eq(call(), 0);   /* resolved now, through the stub */
    /* Resolved: the slot holds the definition, which a late pass takes. */
    ck_assert_ptr_eq(*slot, t.from);
    ck_assert_int_ge(elmon_got_redirect_late(&t, 1, (void *)own_poll, &pending), 1);
    ck_assert_int_eq(call(), 4242);
    elmon_got_restore();
}
END_TEST

/* What the loader has not finished is left for a later pass; what
 * another interposer bound is left alone for good. */
START_TEST(late_pass_leaves_loader_work)
{
    int (*call)(void);
    void **slot;
    lazy_open(&call, &slot);
    void *stub = *slot;
    struct elmon_got_target t = {"poll", (void *)fake_poll, dlsym(RTLD_DEFAULT, "poll")};
    long pending = 0;
    /* An unrelocated lazy slot holds the stub's link-time address. */
    Dl_info in;
    ck_assert(dladdr(stub, &in));
    void *offset = (void *)((uintptr_t)stub - (uintptr_t)in.dli_fbase);
    *slot = offset;
    elmon_got_redirect_late(&t, 1, (void *)own_poll, &pending);
    ck_assert_ptr_eq(*slot, offset);
    ck_assert_int_ge(pending, 1);
    /* Bound to someone else's poll. */
    *slot = (void *)own_poll;
    pending = 0;
    elmon_got_redirect_late(&t, 1, (void *)got_dso_poll, &pending);
    ck_assert_ptr_eq(*slot, (void *)own_poll);
    *slot = stub;
    elmon_got_restore();
    /* got_dso's slot on a RELRO page the loader has not protected yet. */
    void **relro = elmon_got_slot("poll", (void *)got_dso_poll);
    long page = sysconf(_SC_PAGESIZE);
    void *pg = (void *)((uintptr_t)relro & ~(uintptr_t)(page - 1));
    ck_assert_int_eq(mprotect(pg, (size_t)page, PROT_READ | PROT_WRITE), 0);
    pending = 0;
    elmon_got_redirect_late(&t, 1, (void *)own_poll, &pending);
    ck_assert_ptr_eq(*relro, t.from);
    ck_assert_int_ge(pending, 1);
    char perms[5];
    perms_of(relro, perms);
    ck_assert_str_eq(perms, "rw-p");   /* as the loader left it */
    /* Protected: the loader is done, and the slot is taken. */
    ck_assert_int_eq(mprotect(pg, (size_t)page, PROT_READ), 0);
    elmon_got_redirect_late(&t, 1, (void *)own_poll, &pending);
    ck_assert_ptr_eq(*relro, (void *)fake_poll);
    perms_of(relro, perms);
    ck_assert_str_eq(perms, "r--p");
    elmon_got_restore();
    ck_assert_ptr_eq(*relro, t.from);
}
END_TEST

/* After the restore that ends an attach, no pass stores again. */
START_TEST(no_pass_after_close)
{
    int (*call)(void);
    void **slot;
    lazy_open(&call, &slot);
    struct elmon_got_target t = {"poll", (void *)fake_poll, dlsym(RTLD_DEFAULT, "poll")};
    elmon_got_close();
    elmon_got_restore();
    ck_assert_int_eq(elmon_got_redirect_late(&t, 1, (void *)own_poll, NULL), 0);
    ck_assert_int_eq(elmon_got_redirect(&t, 1, (void *)own_poll, NULL), 0);
    ck_assert_int_eq(call(), 0);
}
END_TEST

/* A slot of an object unloaded since it was changed is dropped by the
 * restore, never written (its page is gone). */
START_TEST(restore_skips_unloaded)
{
    int (*call)(void);
    void **slot;
    void *h = lazy_open(&call, &slot);
    struct elmon_got_target t = {"poll", (void *)fake_poll, dlsym(RTLD_DEFAULT, "poll")};
    elmon_got_redirect_late(&t, 1, (void *)own_poll, NULL);
    ck_assert_ptr_eq(*slot, (void *)fake_poll);
    ck_assert_int_eq(dlclose(h), 0);
    Dl_info in;
    ck_assert_msg(!dladdr((void *)slot, &in) || !strstr(in.dli_fname, "got_lazy"), "got_lazy still loaded");
    elmon_got_restore();   /* would fault on the unmapped slot */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("got");
    TCase *tc = tcase_create("got");
    tcase_add_test(tc, redirect_through_relro_and_back);
    tcase_add_test(tc, unnamed_symbols_untouched);
    tcase_add_test(tc, late_pass_over_plt_stub);
    tcase_add_test(tc, late_pass_leaves_loader_work);
    tcase_add_test(tc, no_pass_after_close);
    tcase_add_test(tc, restore_skips_unloaded);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
