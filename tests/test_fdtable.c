/*
 * The descriptor table (preload/hot/fdtable.c) and loop identity
 * (preload/hot/loopid.c), driven the way wrap.c's wrappers drive them but
 * without the wrappers: the count of descriptors per epoll instance across
 * add, del and close, a closed instance's number reused, descriptors in
 * several sets and the overflow table, close_range, numbers out of range;
 * the same counts against the kernel's own (/proc/self/fdinfo) over a
 * random run of real epoll_ctl, close and dup2 calls; and the loop rules:
 * which waits begin a new loop, and the end of a loop when its epoll
 * descriptor is closed.
 *
 * The table is process-wide: each case runs in a child of its own
 * (CK_FORK), so each starts from an empty one.  Unit cases use descriptor
 * numbers that are never opened (the table makes no system call).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "clock.h"
#include "fdtable.h"
#include "loop.h"
#include "loopid.h"
#include "support.h"

#define ADD(ep, fd) elmon_fd_epoll_ctl((ep), EPOLL_CTL_ADD, (fd))
#define DEL(ep, fd) elmon_fd_epoll_ctl((ep), EPOLL_CTL_DEL, (fd))

/* --- counts ----------------------------------------------------------- */

START_TEST(add_del_close_counts)
{
    enum { E = 1000 };
    ck_assert(!elmon_fd_known(E));
    elmon_fd_epoll_created(E);
    ck_assert(elmon_fd_known(E));
    ck_assert(elmon_fd_is_epoll(E));
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    ADD(E, 1020);
    ADD(E, 1021);
    ADD(E, 1022);
    ck_assert_int_eq(elmon_epoll_fds(E), 3);
    ck_assert(elmon_fd_known(1021));
    ck_assert(!elmon_fd_is_epoll(1021));
    DEL(E, 1021);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
    /* A DEL of what is not in the set (the kernel would say ENOENT) and a
     * close of a descriptor in no set change nothing. */
    DEL(E, 1021);
    DEL(E, 1099);
    elmon_fd_closing(1023);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
    /* A member closed leaves the set; MOD is not a change of membership. */
    elmon_fd_closing(1020);
    ck_assert(!elmon_fd_known(1020));
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_epoll_ctl(E, EPOLL_CTL_MOD, 1022);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    ADD(E, 1021);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
    /* The kernel took an ADD of a descriptor counted already: its earlier
     * registration went with a close libelmon did not see. */
    ADD(E, 1021);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
    /* An epoll instance may be a member of another's set. */
    elmon_fd_epoll_created(1001);
    ADD(E, 1001);
    ck_assert_int_eq(elmon_epoll_fds(E), 3);
    ck_assert(elmon_fd_is_epoll(1001));
    elmon_fd_closing(1001);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
}
END_TEST

START_TEST(closed_instance_number_reused)
{
    enum { E = 1100 };
    elmon_fd_epoll_created(E);
    ADD(E, 1110);
    ADD(E, 1111);
    elmon_fd_closing(E);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    ck_assert(!elmon_fd_is_epoll(E));
    ck_assert(!elmon_fd_known(E));
    /* A new instance takes the number: the old one's members are not its
     * members, and their closes do not count it down. */
    elmon_fd_epoll_created(E);
    ADD(E, 1112);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_closing(1110);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    DEL(E, 1111);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    /* An old member added to the new instance counts once. */
    ADD(E, 1111);
    ck_assert_int_eq(elmon_epoll_fds(E), 2);
    elmon_fd_closing(1111);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    /* The number taken by an instance the wrappers did not see made
     * (before libelmon was active, or by a raw system call): the closed
     * instance's members are still not its members. */
    elmon_fd_closing(E);
    ADD(E, 1113);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_closing(1112);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_closing(1113);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    ADD(E, 1112);
    /* An instance created on a number whose close was never seen starts
     * empty too. */
    elmon_fd_epoll_created(E);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    elmon_fd_closing(1112);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
}
END_TEST

START_TEST(descriptor_in_several_sets)
{
    enum { E1 = 1200, E2 = 1201, E3 = 1202, FD = 1210 };
    elmon_fd_epoll_created(E1);
    elmon_fd_epoll_created(E2);
    elmon_fd_epoll_created(E3);
    ADD(E1, FD);
    ADD(E2, FD);
    ADD(E3, FD);
    ck_assert_int_eq(elmon_epoll_fds(E1), 1);
    ck_assert_int_eq(elmon_epoll_fds(E2), 1);
    ck_assert_int_eq(elmon_epoll_fds(E3), 1);
    ck_assert_uint_eq(elmon_fd_multi_used(), 2);
    /* Out of one set (an overflow entry), then out of the first. */
    DEL(E2, FD);
    ck_assert_int_eq(elmon_epoll_fds(E2), 0);
    ck_assert_int_eq(elmon_epoll_fds(E1), 1);
    ck_assert_uint_eq(elmon_fd_multi_used(), 1);
    DEL(E1, FD);
    ck_assert_int_eq(elmon_epoll_fds(E1), 0);
    ck_assert_int_eq(elmon_epoll_fds(E3), 1);
    ADD(E1, FD);
    ADD(E2, FD);
    ck_assert_int_eq(elmon_epoll_fds(E1) + elmon_epoll_fds(E2) + elmon_epoll_fds(E3), 3);
    /* Closed: out of every set. */
    elmon_fd_closing(FD);
    ck_assert_int_eq(elmon_epoll_fds(E1), 0);
    ck_assert_int_eq(elmon_epoll_fds(E2), 0);
    ck_assert_int_eq(elmon_epoll_fds(E3), 0);
    ck_assert_uint_eq(elmon_fd_multi_used(), 0);
    /* A second set closed before its member: the member's later close
     * does not count down the instance that took the number. */
    ADD(E1, FD);
    ADD(E2, FD);
    elmon_fd_closing(E2);
    elmon_fd_epoll_created(E2);
    ADD(E2, 1211);
    elmon_fd_closing(FD);
    ck_assert_int_eq(elmon_epoll_fds(E2), 1);
    ck_assert_int_eq(elmon_epoll_fds(E1), 0);
    ck_assert_uint_eq(elmon_fd_multi_used(), 0);
}
END_TEST

START_TEST(overflow_table_full)
{
    /* One descriptor in 1 + 1024 + 1 sets: the first in its word, 1024 in
     * the overflow table, the last one not counted at all (never counted
     * wrong). */
    enum { FD = 5, FIRST = 2000, SETS = 1026 };
    for (int i = 0; i < SETS; i++) {
        elmon_fd_epoll_created(FIRST + i);
        ADD(FIRST + i, FD);
    }
    ck_assert_uint_eq(elmon_fd_multi_used(), 1024);
    ck_assert_uint_eq(elmon_fd_multi_lost(), 1);
    int sum = 0;
    for (int i = 0; i < SETS; i++)
        sum += elmon_epoll_fds(FIRST + i);
    ck_assert_int_eq(sum, SETS - 1);
    ck_assert_int_eq(elmon_epoll_fds(FIRST + SETS - 1), 0);
    elmon_fd_closing(FD);
    ck_assert_uint_eq(elmon_fd_multi_used(), 0);
    for (int i = 0; i < SETS; i++)
        ck_assert_int_eq(elmon_epoll_fds(FIRST + i), 0);
}
END_TEST

START_TEST(close_range_drops_members)
{
    enum { E = 1300 };
    elmon_fd_epoll_created(E);
    for (int fd = 1310; fd < 1320; fd++)
        ADD(E, fd);
    ck_assert_int_eq(elmon_epoll_fds(E), 10);
    elmon_fds_closing(1312, 1315);
    ck_assert_int_eq(elmon_epoll_fds(E), 6);
    ck_assert(!elmon_fd_known(1313));
    ck_assert(elmon_fd_known(1316));
    /* closefrom(1317): everything up to the top. */
    elmon_fds_closing(1317, ~0u);
    ck_assert_int_eq(elmon_epoll_fds(E), 3);
    ck_assert(!elmon_fd_known(1319));
    /* A range over the instance itself ends it. */
    elmon_fds_closing(0, ~0u);
    ck_assert(!elmon_fd_is_epoll(E));
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    ck_assert(!elmon_fd_known(1310));
}
END_TEST

START_TEST(numbers_out_of_range)
{
    enum { E = 1400 };
    elmon_fd_epoll_created(E);
    ADD(E, ELMON_FD_TABLE);
    ADD(E, ELMON_FD_TABLE + 100);
    ADD(E, -1);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
    ADD(E, ELMON_FD_TABLE - 1);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_closing(-1);
    elmon_fd_closing(ELMON_FD_TABLE);
    DEL(E, ELMON_FD_TABLE);
    ck_assert_int_eq(elmon_epoll_fds(E), 1);
    elmon_fd_epoll_created(ELMON_FD_TABLE);
    elmon_fd_epoll_created(-3);
    ck_assert_int_eq(elmon_epoll_fds(ELMON_FD_TABLE), 0);
    ck_assert_int_eq(elmon_epoll_fds(-3), 0);
    ck_assert(!elmon_fd_known(ELMON_FD_TABLE));
    ck_assert(!elmon_fd_known(-1));
    ck_assert(!elmon_fd_is_epoll(-1));
    ADD(ELMON_FD_TABLE, 7);
    ck_assert(!elmon_fd_known(7));
    elmon_fd_closing(ELMON_FD_TABLE - 1);
    ck_assert_int_eq(elmon_epoll_fds(E), 0);
}
END_TEST

/* --- against the kernel ------------------------------------------------ */

/* The kernel's count: one "tfd:" line per registration in fdinfo. */
static int kernel_count(int ep)
{
    char path[64], buf[1 << 16];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    size_t n = 0;
    ssize_t k;
    while ((k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(fd);
    buf[n] = 0;
    int c = 0;
    for (char *p = buf; (p = strstr(p, "tfd:")); p++)
        c++;
    return c;
}

/* What the wrappers do around each call (wrap.c). */
static int w_epoll_create(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep >= 0)
        elmon_fd_epoll_created(ep);
    return ep;
}

static int w_epoll_ctl(int ep, int op, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int rc = epoll_ctl(ep, op, fd, &ev);
    if (rc == 0)
        elmon_fd_epoll_ctl(ep, op, fd);
    return rc;
}

static int w_close(int fd)
{
    if (elmon_fd_known(fd))
        elmon_fd_closing(fd);
    return close(fd);
}

static int w_dup2(int a, int b)
{
    int rc = dup2(a, b);
    if (rc >= 0 && a != b)
        elmon_fd_closing(b);
    return rc;
}

START_TEST(counts_match_the_kernel)
{
    enum { EPS = 4, FDS = 24, STEPS = 4000 };
    int ep[EPS], fd[FDS];
    for (int i = 0; i < EPS; i++)
        ck_assert_int_ge(ep[i] = w_epoll_create(), 0);
    for (int i = 0; i < FDS; i++)
        ck_assert_int_ge(fd[i] = eventfd(0, EFD_CLOEXEC), 0);
    srand(1234 + (unsigned)_i);
    int ops[6] = {0};
    for (int step = 0; step < STEPS; step++) {
        int e = rand() % EPS, f = rand() % FDS, op = rand() % 100;
        if (op < 45) {
            ops[0] += w_epoll_ctl(ep[e], EPOLL_CTL_ADD, fd[f]) == 0;
        } else if (op < 70) {
            ops[1] += w_epoll_ctl(ep[e], EPOLL_CTL_DEL, fd[f]) == 0;
        } else if (op < 85) {
            /* Closed; a new descriptor takes the lowest free number,
             * often the same one. */
            w_close(fd[f]);
            ck_assert_int_ge(fd[f] = eventfd(0, EFD_CLOEXEC), 0);
            ops[2]++;
        } else if (op < 93) {
            /* dup2 of a fresh descriptor over a member, the fresh number
             * then closed: the member's number now names another file. */
            int n = eventfd(0, EFD_CLOEXEC);
            ck_assert_int_ge(n, 0);
            ck_assert_int_eq(w_dup2(n, fd[f]), fd[f]);
            w_close(n);
            ops[3]++;
        } else if (op < 97) {
            /* One instance closed and another made. */
            w_close(ep[e]);
            ck_assert_int_ge(ep[e] = w_epoll_create(), 0);
            ops[4]++;
        } else {
            /* An instance in another's set. */
            ops[5] += w_epoll_ctl(ep[e], EPOLL_CTL_ADD, ep[(e + 1) % EPS]) == 0;
        }
        for (int i = 0; i < EPS; i++) {
            int k = kernel_count(ep[i]), m = elmon_epoll_fds(ep[i]);
            ck_assert_msg(k == m, "step %d (op %d): epoll fd %d holds %d descriptors, the table says %d", step,
                          op, ep[i], k, m);
        }
    }
    /* The run did all of it. */
    for (int i = 0; i < 6; i++)
        ck_assert_msg(ops[i] > 0, "operation %d never happened", i);
    for (int i = 0; i < FDS; i++)
        w_close(fd[i]);
    for (int i = 0; i < EPS; i++) {
        ck_assert_int_eq(elmon_epoll_fds(ep[i]), kernel_count(ep[i]));
        w_close(ep[i]);
    }
}
END_TEST

/* --- loops ------------------------------------------------------------ */

static struct elmon_loop L;   /* a slot outside the table */

static void loop_setup(void)
{
    memset(&L, 0, sizeof L);
    L.state = ELMON_SLOT_ACTIVE;
    L.tid = 1;
    elmon_block_ns = 50000000;
}

/* Clock not initialised: a tick is a nanosecond of CLOCK_MONOTONIC. */
START_TEST(closing_a_loops_instance_ends_it)
{
    enum { E = 1500 };
    ck_assert_int_eq(elmon_clock_tsc, 0);
    elmon_fd_epoll_created(E);
    for (int fd = 1510; fd < 1513; fd++)
        ADD(E, fd);
    /* The first wait on E begins the thread's loop there. */
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, 5000, 0x1234), 1);
    ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, E));
    ck_assert_uint_eq(L.n_loops, 1);
    ck_assert_int_eq(L.poller, ELMON_POLLER_EPOLL_WAIT);
    ck_assert_uint_eq(L.loop_site, 0x1234);
    uint64_t t0 = elmon_ticks();
    elmon_fd_closing(E);
    ck_assert_uint_eq(L.loop_word, 0);
    ck_assert_int_eq(L.n_fds, 3);
    ck_assert_uint_ge(L.closed_ticks, t0);
    ck_assert_uint_le(L.closed_ticks, elmon_ticks());
}
END_TEST

START_TEST(closing_another_instance_leaves_the_loop)
{
    enum { E = 1600, F = 1601 };
    elmon_fd_epoll_created(E);
    elmon_fd_epoll_created(F);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, 5000, 0x1234), 1);
    uint64_t w = L.loop_word;
    /* Another instance, a member, an unknown number. */
    elmon_fd_closing(F);
    elmon_fd_closing(1700);
    ck_assert_uint_eq(L.loop_word, w);
    /* The thread left E for F (from the loop's own call site): closing E
     * now ends nothing. */
    elmon_fd_epoll_created(F);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, F, 0, 5000, 0x1234), 1);
    ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, F));
    ck_assert_uint_eq(L.n_loops, 2);
    elmon_fd_closing(E);
    ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, F));
    ck_assert_uint_eq(L.closed_ticks, 0);
    /* Cleared (thread exit), or cleared by another loop's pointer. */
    static struct elmon_loop other;
    elmon_fd_loop_clear(F, &other);
    elmon_fd_closing(F);
    ck_assert_uint_eq(L.loop_word, 0);
    elmon_fd_epoll_created(F);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, F, 0, 5000, 0x1234), 1);
    elmon_fd_loop_clear(F, &L);
    elmon_fd_closing(F);
    ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, F));
    /* A slot that is not ACTIVE (its thread is exiting) is left alone. */
    elmon_fd_epoll_created(E);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, 5000, 0x1234), 1);
    L.state = ELMON_SLOT_EXITING;
    elmon_fd_closing(E);
    ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, E));
}
END_TEST

/* Which waits begin a loop (loopid.h's rule), one table row per case:
 * the thread's loop and whether a turn runs, then the wait. */
START_TEST(nested_or_new_loop)
{
    enum { E = 1800, F = 1801, SITE = 0x4000, SP = 8000 };
    static const struct {
        int kind;             /* the loop the thread has */
        int in_turn;          /* 1: a turn runs; 2: busy, but found outside a loop */
        int poller, fd;       /* the wait */
        uintptr_t key, sp, site;
        int want;
        const char *why;
    } t[] = {
        {ELMON_LOOP_NONE, 0, ELMON_POLLER_POLL, -1, 0x10, SP, SITE, 1, "no loop: a poll begins one"},
        {ELMON_LOOP_NONE, 1, ELMON_POLLER_EPOLL_WAIT, F, 0, SP, SITE, 1, "no loop, even while busy"},
        {ELMON_LOOP_EPOLL, 1, ELMON_POLLER_POLL, -1, 0x10, SP + 100, SITE, 0, "poll in an epoll turn: nested"},
        {ELMON_LOOP_EPOLL, 1, ELMON_POLLER_EPOLL_WAIT, F, 0, SP, SITE + 8, 0, "other instance, other site: nested"},
        {ELMON_LOOP_EPOLL, 1, ELMON_POLLER_EPOLL_WAIT, F, 0, SP - 100, SITE, 0, "same site, deeper: nested"},
        {ELMON_LOOP_EPOLL, 1, ELMON_POLLER_EPOLL_PWAIT, F, 0, SP, SITE, 1, "same site, same depth: a new loop"},
        {ELMON_LOOP_EPOLL, 1, ELMON_POLLER_EPOLL_WAIT, F, 0, SP + 100, SITE, 1, "same site, shallower: a new loop"},
        {ELMON_LOOP_EPOLL, 0, ELMON_POLLER_POLL, -1, 0x10, SP + 100, SITE + 8, 1, "between turns: a new loop"},
        {ELMON_LOOP_EPOLL, 2, ELMON_POLLER_POLL, -1, 0x10, SP + 100, SITE + 8, 1, "outside a running loop: new"},
        {ELMON_LOOP_POLL, 1, ELMON_POLLER_SELECT, -1, 0x20, SP - 100, SITE + 8, 0, "poll turn, other array: nested"},
        {ELMON_LOOP_POLL, 1, ELMON_POLLER_EPOLL_WAIT, F, 0, SP - 100, SITE + 8, 1, "epoll in a poll turn: new"},
    };
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
        loop_setup();
        elmon_fd_epoll_created(E);
        elmon_fd_epoll_created(F);
        if (t[i].kind == ELMON_LOOP_EPOLL)
            ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, SP, SITE), 1);
        else if (t[i].kind == ELMON_LOOP_POLL)
            ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_POLL, -1, 0x10, SP, SITE), 1);
        uint64_t w = L.loop_word, n = L.n_loops;
        if (t[i].in_turn)
            L.busy_since = elmon_ticks();
        if (t[i].in_turn == 2)
            L.outside_since = L.busy_since;
        int got = elmon_loop_enter(&L, t[i].poller, t[i].fd, t[i].key, t[i].sp, t[i].site);
        ck_assert_msg(got == t[i].want, "row %u (%s): %d", i, t[i].why, got);
        if (got) {
            int epoll = t[i].poller <= ELMON_POLLER_EPOLL_PWAIT2;
            ck_assert_msg(L.loop_word == elmon_loop_word(epoll ? ELMON_LOOP_EPOLL : ELMON_LOOP_POLL, t[i].fd),
                          "row %u (%s): loop word %lx", i, t[i].why, L.loop_word);
            ck_assert_uint_eq(L.n_loops, n + 1);
            ck_assert_int_eq(L.poller, t[i].poller);
            ck_assert_uint_eq(L.busy_since, 0);   /* the busy period is no turn */
            /* The loop left behind is no longer ended by its close. */
            if (t[i].kind == ELMON_LOOP_EPOLL && epoll) {
                elmon_fd_closing(E);
                ck_assert_uint_eq(L.loop_word, elmon_loop_word(ELMON_LOOP_EPOLL, t[i].fd));
            }
        } else {
            ck_assert_msg(L.loop_word == w && L.n_loops == n, "row %u (%s): a nested wait changed the loop", i,
                          t[i].why);
        }
    }
}
END_TEST

START_TEST(closed_loop_cuts_its_busy_period)
{
    enum { E = 1900, F = 1901 };
    elmon_block_ns = 5000000;
    elmon_fd_epoll_created(E);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, 5000, 0x1234), 1);
    /* A turn began 30 ms ago; the loop's descriptor was closed 20 ms into
     * it (the closer's stamp), then the thread waits on something new. */
    uint64_t now = elmon_ticks();
    L.busy_since = now - 30000000;
    L.overshoot_ns = 1000;
    L.turn = 7;
    elmon_fd_closing(E);
    L.closed_ticks = L.busy_since + 20000000;
    elmon_fd_epoll_created(F);
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, F, 0, 6000, 0x9999), 1);
    ck_assert_uint_eq(L.ring_head, 1);
    ck_assert_int_eq(L.ring[0].end, ELMON_END_LOOP_CLOSED);
    ck_assert_uint_eq(L.ring[0].busy_ns, 20000000);
    ck_assert_uint_eq(L.ring[0].lag_ns, 20001000);
    ck_assert_uint_eq(L.ring[0].start_ticks, now - 30000000);
    ck_assert_uint_eq(L.ring[0].turn, 7);
    ck_assert_uint_eq(L.n_turns, 0);   /* no turn */
    ck_assert_uint_eq(L.busy_since, 0);
    ck_assert_uint_eq(L.closed_ticks, 0);
    /* Cut below the threshold, or in a period found outside a loop: no
     * span at all. */
    elmon_fd_epoll_created(E);
    L.busy_since = elmon_ticks() - 1000000;
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, E, 0, 6000, 0x9999), 1);
    L.busy_since = elmon_ticks() - 30000000;
    L.outside_since = L.busy_since;
    ck_assert_int_eq(elmon_loop_enter(&L, ELMON_POLLER_EPOLL_WAIT, F, 0, 6000, 0x9999), 1);
    ck_assert_uint_eq(L.ring_head, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fdtable");
    TCase *tc = tcase_create("count");
    tcase_add_test(tc, add_del_close_counts);
    tcase_add_test(tc, closed_instance_number_reused);
    tcase_add_test(tc, descriptor_in_several_sets);
    tcase_add_test(tc, overflow_table_full);
    tcase_add_test(tc, close_range_drops_members);
    tcase_add_test(tc, numbers_out_of_range);
    suite_add_tcase(s, tc);
    tc = tcase_create("kernel");
    tcase_add_loop_test(tc, counts_match_the_kernel, 0, 3);
    suite_add_tcase(s, tc);
    tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, loop_setup, NULL);
    tcase_add_test(tc, closing_a_loops_instance_ends_it);
    tcase_add_test(tc, closing_another_instance_leaves_the_loop);
    tcase_add_test(tc, nested_or_new_loop);
    tcase_add_test(tc, closed_loop_cuts_its_busy_period);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
