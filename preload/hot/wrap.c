/*
 * HOT PATH: the interposed wait calls.
 *
 * Contract: every wrapper calls the real function exactly once with the
 * caller's arguments and returns its result with its errno, EINTR included.
 * Two exceptions, both for the host's sake: the sleeps (nanosleep,
 * clock_nanosleep, usleep, sleep) sleep out what libelmon's own capture
 * signal cut short, and the close family leaves libelmon's own descriptors
 * (core/ownfd.h) alone.
 * Around the call it reads the clock and updates the calling thread's turn
 * state (turn.h); it makes no allocation, takes no lock, does no stdio and
 * makes no system call of its own (the close family's slow branch below
 * excepted).  The real functions are resolved in
 * elmon.c, once; a wrapper entered before that (another library's
 * constructor) resolves them itself on the spot.
 *
 * The close family (close, close_range, closefrom, dup2, dup3, and the
 * same through syscall(), which libuv uses) and epoll_create/epoll_ctl keep
 * the descriptor table (fdtable.h): a closed descriptor leaves its epoll
 * sets, a closed epoll instance ends its loop.  The common close, of a
 * descriptor libelmon has no note of, adds one load; the close of an epoll
 * instance, and every close_range and closefrom, also make one getpid
 * system call: a vfork child (CPython's subprocess closes every descriptor
 * in one before its exec) shares the parent's table and must not end the
 * parent's loop.
 *
 * prctl(PR_SET_SECCOMP) and seccomp(), also through syscall(), end the
 * measurement before the filter is installed (registry.h,
 * elmon_confining).
 *
 * Owns: the interposed symbols themselves (the waits, the close family,
 * epoll_create/epoll_ctl, the sleeps, prctl, seccomp and syscall); no state
 * of its own (the turn is the slot's, turn.h; descriptors are fdtable.h's).
 * Threads: any thread of the host that waits, sleeps, closes or confines
 * itself (close also from signal handlers).
 * May not: change a call's result or errno, or make the real call other
 * than once (the two exceptions above); allocate, lock, do stdio or make a
 * system call of its own outside the slow branches (a thread's first wait,
 * the close family's, a confinement).
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "registry.h"
#include "fdtable.h"
#include "ownfd.h"
#include "real.h"
#include "turn.h"

#define ELMON_EXPORT __attribute__((visibility("default")))

/* A C library without the function could not have linked the caller
 * against it; ENOSYS is for a caller that found it with dlsym. */
#define ENSURE_REAL(fn)                                         \
    do {                                                        \
        if (__builtin_expect(!elmon_real.fn, 0)) {              \
            elmon_resolve_real();                               \
            if (!elmon_real.fn) {                               \
                errno = ENOSYS;                                 \
                return -1;                                      \
            }                                                   \
        }                                                       \
    } while (0)

static inline int64_t ms_to_ns(int ms)
{
    return ms < 0 ? -1 : (int64_t)ms * 1000000;
}

static inline int64_t ts_to_ns(const struct timespec *ts)
{
    return ts ? (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec : -1;
}

static inline int64_t tv_to_ns(const struct timeval *tv)
{
    return tv ? (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000 : -1;
}

/* The wait itself, then the turn's end.  errno needs no saving: the turn's
 * end reads the TSC or the vDSO clock_gettime(CLOCK_MONOTONIC), neither of
 * which can fail, and writes nothing else that errno could alias (the
 * shim's tests compare every wrapper's errno with the bare call's). */
/* How deep in the stack the wait is made (the wrapper's own frame), and
 * where it is called from. */
#define SP() ((uintptr_t)__builtin_frame_address(0)), ((uintptr_t)__builtin_return_address(0))

/* A poll loop is known by the array it polls, a select loop by its read
 * set (or the first set it passes): the address only, never what is in it
 * (the kernel checks the pointer; libelmon must not fault on it). */
#define KEY(p) ((uintptr_t)(p))

#define AROUND(l, call)                                         \
    int ret_ = (call);                                          \
    if (l)                                                      \
        elmon_turn_end(l, ret_);                                \
    return ret_

ELMON_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    ENSURE_REAL(epoll_wait);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_EPOLL_WAIT, epfd, 0, 0, ms_to_ns(timeout), SP());
    AROUND(l, elmon_real.epoll_wait(epfd, events, maxevents, timeout));
}

ELMON_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                const sigset_t *sigmask)
{
    ENSURE_REAL(epoll_pwait);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_EPOLL_PWAIT, epfd, 0, 0, ms_to_ns(timeout), SP());
    AROUND(l, elmon_real.epoll_pwait(epfd, events, maxevents, timeout, sigmask));
}

ELMON_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const sigset_t *sigmask)
{
    ENSURE_REAL(epoll_pwait2);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_EPOLL_PWAIT2, epfd, 0, 0, ts_to_ns(timeout), SP());
    AROUND(l, elmon_real.epoll_pwait2(epfd, events, maxevents, timeout, sigmask));
}

ELMON_EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    ENSURE_REAL(poll);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_POLL, -1, KEY(fds), (int)nfds, ms_to_ns(timeout), SP());
    AROUND(l, elmon_real.poll(fds, nfds, timeout));
}

ELMON_EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    ENSURE_REAL(poll_chk);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_POLL, -1, KEY(fds), (int)nfds, ms_to_ns(timeout), SP());
    AROUND(l, elmon_real.poll_chk(fds, nfds, timeout, fdslen));
}

ELMON_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask)
{
    ENSURE_REAL(ppoll);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_PPOLL, -1, KEY(fds), (int)nfds, ts_to_ns(tmo), SP());
    AROUND(l, elmon_real.ppoll(fds, nfds, tmo, sigmask));
}

ELMON_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
                const sigset_t *sigmask, size_t fdslen)
{
    ENSURE_REAL(ppoll_chk);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_PPOLL, -1, KEY(fds), (int)nfds, ts_to_ns(tmo), SP());
    AROUND(l, elmon_real.ppoll_chk(fds, nfds, tmo, sigmask, fdslen));
}

/* select's nfds is the highest descriptor plus one, not a count; a single
 * descriptor is what CPython's sock_call waits on, so count the bits (up
 * to two). */
static inline int fdset_count(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
    int n = 0;
    if (nfds > FD_SETSIZE)
        nfds = FD_SETSIZE;
    for (int word = 0; word * 64 < nfds && n < 2; word++) {
        const unsigned long *sets[3] = {
            r ? (const unsigned long *)r->fds_bits : 0,
            w ? (const unsigned long *)w->fds_bits : 0,
            e ? (const unsigned long *)e->fds_bits : 0,
        };
        for (int s = 0; s < 3; s++)
            if (sets[s])
                n += __builtin_popcountl(sets[s][word]);
    }
    return n;
}

ELMON_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo)
{
    ENSURE_REAL(select);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_SELECT, -1, KEY(r ? r : w ? w : e), fdset_count(nfds, r, w, e),
                                            tv_to_ns(tmo), SP());
    AROUND(l, elmon_real.select(nfds, r, w, e, tmo));
}

ELMON_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
            const sigset_t *sigmask)
{
    ENSURE_REAL(pselect);
    struct elmon_loop *l = elmon_turn_begin(ELMON_POLLER_PSELECT, -1, KEY(r ? r : w ? w : e), fdset_count(nfds, r, w, e),
                                            ts_to_ns(tmo), SP());
    AROUND(l, elmon_real.pselect(nfds, r, w, e, tmo, sigmask));
}

/* epoll_ctl is not a wait: it keeps the count of descriptors registered per
 * epoll instance (the loop's "active handles"). */
ELMON_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    ENSURE_REAL(epoll_ctl);
    int ret = elmon_real.epoll_ctl(epfd, op, fd, event);
    if (ret == 0 && ELMON_LOAD(&elmon_active))
        elmon_fd_epoll_ctl(epfd, op, fd);
    return ret;
}

ELMON_EXPORT int epoll_create(int size)
{
    ENSURE_REAL(epoll_create);
    int ret = elmon_real.epoll_create(size);
    if (ret >= 0 && ELMON_LOAD(&elmon_active))
        elmon_fd_epoll_created(ret);
    return ret;
}

ELMON_EXPORT int epoll_create1(int flags)
{
    ENSURE_REAL(epoll_create1);
    int ret = elmon_real.epoll_create1(flags);
    if (ret >= 0 && ELMON_LOAD(&elmon_active))
        elmon_fd_epoll_created(ret);
    return ret;
}

/* The bookkeeping comes before the real close: once closed, the number can
 * be handed to another thread's new descriptor.  The getpid check guards
 * only what a vfork child could break in its parent (a loop's end, a bulk
 * close); a member descriptor it closes is taken out of the count, which
 * the parent's own close would have done anyway. */
static inline void closing(int fd)
{
    if (__builtin_expect(elmon_fd_known(fd), 0) && ELMON_LOAD(&elmon_active) &&
        (!elmon_fd_is_epoll(fd) || elmon_same_process()))
        elmon_fd_closing(fd);
}

static inline void closing_range(unsigned first, unsigned last, unsigned flags)
{
    /* CLOSE_RANGE_CLOEXEC closes nothing; CLOSE_RANGE_UNSHARE closes in a
     * private copy of the table, the other threads keep theirs. */
    if (!(flags & (CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) && first <= last && ELMON_LOAD(&elmon_active) &&
        elmon_same_process())
        elmon_fds_closing(first, last);
}

/* libelmon's own descriptors (core/ownfd.h) are not the host's to close:
 * close() of one fails with EBADF, as it would without libelmon, and a
 * range leaves them out; dup2/dup3 onto one gives the host the number. */
static int close_own_aware(int fd)
{
    if (__builtin_expect(elmon_own_maybe(fd), 0)) {
        if (elmon_own_thread)
            return elmon_own_close(fd);
        if (elmon_own_ok(fd)) {
            errno = EBADF;
            return -1;
        }
    }
    closing(fd);
    return elmon_real.close(fd);
}

/* The real close_range over [first, last] minus libelmon's descriptors.
 * CLOSE_RANGE_CLOEXEC closes nothing (ours are close-on-exec already). */
static long close_range_sparing(long (*real)(unsigned, unsigned, int), unsigned first, unsigned last, int flags)
{
    int own[ELMON_OWN_MAX], n = 0;
    if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last && last >= (unsigned)__atomic_load_n(&elmon_own_lowest, __ATOMIC_RELAXED))
        n = elmon_own_sorted(first, last, own);
    closing_range(first, last, (unsigned)flags);
    if (n == 0)
        return real(first, last, flags);
    long rc = 0;
    unsigned lo = first;
    for (int i = 0; i < n; i++) {
        unsigned fd = (unsigned)own[i];
        if (!elmon_own_ok((int)fd))
            continue;   /* no longer ours: the host's range closes it */
        if (fd > lo && real(lo, fd - 1, flags) < 0)
            rc = -1;
        lo = fd + 1;
    }
    if (lo != 0 && lo <= last && real(lo, last, flags) < 0)
        rc = -1;
    return rc;
}

static long real_close_range(unsigned first, unsigned last, int flags)
{
    return elmon_real.close_range(first, last, flags);
}

ELMON_EXPORT int close(int fd)
{
    ENSURE_REAL(close);
    return close_own_aware(fd);
}

ELMON_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    ENSURE_REAL(close_range);
    return (int)close_range_sparing(real_close_range, first, last, flags);
}

/* glibc's closefrom calls close_range inside the library, not through
 * here: with libelmon's descriptors in the way it becomes close_range
 * calls around them (closefrom has no result to give). */
ELMON_EXPORT void closefrom(int lowfd)
{
    if (__builtin_expect(!elmon_real.closefrom, 0))
        elmon_resolve_real();
    int own[ELMON_OWN_MAX];
    if (lowfd >= 0 && elmon_real.close_range && elmon_own_sorted((unsigned)lowfd, ~0u, own) > 0) {
        close_range_sparing(real_close_range, (unsigned)lowfd, ~0u, 0);
        return;
    }
    if (lowfd >= 0)
        closing_range((unsigned)lowfd, ~0u, 0);
    if (elmon_real.closefrom)
        elmon_real.closefrom(lowfd);
}

/* dup2/dup3 onto an open newfd close it first, silently. */
ELMON_EXPORT int dup2(int oldfd, int newfd)
{
    ENSURE_REAL(dup2);
    if (__builtin_expect(elmon_own_maybe(newfd), 0) && oldfd != newfd && elmon_same_process())
        elmon_own_taken(newfd);
    int ret = elmon_real.dup2(oldfd, newfd);
    if (ret >= 0 && oldfd != newfd)
        closing(newfd);
    return ret;
}

ELMON_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    ENSURE_REAL(dup3);
    if (__builtin_expect(elmon_own_maybe(newfd), 0) && oldfd != newfd && elmon_same_process())
        elmon_own_taken(newfd);
    int ret = elmon_real.dup3(oldfd, newfd, flags);
    if (ret >= 0)
        closing(newfd);
    return ret;
}

/* Sleeps that libelmon's capture signal cut short are slept out.
 *
 * The watchdog signals a loop thread only when /proc shows it running user
 * code, but the thread can enter a sleep in the microseconds between that
 * look and the signal; a sleep a handler interrupts returns EINTR whatever
 * SA_RESTART says.  The handler counts itself in the slot (sig_hits): a
 * sleep that returns EINTR with the count moved was cut by libelmon, and
 * sleeps what is left, with errno as the host left it.  A host's signal
 * landing in the same interruption is the one case this cannot tell apart.
 * These are the wrappers that may call the real function more than once. */
/* A thread parked in one of these sleeps is unwound from /proc's rip and
 * rsp alone: this file is built without a frame pointer for it
 * (preload/CMakeLists.txt), and the sleeps are not instrumented by
 * AddressSanitizer, whose redzones around a local whose address is taken
 * give the function an rbp-based frame all the same. */
#define SLEEP_WRAPPER __attribute__((no_sanitize("address")))
static inline uint32_t sig_hits(void)
{
    struct elmon_loop *l = elmon_tls_loop;
    return l ? __atomic_load_n(&l->sig_hits, __ATOMIC_RELAXED) : 0;
}

SLEEP_WRAPPER
static int sleep_out(const struct timespec *req, struct timespec *rem)
{
    struct timespec left, again;
    int saved = errno;
    for (;;) {
        uint32_t hits = sig_hits();
        int ret = elmon_real.nanosleep(req, &left);
        if (ret < 0 && errno == EINTR && sig_hits() != hits) {
            again = left;
            req = &again;
            errno = saved;
            continue;
        }
        if (ret < 0 && errno == EINTR && rem)
            *rem = left;
        return ret;
    }
}

ELMON_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    ENSURE_REAL(nanosleep);
    return sleep_out(req, rem);
}

SLEEP_WRAPPER
ELMON_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem)
{
    if (__builtin_expect(!elmon_real.clock_nanosleep, 0)) {
        elmon_resolve_real();
        if (!elmon_real.clock_nanosleep)
            return ENOSYS;
    }
    struct timespec left, again;
    for (;;) {
        uint32_t hits = sig_hits();
        int ret = elmon_real.clock_nanosleep(clock, flags, req, &left);
        if (ret == EINTR && sig_hits() != hits) {
            /* An absolute deadline stays as it was. */
            if (!(flags & TIMER_ABSTIME)) {
                again = left;
                req = &again;
            }
            continue;
        }
        if (ret == EINTR && rem && !(flags & TIMER_ABSTIME))
            *rem = left;
        return ret;
    }
}

/* glibc's usleep and sleep call nanosleep inside the library, not through
 * here: they are interposed themselves, with glibc's results. */
SLEEP_WRAPPER
ELMON_EXPORT int usleep(useconds_t us)
{
    ENSURE_REAL(nanosleep);
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    return sleep_out(&ts, NULL);
}

SLEEP_WRAPPER
ELMON_EXPORT unsigned int sleep(unsigned int seconds)
{
    if (__builtin_expect(!elmon_real.nanosleep, 0)) {
        elmon_resolve_real();
        if (!elmon_real.nanosleep)
            return seconds;
    }
    int saved = errno;
    struct timespec ts = {(time_t)seconds, 0}, left = {0, 0};
    if (sleep_out(&ts, &left) < 0)
        return (unsigned int)left.tv_sec;   /* glibc 2.36 truncates too */
    errno = saved;
    return 0;
}

/* A host that confines itself with seccomp (OpenSSH's pre-auth child,
 * vsftpd, anything built on libseccomp) forbids the calls libelmon makes:
 * the measurement ends here, before the filter exists, and nothing of
 * libelmon runs on any thread after it (elmon_confining). */
static int confines(long option, long mode)
{
    return option == PR_SET_SECCOMP && (mode == SECCOMP_MODE_STRICT || mode == SECCOMP_MODE_FILTER);
}

/* prctl is variadic; its arguments are at most five longs, all passed in
 * registers, so reading four with va_arg reads what the caller passed or
 * the registers' leftovers, as glibc's own prctl does. */
ELMON_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    ENSURE_REAL(prctl);
    if (__builtin_expect(confines(option, (long)a2), 0)) {
        int saved = errno;
        elmon_confining("prctl(PR_SET_SECCOMP)");
        errno = saved;
    }
    return elmon_real.prctl(option, a2, a3, a4, a5);
}

/* libuv closes with syscall(SYS_close) (uv__close_nocancel), so the loops
 * of Node and uvloop end only through here.  syscall() is variadic and
 * its callers pass as many arguments as the call needs: a C wrapper could
 * not pass them all on without reading past the caller's (ASan sees that
 * read).  So the entry is a few instructions of assembly: the four
 * numbers that close a descriptor go to elmon_syscall_fd (their arguments
 * are registers), everything else jumps to the C library's syscall with
 * every register as it came.  x86_64 only; elsewhere syscall() is not
 * interposed and such closes are not seen. */
#if defined(__x86_64__)
/* Before the constructor (another library's constructor calling syscall):
 * resolve on the spot; NULL when the C library has none. */
void *elmon_syscall_resolve(void)
{
    elmon_resolve_real();
    return (void *)__atomic_load_n(&elmon_real_syscall, __ATOMIC_ACQUIRE);
}

static long syscall_close_range(unsigned first, unsigned last, int flags)
{
    return elmon_real_syscall(SYS_close_range, (long)first, (long)last, (long)flags);
}

long elmon_syscall_fd(long nr, long a1, long a2, long a3)
{
    if (nr == SYS_seccomp || nr == SYS_prctl) {
        /* seccomp(op, flags, args): the two ops that install a filter. */
        if (nr == SYS_seccomp ? (a1 == SECCOMP_SET_MODE_STRICT || a1 == SECCOMP_SET_MODE_FILTER) : confines(a1, a2)) {
            int saved = errno;
            elmon_confining(nr == SYS_seccomp ? "seccomp()" : "prctl(PR_SET_SECCOMP)");
            errno = saved;
        }
        return elmon_real_syscall(nr, a1, a2, a3);
    }
    if (nr == SYS_close) {
        if (__builtin_expect(elmon_own_maybe((int)a1), 0) && elmon_own_ok((int)a1)) {
            errno = EBADF;
            return -1;
        }
        closing((int)a1);
        return elmon_real_syscall(nr, a1);
    }
    if (nr == SYS_close_range)
        return close_range_sparing(syscall_close_range, (unsigned)a1, (unsigned)a2, (int)a3);
    if (__builtin_expect(elmon_own_maybe((int)a2), 0) && a1 != a2 && elmon_same_process())
        elmon_own_taken((int)a2);
    long ret = elmon_real_syscall(nr, a1, a2, a3);   /* dup2 ignores the third */
    if (ret >= 0 && (nr == SYS_dup3 || a1 != a2))
        closing((int)a2);
    return ret;
}

long elmon_syscall_enosys(void)
{
    errno = ENOSYS;
    return -1;
}

__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, @function\n"
        "syscall:\n"
        "    endbr64\n"
        "    movq elmon_real_syscall(%rip), %r11\n"
        "    testq %r11, %r11\n"
        "    jz 2f\n"
        "1:  cmpq $3, %rdi\n"          /* SYS_close */
        "    je elmon_syscall_fd\n"
        "    cmpq $436, %rdi\n"        /* SYS_close_range */
        "    je elmon_syscall_fd\n"
        "    cmpq $33, %rdi\n"         /* SYS_dup2 */
        "    je elmon_syscall_fd\n"
        "    cmpq $292, %rdi\n"        /* SYS_dup3 */
        "    je elmon_syscall_fd\n"
        "    cmpq $317, %rdi\n"        /* SYS_seccomp */
        "    je elmon_syscall_fd\n"
        "    cmpq $157, %rdi\n"        /* SYS_prctl: PR_SET_SECCOMP only */
        "    jne 3f\n"
        "    cmpq $22, %rsi\n"         /* PR_SET_SECCOMP */
        "    je elmon_syscall_fd\n"
        "3:  jmp *%r11\n"
        "2:  pushq %rdi\n"
        "    pushq %rsi\n"
        "    pushq %rdx\n"
        "    pushq %rcx\n"
        "    pushq %r8\n"
        "    pushq %r9\n"
        "    subq $8, %rsp\n"          /* 16-byte alignment at the call */
        "    call elmon_syscall_resolve\n"
        "    addq $8, %rsp\n"
        "    popq %r9\n"
        "    popq %r8\n"
        "    popq %rcx\n"
        "    popq %rdx\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    movq %rax, %r11\n"
        "    testq %r11, %r11\n"
        "    jnz 1b\n"
        "    jmp elmon_syscall_enosys\n"
        ".size syscall, .-syscall\n");

_Static_assert(SYS_close == 3 && SYS_close_range == 436 && SYS_dup2 == 33 && SYS_dup3 == 292 &&
                   SYS_seccomp == 317 && SYS_prctl == 157 && PR_SET_SECCOMP == 22,
               "the numbers the syscall entry compares");
#endif
