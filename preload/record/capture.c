/*
 * Catching the culprit: when a span crosses ELMON_BLOCK_MS the watchdog
 * takes one capture of the blocked loop thread and the reports name the
 * code that blocked (docs/STACKS.md has the policy, docs/EVENTS.md the
 * fields).
 *
 * The capture, on the watchdog (elmon_capture_on_cross):
 *   1. the cause from /proc/self/task/TID (cause.c), no signal needed;
 *   2. the stack, one of
 *      - "signal": tgkill with libelmon's signal; the handler on the loop
 *        thread unwinds from its ucontext into the slot's preallocated
 *        addrs[] (unwind.c) and, in CPython, dumps the Python traceback
 *        into a pipe (pyframes.c).  Used when the thread runs user code or
 *        sits in a call the signal cannot disturb (SA_RESTART restarts it),
 *        and in CPython, which retries EINTR everywhere (PEP 475);
 *      - "proc": no signal; the thread is parked in a system call whose
 *        user rip and rsp /proc gives, and the watchdog unwinds its frozen
 *        stack itself.  Used for calls a signal would end with EINTR
 *        (nanosleep, poll, socket timeouts...) in hosts not known to
 *        retry, and as the fallback whenever the signal cannot be used;
 * The result is raw: return addresses, Python frames, /proc readings.  It
 * stays in the slot's struct elmon_capture until the next capture of that
 * slot; interpret/span.c turns it into the span's report (symbols,
 * culprit, cause), once per change of it, for both records of the span
 * (block_begin now, block when it ends).
 *
 * The handler touches only its own slot's capture, async-signal-safe code
 * and write(2); errno is saved and restored.  A signal that is not ours
 * (another sender, or libelmon's arriving late) is told apart by si_code,
 * si_pid and the slot's handshake state; a foreign one gets the default
 * action it would have had without libelmon.
 *
 * Threads: the watchdog (everything but the handler), loop threads (the
 * handler); the exiting thread reads a capture under its lock once the
 * watchdog has stopped.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "capture.h"
#include "cause.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "pyframes.h"
#include "turn.h"
#include "unwind.h"

/* The span that began at since is over: its thread began another turn, or
 * its loop's descriptor was closed.  A close changes no busy_since (the
 * thread cuts its busy period only at its next wait, which may come long
 * after, in code outside any loop), so a read that tests busy_since alone
 * kept frames from after the close: CI's test_pyframes stress run saw a
 * span whose Python frames were Thread.join, called after loop.close().
 * Async-signal-safe. */
static int span_over(struct elmon_loop *l, uint64_t since)
{
    return __atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE) != since ||
           elmon_word_kind(__atomic_load_n(&l->loop_word, __ATOMIC_ACQUIRE)) == ELMON_LOOP_NONE;
}

enum { STACKS_OFF, STACKS_NATIVE, STACKS_ALL };

/* The cause's CPU share is measured over at least this long from the
 * crossing: shorter, one scheduler tick decides it. */
#define CPU_SHARE_WINDOW_NS 5000000ull

/* Settings, read once by the watchdog at its first capture hook. */
static int opt_stacks = STACKS_ALL;
static int opt_signal;              /* 0 auto, -1 none, else the number asked for */
static uint64_t opt_per_min = 60;   /* 0: no cap */
static uint64_t opt_wait_ms = 10;
static int opt_loop_check = 1;      /* ELMON_PY_LOOP_CHECK */
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

/* Watchdog state. */
static int sig_no;                  /* installed signal, 0 none yet, -1 none usable */
static int sig_taken_warned;
static double tokens = -1;          /* rate limiter; -1 until first use */
static uint64_t tokens_ns;

/* Read by the handler. */
/* Our pid, for si_pid; reset in a fork child.  Written by the watchdog
 * before each signal while a foreign signal may be running the handler on a
 * loop thread, so both sides use relaxed atomics. */
static int sig_pid;
static struct r_debug *loader_debug;
static unsigned long n_stray;       /* late or unmatched signals of ours (atomic) */
static int n_walking;                /* handlers between RUNNING and DONE (atomic) */

static void load_config(void)
{
    static const char *const stacks[] = {"off", "native", "all", NULL};
    opt_stacks = elmon_env_enum("ELMON_STACKS", stacks, STACKS_ALL);
    opt_per_min = elmon_env_uint("ELMON_CAPTURES_PER_MIN", 60, 0, 600000, "captures per minute");
    opt_wait_ms = elmon_env_uint("ELMON_CAPTURE_WAIT_MS", 10, 1, 1000, "ms");
    opt_loop_check = elmon_env_bool("ELMON_PY_LOOP_CHECK", 1);
    const char *s = elmon_env_str("ELMON_SIGNAL");
    static const char *const words[] = {"auto", "none", NULL};
    int w = s ? elmon_parse_enum(s, words) : 0;
    uint64_t n;
    if (w >= 0) {
        opt_signal = w == 1 ? -1 : 0;
    } else if (elmon_parse_uint(s, (uint64_t)SIGRTMIN, (uint64_t)SIGRTMAX, &n) == 0) {
        opt_signal = (int)n;
    } else {
        char mem[256];
        struct elmon_buf b;
        elmon_buf_init(&b, mem, sizeof mem);
        elmon_buf_puts(&b, "ELMON_SIGNAL=");
        elmon_buf_quote_value(&b, s, 64);
        elmon_buf_printf(&b, " is not auto, none or a real-time signal number (%d to %d); using auto",
                         SIGRTMIN, SIGRTMAX);
        elmon_warn("%s", mem);
    }
    loader_debug = dlsym(RTLD_DEFAULT, "_r_debug");
}

static void config(void)
{
    pthread_once(&cfg_once, load_config);
}

/* ---- the handler (loop thread, async-signal-safe) ---- */

static void capture_handler(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    if (si->si_code != SI_TKILL || si->si_pid != __atomic_load_n(&sig_pid, __ATOMIC_RELAXED)) {
        /* Not ours: what SIG_DFL would have done. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
        errno = saved_errno;
        return;
    }
    struct elmon_loop *l = elmon_tls_loop;
    struct elmon_capture *c = l ? __atomic_load_n(&l->capture, __ATOMIC_ACQUIRE) : NULL;
    int expect = ELMON_H_ARMED;
    if (!c || !__atomic_compare_exchange_n(&c->hstate, &expect, ELMON_H_RUNNING, 0,
                                           __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_add_fetch(&n_stray, 1, __ATOMIC_RELAXED);
        errno = saved_errno;
        return;
    }
    /* Before anything else: a sleep wrapper (hot/wrap.c) that sees the
     * count move retries the sleep this signal cut short. */
    __atomic_add_fetch(&l->sig_hits, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&n_walking, 1, __ATOMIC_ACQ_REL);
    uint64_t t0 = elmon_mono_ns();
    /* The thread's CPU clock too: on a loaded machine the wall time counts
     * whatever preempted the handler, which is not what it cost. */
    struct timespec cpu0 = {0, 0}, cpu1 = {0, 0};
    int cpu_ok = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0) == 0;
    int flags = 0, n = 0;
    if (span_over(l, c->armed_busy_since)) {
        flags |= ELMON_HF_TURN_ENDED;
    } else {
        struct elmon_regs regs;
        elmon_regs_from_ucontext(&regs, ucv);
        /* The loader is changing the module list: our tables may not match
         * the code any more, so no native walk. */
        if (elmon_unwind_in_loader(regs.r[16]) ||
            (loader_debug && __atomic_load_n(&loader_debug->r_state, __ATOMIC_RELAXED) != RT_CONSISTENT))
            flags |= ELMON_HF_IN_LOADER;
        else
            n = elmon_unwind_regs(&regs, c->addrs, ELMON_CAPTURE_MAX_FRAMES);
    }
    c->n_addrs = n;
    c->hflags = flags;
    cpu_ok = cpu_ok && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1) == 0;
    uint64_t t1 = elmon_mono_ns();
    c->handler_ns = t1 - t0;
    /* A sandbox may refuse the CPU clock: then the figure is unknown. */
    c->handler_cpu_ns = cpu_ok ? (uint64_t)((cpu1.tv_sec - cpu0.tv_sec) * 1000000000LL + (cpu1.tv_nsec - cpu0.tv_nsec))
                               : UINT64_MAX;
    c->done_ns = t1;
    __atomic_sub_fetch(&n_walking, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&c->hstate, ELMON_H_DONE, __ATOMIC_RELEASE);
    errno = saved_errno;
}

/* ---- the signal ---- */

static int signal_free(int s)
{
    struct sigaction old;
    if (sigaction(s, NULL, &old) < 0)
        return 0;
    return !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
}

/* At the first capture that needs it: a real-time signal the host leaves
 * at its default, from SIGRTMAX down (applications and libraries tend to
 * take theirs from SIGRTMIN up). */
static int signal_install(void)
{
    if (sig_no)
        return sig_no;
    sig_no = -1;
    if (opt_signal < 0)
        return sig_no;
    int pick = 0;
    if (opt_signal > 0) {
        if (signal_free(opt_signal))
            pick = opt_signal;
        else
            elmon_warn("ELMON_SIGNAL=%d is in use by the host; picking another", opt_signal);
    }
    for (int s = SIGRTMAX; !pick && s >= SIGRTMIN; s--)
        if (signal_free(s))
            pick = s;
    if (!pick) {
        elmon_warn("no real-time signal is free; stacks only of threads parked in a system call");
        return sig_no;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = capture_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    if (sigaction(pick, &sa, NULL) < 0) {
        elmon_warn("cannot install a handler for signal %d (%s); no signalled captures", pick, strerror(errno));
        return sig_no;
    }
    sig_no = pick;
    return sig_no;
}

/* The host may have replaced our handler since; then the signal is its. */
static int signal_still_ours(void)
{
    struct sigaction cur;
    if (sigaction(sig_no, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == capture_handler)
        return 1;
    if (!sig_taken_warned++)
        elmon_warn("the host installed its own handler for signal %d; libelmon stops signalling", sig_no);
    return 0;
}

/* ---- the capture (watchdog) ---- */

static int rate_take(uint64_t now)
{
    if (!opt_per_min)
        return 1;
    if (tokens < 0) {
        tokens = (double)opt_per_min;
        tokens_ns = now;
    }
    tokens += (double)(now - tokens_ns) * (double)opt_per_min / 60e9;
    tokens_ns = now;
    if (tokens > (double)opt_per_min)
        tokens = (double)opt_per_min;
    if (tokens < 1)
        return 0;
    tokens -= 1;
    return 1;
}

static void note(struct elmon_capture *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct elmon_capture *c, const char *fmt, ...)
{
    size_t len = strlen(c->note);
    if (len + 3 >= sizeof c->note)
        return;
    if (len) {
        memcpy(c->note + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->note + len, sizeof c->note - len, fmt, ap);
    va_end(ap);
}

/* Which executable mapping each address of the stack was in, now, while
 * its code is still there: JIT code is freed and its memory reused, and
 * the symbolizer's module list (libdwfl's, from the loader and its own
 * reading of the maps) can give an address to a library it is not in. */
static void note_maps(struct elmon_capture *c)
{
    memset(c->maps, 0, sizeof c->maps);
    if (c->n_addrs <= 0)
        return;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        int whole = strchr(line, '\n') != NULL;
        if (!whole) {
            char rest[256];
            while (fgets(rest, sizeof rest, f) && !strchr(rest, '\n'))
                ;
        }
        unsigned long lo, hi, off, ino;
        char perms[8];
        int at = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %lu %n", &lo, &hi, perms, &off, &ino, &at) < 5 || !at ||
            perms[2] != 'x')
            continue;
        char *path = line + at;
        path[strcspn(path, "\n")] = 0;
        for (int i = 0; i < c->n_addrs && i < ELMON_CAPTURE_MAX_FRAMES; i++) {
            uintptr_t look = i > 0 ? c->addrs[i] - 1 : c->addrs[i];
            if (look < lo || look >= hi)
                continue;
            struct elmon_capture_map *m = &c->maps[i];
            /* A path cut by the line buffer is not a path to name. */
            if (!whole)
                continue;
            m->found = 1;
            m->start = lo;
            m->file_off = off;
            /* Anonymous: no path, or a name given with PR_SET_VMA_ANON_NAME. */
            int anon = !*path || strncmp(path, "[anon:", 6) == 0;
            m->path = anon ? NULL : i > 0 && c->maps[i - 1].found && c->maps[i - 1].path &&
                                            strcmp(c->maps[i - 1].path, path) == 0
                                        ? c->maps[i - 1].path
                                        : elmon_capture_str(c, path, strlen(path));
        }
    }
    fclose(f);
}

/* Unwind a thread parked in a system call from the rip and rsp /proc
 * shows.  Its stack does not move while it stays in the call; sig_lock
 * keeps the thread (and so its stack) from going away meanwhile.  The
 * frames are kept only if the thread is still in the same call after. */
static int unwind_parked(struct elmon_loop *l, struct elmon_capture *c, const struct elmon_task *t)
{
    if (t->nr < 0 || !t->sp || !t->pc || elmon_unwind_load() < 0)
        return 0;
    struct elmon_regs r;
    memset(&r, 0, sizeof r);
    r.r[7] = t->sp;
    r.r[16] = t->pc;
    r.valid = (1u << 7) | (1u << 16);
    int n = 0;
    pthread_mutex_lock(&l->sig_lock);
    if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) == ELMON_SLOT_ACTIVE)
        n = elmon_unwind_regs(&r, c->addrs, ELMON_CAPTURE_MAX_FRAMES);
    pthread_mutex_unlock(&l->sig_lock);
    struct elmon_task after;
    if (n && (elmon_task_read(c->tid, &after) < 0 || after.nr != t->nr || after.sp != t->sp ||
              after.pc != t->pc)) {
        note(c, "the thread left %s while its stack was read", elmon_syscall_name(t->nr) ? elmon_syscall_name(t->nr) : "its system call");
        n = 0;
    }
    c->n_addrs = n;
    if (n) {
        note_maps(c);
        c->how = "proc";
        c->stack_ms = (double)(elmon_mono_ns() - c->cross_ns) / 1e6;
    }
    return n;
}

/* The handler's answer is in: take it. */
static void take_answer(struct elmon_capture *c)
{
    c->pending = 0;
    c->how = "signal";
    c->stack_ms = (double)(c->done_ns - c->cross_ns) / 1e6;
    if (c->late_wait && !(c->hflags & ELMON_HF_TURN_ENDED))
        note(c, "answered %.0f ms after the signal, in the same span", (double)(c->done_ns - c->arm_ns) / 1e6);
    c->late_wait = 0;
    if (c->hflags & ELMON_HF_TURN_ENDED) {
        note(c, "the signal arrived after the span ended");
        c->n_addrs = 0;
    }
    if (c->hflags & ELMON_HF_IN_LOADER)
        note(c, "signal landed inside the dynamic loader; native stack skipped");
    note_maps(c);
    c->seq++;
    __atomic_store_n(&c->hstate, ELMON_H_IDLE, __ATOMIC_RELEASE);
}

/* A capture whose answer came after the watchdog stopped waiting. */
static void settle(struct elmon_capture *c)
{
    if (!c->pending)
        return;
    int st = __atomic_load_n(&c->hstate, __ATOMIC_ACQUIRE);
    if (st == ELMON_H_DONE) {
        pthread_mutex_lock(&c->lock);
        take_answer(c);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Why a thread in an interruptible system call is walked from /proc. */
static void note_not_signalled(struct elmon_capture *c, const struct elmon_task *t)
{
    const char *name = elmon_syscall_name(t->nr);
    note(c, "not signalled: %s would be interrupted", name ? name : "its system call");
}

/* The kernel function a thread waits in (/proc's wchan), "" when it is
 * running or the file says nothing. */
static void read_wchan(int tid, char *out, size_t n)
{
    char path[64];
    out[0] = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t k = read(fd, out, n - 1);
    close(fd);
    out[k > 0 ? k : 0] = 0;
    out[strcspn(out, "\n")] = 0;
    if (strcmp(out, "0") == 0)
        out[0] = 0;
}

/* Captures whose signal was left armed for a late answer: the watchdog's
 * own list (a slot's fields belong to its thread and the registry, and are
 * not read here). */
static struct elmon_capture *late_list[ELMON_MAX_LOOPS];
static int n_late;

static void late_add(struct elmon_capture *c)
{
    for (int i = 0; i < n_late; i++)
        if (late_list[i] == c)
            return;
    if (n_late < ELMON_MAX_LOOPS)
        late_list[n_late++] = c;
}

/* Every other slot's signal still armed for a late answer is called off
 * (its handler, once it runs, finds nothing armed), so that the unwind
 * tables can be rewritten: a handler that started meanwhile would read
 * them.  0, or -1 when one has started (its walk is running). */
static int disarm_late(struct elmon_capture *self)
{
    int rc = 0, kept = 0;
    for (int i = 0; i < n_late; i++) {
        struct elmon_capture *o = late_list[i];
        if (!o->late_wait)
            continue;
        if (o == self) {
            late_list[kept++] = o;
            continue;
        }
        int expect = ELMON_H_ARMED;
        if (__atomic_compare_exchange_n(&o->hstate, &expect, ELMON_H_IDLE, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&o->lock);
            o->pending = 0;
            o->late_wait = 0;
            note(o, "no answer before the next capture; none taken");
            o->seq++;
            pthread_mutex_unlock(&o->lock);
        } else if (expect == ELMON_H_RUNNING) {
            rc = -1;
            late_list[kept++] = o;
        }
    }
    n_late = kept;
    return rc;
}

/* t: the thread's state as last read; refreshed here when the thread
 * turned out to have entered a system call a signal would interrupt. */
static int signal_and_wait(struct elmon_loop *l, struct elmon_capture *c, uint64_t since, struct elmon_task *t)
{
    c->armed_busy_since = since;
    c->n_addrs = 0;
    c->hflags = 0;
    /* A handler the watchdog stopped waiting for (another slot's, mid-walk)
     * still reads the unwind tables: they are not rewritten under it. */
    if (disarm_late(c) < 0 || __atomic_load_n(&n_walking, __ATOMIC_ACQUIRE)) {
        note(c, "not signalled: an earlier stack walk is still running");
        return 0;
    }
    elmon_unwind_refresh();
    /* The decision to signal was taken on a read of /proc made before the
     * loads and table refreshes above, which can take milliseconds (the
     * first capture loads libunwind); the thread may have entered a sleep
     * or read since.  Look again right before the signal: what is left is
     * the few microseconds between this read and tgkill. */
    struct elmon_task now;
    if (elmon_task_read(c->tid, &now) == 0 && elmon_syscall_eintr(&now)) {
        *t = now;
        note_not_signalled(c, &now);
        return 0;
    }
    pid_t pid = getpid();
    __atomic_store_n(&sig_pid, pid, __ATOMIC_RELAXED);
    __atomic_store_n(&c->hstate, ELMON_H_ARMED, __ATOMIC_RELEASE);
    int rc = -ESRCH;
    pthread_mutex_lock(&l->sig_lock);
    if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) == ELMON_SLOT_ACTIVE && l->tid == c->tid)
        rc = syscall(SYS_tgkill, pid, c->tid, sig_no) == 0 ? 0 : -errno;
    pthread_mutex_unlock(&l->sig_lock);
    if (rc < 0) {
        __atomic_store_n(&c->hstate, ELMON_H_IDLE, __ATOMIC_RELEASE);
        note(c, "thread gone before the signal");
        return 0;
    }
    c->arm_ns = elmon_mono_ns();
    uint64_t deadline = c->arm_ns + opt_wait_ms * 1000000;
    while (__atomic_load_n(&c->hstate, __ATOMIC_ACQUIRE) != ELMON_H_DONE && elmon_mono_ns() < deadline) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    int st = __atomic_load_n(&c->hstate, __ATOMIC_ACQUIRE);
    if (st == ELMON_H_ARMED) {
        /* No answer yet.  Parked in a system call now: its stack is frozen,
         * and /proc gives where (the caller walks it).  Else the thread is
         * on the CPU inside the kernel (a read of a large cached file, a
         * page-fault storm): the signal is delivered when it returns to
         * user code, which is still this span, so the answer is taken when
         * the span's records are written (settle). */
        struct elmon_task late = {.state = '?', .nr = -2};
        int parked = elmon_task_read(c->tid, &late) == 0 && late.nr >= 0 && late.sp && late.pc;
        if (!parked) {
            char wchan[64];
            read_wchan(c->tid, wchan, sizeof wchan);
            c->pending = 1;
            c->late_wait = 1;
            late_add(c);
            c->how = "signal";
            note(c, "no answer to signal %d within %llu ms (%s, state %c%s%s): waiting for it while the span lasts",
                 sig_no, (unsigned long long)opt_wait_ms, late.nr == -1 ? "on the CPU" : "in the kernel",
                 late.state ? late.state : '?', wchan[0] ? ", in " : "", wchan);
            return 1;
        }
        int expect = ELMON_H_ARMED;
        if (__atomic_compare_exchange_n(&c->hstate, &expect, ELMON_H_IDLE, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            *t = late;
            note(c, "no answer to signal %d within %llu ms; the thread is in %s", sig_no, (unsigned long long)opt_wait_ms,
                 elmon_syscall_name(late.nr) ? elmon_syscall_name(late.nr) : "a system call");
            return 0;
        }
        st = expect;
    }
    int expect = st;
    if (expect == ELMON_H_RUNNING) {
        /* Mid-walk: take it when the span's records are written. */
        c->pending = 1;
        c->how = "signal";
        return 1;
    }
    take_answer(c);
    return 1;
}

static struct elmon_capture *capture_of(struct elmon_loop *l)
{
    struct elmon_capture *c = l->capture;
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    __atomic_store_n(&l->capture, c, __ATOMIC_RELEASE);
    return c;
}

void elmon_capture_on_cross(struct elmon_loop *l, uint64_t turn)
{
    config();
    if (opt_stacks == STACKS_OFF)
        return;
    uint64_t since = __atomic_load_n(&l->busy_since, __ATOMIC_ACQUIRE);
    uint64_t busy_ns = since ? elmon_ticks_to_ns(elmon_ticks() - since) : 0;
    uint64_t now = elmon_mono_ns();
    struct elmon_capture *c = capture_of(l);
    if (!c)
        return;
    settle(c);
    int st = __atomic_load_n(&c->hstate, __ATOMIC_ACQUIRE);
    /* An earlier span's signal still waiting for its answer is called off. */
    if (st == ELMON_H_ARMED && c->late_wait &&
        __atomic_compare_exchange_n(&c->hstate, &st, ELMON_H_IDLE, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        st = ELMON_H_IDLE;
    if (st == ELMON_H_RUNNING || st == ELMON_H_ARMED)
        return;   /* a handler of this slot is still walking: leave it be */

    pthread_mutex_lock(&c->lock);
    c->valid = 1;
    c->generation = l->generation;
    c->turn = turn;
    c->tid = l->tid;
    c->pending = 0;
    c->late_wait = 0;
    c->how = "none";
    c->n_addrs = c->n_py = 0;
    c->py_header = c->py_depth = c->py_truncated = c->py_partial = c->py_loop = c->py_unsure = 0;
    c->py_task_function = c->py_task_file = NULL;
    c->py_task_line = 0;
    c->py_read_ns = UINT64_MAX;
    c->note[0] = 0;
    elmon_arena_init(&c->arena, c->arena_mem, sizeof c->arena_mem);
    c->stack_ms = -1;
    c->have_task = 0;
    c->cpu_share = -1;
    c->span_ms = (double)busy_ns / 1e6;
    c->seq++;
    c->cross_ns = now - (busy_ns > elmon_block_ns ? busy_ns - elmon_block_ns : 0);

    struct elmon_task t0;
    if (elmon_task_read(c->tid, &t0) < 0) {
        note(c, "thread gone");
        goto out;
    }
    c->task = t0;
    c->have_task = 1;
    if (!rate_take(now)) {
        note(c, "capture cap reached (ELMON_CAPTURES_PER_MIN=%llu)", (unsigned long long)opt_per_min);
    } else {
        /* Python frames first, from the interpreter's memory (no signal):
         * the sooner after the crossing, the likelier the span is still
         * there to be read.  Frames read after it ended are another
         * moment's, and are dropped. */
        if (opt_stacks == STACKS_ALL && elmon_py_load()) {
            struct timespec cpu0, cpu1;
            int cpu_ok = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0) == 0;
            elmon_py_read(c, c->tid, __atomic_load_n(&l->pthread_id, __ATOMIC_RELAXED));
            if (cpu_ok && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1) == 0)
                c->py_read_ns = (uint64_t)((cpu1.tv_sec - cpu0.tv_sec) * 1000000000LL + (cpu1.tv_nsec - cpu0.tv_nsec));
            if (c->py_header && span_over(l, since)) {
                c->n_py = c->py_header = c->py_depth = c->py_truncated = c->py_partial = c->py_loop = 0;
                c->py_task_function = c->py_task_file = NULL;
                note(c, "the span ended while its Python frames were read");
            }
        }
        int sig = elmon_unwind_load() == 0 ? signal_install() : -1;
        int done = 0;
        if (sig <= 0) {
            note(c, "no signal available");
        } else if (t0.sigblk & (1ull << (sig - 1))) {
            note(c, "the thread blocks signal %d", sig);
        } else if (!signal_still_ours()) {
            note(c, "signal %d taken over by the host", sig);
        } else if (elmon_syscall_eintr(&t0)) {
            note_not_signalled(c, &t0);
        } else {
            done = signal_and_wait(l, c, since, &t0);
        }
        if (!done && t0.nr >= 0 && disarm_late(c) == 0 && !__atomic_load_n(&n_walking, __ATOMIC_ACQUIRE)) {
            elmon_unwind_refresh();
            unwind_parked(l, c, &t0);
        }
    }

    /* The CPU share over at least 5 ms from the first look. */
    struct elmon_task t1;
    uint64_t t1_ns = elmon_mono_ns();
    if (t1_ns - now < CPU_SHARE_WINDOW_NS) {
        uint64_t left = CPU_SHARE_WINDOW_NS - (t1_ns - now);
        struct timespec ts = {0, (long)left};
        nanosleep(&ts, NULL);
        t1_ns = elmon_mono_ns();
    }
    double share = -1;
    if (elmon_task_read(c->tid, &t1) == 0 && t1_ns > now && t1.run_ns >= t0.run_ns)
        share = (double)(t1.run_ns - t0.run_ns) / (double)(t1_ns - now);
    if (share > 1)
        share = 1;
    c->cpu_share = share;
out:
    pthread_mutex_unlock(&c->lock);
    unsigned long stray = __atomic_exchange_n(&n_stray, 0, __ATOMIC_RELAXED);
    if (stray)
        elmon_warn("%lu capture signal(s) arrived late and were ignored", stray);
}

int elmon_capture_loop_check(void)
{
    config();
    return opt_loop_check;
}

/* A capture whose answer came after the watchdog stopped waiting. */
struct elmon_capture *elmon_capture_lock_span(struct elmon_loop *l, uint64_t turn, int do_settle)
{
    struct elmon_capture *c = l ? __atomic_load_n(&l->capture, __ATOMIC_ACQUIRE) : NULL;
    if (!c)
        return NULL;
    if (do_settle)
        settle(c);
    pthread_mutex_lock(&c->lock);
    if (!c->valid || c->turn != turn || c->generation != l->generation) {
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    return c;
}

void elmon_capture_unlock(struct elmon_capture *c)
{
    pthread_mutex_unlock(&c->lock);
}

/* ---- fork ---- */

void elmon_capture_atfork_child(void)
{
    for (int i = 0; i < ELMON_MAX_LOOPS; i++) {
        struct elmon_capture *c = elmon_loops[i].capture;
        if (c) {
            pthread_mutex_init(&c->lock, NULL);
            c->hstate = ELMON_H_IDLE;
            c->pending = 0;
            c->late_wait = 0;
            c->valid = 0;
        }
    }
    __atomic_store_n(&sig_pid, 0, __ATOMIC_RELAXED);
    n_late = 0;
    tokens = -1;
    elmon_py_atfork_child();
}
