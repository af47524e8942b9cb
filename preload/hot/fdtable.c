/*
 * HOT PATH: the descriptor table (contract in fdtable.h).
 *
 * One 64-bit word per descriptor number:
 *   bits  0-23  epoll fd + 1 of the set the descriptor was added to, 0: none
 *   bit   24    also in other sets: the overflow table has those
 *   bit   25    the descriptor is an epoll instance
 *   bits 32-63  the generation of that epoll instance when it was added
 * An epoll instance's generation moves on when it is closed, so a member
 * whose set is gone (and whose number a new instance took) is not counted
 * against the new one.
 *
 * The kernel drops a descriptor from every epoll set when the last
 * reference to its open file goes; libelmon sees the close of a number, so
 * a descriptor that was dup'ed and closed under one of its numbers leaves
 * the count early (docs/EVENTS.md, `fds`).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/epoll.h>
#include "fdtable.h"
#include "loopid.h"

#define OWNER_MASK 0xffffffull
#define F_MULTI (1ull << 24)
#define F_EPOLL ELMON_FD_EPOLL_BIT
#define MULTI_SLOTS 1024

uint64_t elmon_fd_word[ELMON_FD_TABLE];
static int ep_count[ELMON_FD_TABLE];
static uint32_t ep_gen[ELMON_FD_TABLE];
static struct elmon_loop *ep_loop[ELMON_FD_TABLE];
/* (fd + 1) | (epfd + 1) << 17 | (generation & MULTI_GEN) << 34; 0: free
 * (ELMON_FD_TABLE is 2^16, so each number + 1 fits in 17 bits). */
#define MULTI_FD 0x1ffffull
#define MULTI_GEN 0x3fffffffu
static uint64_t multi[MULTI_SLOTS];
static unsigned multi_used;
static unsigned long multi_lost;
static unsigned high_fd;         /* highest descriptor with a word, for close_range */

static void note_high(unsigned fd)
{
    unsigned h = __atomic_load_n(&high_fd, __ATOMIC_RELAXED);
    while (fd > h && !__atomic_compare_exchange_n(&high_fd, &h, fd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static uint32_t gen_of(int epfd)
{
    return __atomic_load_n(&ep_gen[epfd], __ATOMIC_RELAXED);
}

static void count_add(int epfd, int delta)
{
    if (__atomic_add_fetch(&ep_count[epfd], delta, __ATOMIC_RELAXED) < 0)
        __atomic_store_n(&ep_count[epfd], 0, __ATOMIC_RELAXED);
}

/* A live owner: the set the word names still exists as it was. */
static int owner_live(uint64_t w)
{
    uint64_t o = w & OWNER_MASK;
    return o && (uint32_t)(w >> 32) == gen_of((int)o - 1);
}

static uint64_t multi_key(int fd, int epfd)
{
    return (uint64_t)(fd + 1) | (uint64_t)(epfd + 1) << 17;
}

static uint32_t multi_gen(uint64_t e)
{
    return (uint32_t)(e >> 34);
}

static int multi_find(int fd, int epfd)
{
    uint64_t key = multi_key(fd, epfd);
    for (int i = 0; i < MULTI_SLOTS; i++) {
        uint64_t e = __atomic_load_n(&multi[i], __ATOMIC_RELAXED);
        if ((e & ((1ull << 34) - 1)) == key)
            return i;
    }
    return -1;
}

/* Remove entry i if it still holds e; counts the set down when its
 * generation is the live one. */
static void multi_drop(int i, uint64_t e)
{
    if (!__atomic_compare_exchange_n(&multi[i], &e, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    __atomic_sub_fetch(&multi_used, 1, __ATOMIC_RELAXED);
    int epfd = (int)((e >> 17) & MULTI_FD) - 1;
    if (multi_gen(e) == (gen_of(epfd) & MULTI_GEN))
        count_add(epfd, -1);
}

static void multi_add(int fd, int epfd)
{
    int i = multi_find(fd, epfd);
    if (i >= 0) {
        uint64_t e = __atomic_load_n(&multi[i], __ATOMIC_RELAXED);
        if (multi_gen(e) == (gen_of(epfd) & MULTI_GEN))
            return;                     /* counted already: its old registration is gone */
        multi_drop(i, e);
    }
    uint64_t v = multi_key(fd, epfd) | (uint64_t)(gen_of(epfd) & MULTI_GEN) << 34;
    for (i = 0; i < MULTI_SLOTS; i++) {
        uint64_t zero = 0;
        if (__atomic_compare_exchange_n(&multi[i], &zero, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            __atomic_add_fetch(&multi_used, 1, __ATOMIC_RELAXED);
            __atomic_or_fetch(&elmon_fd_word[fd], F_MULTI, __ATOMIC_RELAXED);
            count_add(epfd, 1);
            return;
        }
    }
    __atomic_add_fetch(&multi_lost, 1, __ATOMIC_RELAXED);
}

void elmon_fd_epoll_ctl(int epfd, int op, int fd)
{
    if ((unsigned)epfd >= ELMON_FD_TABLE || (unsigned)fd >= ELMON_FD_TABLE)
        return;
    uint64_t me = (uint64_t)(epfd + 1);
    if (op == EPOLL_CTL_ADD) {
        note_high((unsigned)fd);
        uint64_t w = __atomic_load_n(&elmon_fd_word[fd], __ATOMIC_RELAXED);
        for (;;) {
            int live = owner_live(w);
            if (live && (w & OWNER_MASK) != me) {
                multi_add(fd, epfd);
                return;
            }
            /* Our own live entry: the kernel took the ADD, so the earlier
             * registration went with a close libelmon did not see; it is
             * counted already. */
            int counted = live;
            uint64_t nw = (w & (F_MULTI | F_EPOLL)) | me | (uint64_t)gen_of(epfd) << 32;
            if (__atomic_compare_exchange_n(&elmon_fd_word[fd], &w, nw, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                if (!counted)
                    count_add(epfd, 1);
                return;
            }
        }
    } else if (op == EPOLL_CTL_DEL) {
        uint64_t w = __atomic_load_n(&elmon_fd_word[fd], __ATOMIC_RELAXED);
        while ((w & OWNER_MASK) == me && owner_live(w)) {
            uint64_t nw = w & (F_MULTI | F_EPOLL);
            if (__atomic_compare_exchange_n(&elmon_fd_word[fd], &w, nw, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                count_add(epfd, -1);
                return;
            }
        }
        if (w & F_MULTI) {
            int i = multi_find(fd, epfd);
            if (i >= 0)
                multi_drop(i, __atomic_load_n(&multi[i], __ATOMIC_RELAXED));
        }
    }
}

void elmon_fd_closing(int fd)
{
    if ((unsigned)fd >= ELMON_FD_TABLE)
        return;
    uint64_t w = __atomic_exchange_n(&elmon_fd_word[fd], 0, __ATOMIC_RELAXED);
    if (!w)
        return;
    if (owner_live(w))
        count_add((int)(w & OWNER_MASK) - 1, -1);
    if (w & F_MULTI) {
        for (int i = 0; i < MULTI_SLOTS; i++) {
            uint64_t e = __atomic_load_n(&multi[i], __ATOMIC_RELAXED);
            if (e && (e & MULTI_FD) == (uint64_t)(fd + 1))
                multi_drop(i, e);
        }
    }
    if (w & F_EPOLL) {
        struct elmon_loop *l = __atomic_exchange_n(&ep_loop[fd], NULL, __ATOMIC_ACQ_REL);
        if (l)
            elmon_loop_closed(l, fd, __atomic_load_n(&ep_count[fd], __ATOMIC_RELAXED));
        /* Members that still name this instance are stale from here on. */
        __atomic_add_fetch(&ep_gen[fd], 1, __ATOMIC_RELAXED);
        __atomic_store_n(&ep_count[fd], 0, __ATOMIC_RELAXED);
    }
}

void elmon_fds_closing(unsigned first, unsigned last)
{
    unsigned h = __atomic_load_n(&high_fd, __ATOMIC_RELAXED);
    if (last > h)
        last = h;
    for (unsigned fd = first; fd <= last && fd < ELMON_FD_TABLE; fd++)
        if (__atomic_load_n(&elmon_fd_word[fd], __ATOMIC_RELAXED))
            elmon_fd_closing((int)fd);
}

void elmon_fd_epoll_created(int epfd)
{
    if ((unsigned)epfd >= ELMON_FD_TABLE)
        return;
    /* Whatever the number held before went with a close libelmon did not
     * see. */
    elmon_fd_closing(epfd);
    note_high((unsigned)epfd);
    __atomic_add_fetch(&ep_gen[epfd], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&ep_count[epfd], 0, __ATOMIC_RELAXED);
    __atomic_or_fetch(&elmon_fd_word[epfd], F_EPOLL, __ATOMIC_RELAXED);
}

int elmon_epoll_fds(int epfd)
{
    return (unsigned)epfd < ELMON_FD_TABLE ? __atomic_load_n(&ep_count[epfd], __ATOMIC_RELAXED) : 0;
}

void elmon_fd_loop_set(int epfd, struct elmon_loop *l)
{
    if ((unsigned)epfd >= ELMON_FD_TABLE)
        return;
    __atomic_store_n(&ep_loop[epfd], l, __ATOMIC_RELEASE);
    /* An instance made before libelmon was active has no word yet: close()
     * must still see it go. */
    note_high((unsigned)epfd);
    __atomic_or_fetch(&elmon_fd_word[epfd], F_EPOLL, __ATOMIC_RELAXED);
}

void elmon_fd_loop_clear(int epfd, struct elmon_loop *l)
{
    if ((unsigned)epfd < ELMON_FD_TABLE)
        __atomic_compare_exchange_n(&ep_loop[epfd], &l, NULL, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

unsigned elmon_fd_multi_used(void)
{
    return __atomic_load_n(&multi_used, __ATOMIC_RELAXED);
}

unsigned long elmon_fd_multi_lost(void)
{
    return __atomic_load_n(&multi_lost, __ATOMIC_RELAXED);
}
