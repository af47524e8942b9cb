/*
 * elmon attach [--out DIR] [--block-ms MS] [--critical-ms MS] [--log DEST] PID
 *
 * Loads libelmon.so into a process already running (docs/ATTACH.md).  One
 * thread of PID, preferably one parked in a wait, is seized with ptrace
 * (PTRACE_SEIZE + PTRACE_INTERRUPT: no stop signal the host could see),
 * its registers saved, the settings file written where libelmon's
 * constructor looks, and the C library's dlopen(libelmon.so, RTLD_NOW)
 * called on it; the constructor's answer is read from libelmon's
 * elmon_attach_result.  A call returns to address 0; the fault that ends
 * it is caught here and never delivered.  The registers are put back
 * with an interrupted system call set to run again (no EINTR reaches the
 * host), and the thread is detached.  Nothing is left traced on any path.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "json.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
/* The kernel's restart codes (include/linux/errno.h, not in userspace). */
#define K_ERESTARTSYS 512
#define K_ERESTARTNOINTR 513
#define K_ERESTARTNOHAND 514
#define K_ERESTART_RESTARTBLOCK 516

#define AT "elmon attach: "

/* ---- /proc readings ---- */

static int read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t k = 0;
    while (k + 1 < n) {
        ssize_t r = read(fd, buf + k, n - 1 - k);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        k += (size_t)r;
    }
    buf[k] = 0;
    close(fd);
    return (int)k;
}

/* A numeric field of /proc/PID/status ("TracerPid:"), -1 when absent. */
static long status_field(pid_t pid, const char *name, int which)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) < 0)
        return -1;
    size_t k = strlen(name);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, k) == 0) {
            char *p = l + k;
            long v = -1;
            for (int i = 0; i <= which; i++)
                v = strtol(p, &p, 10);
            return v;
        }
    return -1;
}

/* The signals of tid pending and not blocked (thread's and process's). */
static int signal_pending(pid_t pid, pid_t tid)
{
    char path[96], buf[8192];
    unsigned long long pnd = 0, shd = 0, blk = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return 1;
    char *p;
    if ((p = strstr(buf, "\nSigPnd:")))
        pnd = strtoull(p + 8, NULL, 16);
    if ((p = strstr(buf, "\nShdPnd:")))
        shd = strtoull(p + 8, NULL, 16);
    if ((p = strstr(buf, "\nSigBlk:")))
        blk = strtoull(p + 8, NULL, 16);
    return ((pnd | shd) & ~blk) != 0;
}

struct mapping {
    uintptr_t start, end, off;
    char path[PATH_MAX];
};

/* Calls fn for each file mapping of pid; stops at fn's nonzero answer. */
static int each_mapping(pid_t pid, int (*fn)(const struct mapping *, void *), void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 256];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        struct mapping m;
        unsigned long s, e, o;
        int pos = 0;
        if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &s, &e, &o, &pos) < 3 || !pos)
            continue;
        char *p = line + pos;
        p[strcspn(p, "\n")] = 0;
        if (*p != '/')
            continue;
        m.start = s, m.end = e, m.off = o;
        snprintf(m.path, sizeof m.path, "%s", p);
        rc = fn(&m, arg);
    }
    fclose(f);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int is_libelmon(const struct mapping *m, void *arg)
{
    if (strcmp(base_name(m->path), "libelmon.so") != 0 && strcmp(m->path, (const char *)arg) != 0)
        return 0;
    snprintf((char *)arg, PATH_MAX, "%s", m->path);
    return 1;
}

/* The C library: glibc's libc.so.6 (or libc-2.x.so), musl's ld-musl. */
static int is_libc(const char *path)
{
    const char *b = base_name(path);
    return strcmp(b, "libc.so.6") == 0 || (strncmp(b, "libc-", 5) == 0 && strstr(b, ".so")) ||
           strncmp(b, "libc.musl-", 10) == 0 || strncmp(b, "ld-musl-", 8) == 0;
}

struct found {
    const char *want;     /* a path, or NULL for the C library */
    struct mapping m;     /* the mapping at file offset 0 */
    int ok;
};

static int find_object(const struct mapping *m, void *arg)
{
    struct found *f = arg;
    if (m->off != 0 || (f->want ? strcmp(m->path, f->want) != 0 : !is_libc(m->path)))
        return 0;
    f->m = *m;
    f->ok = 1;
    return 1;
}

/* ---- ELF: a dynamic symbol's address from the file on disk ---- */

/* st_value of the defined function or object `name` in the ELF file at path, and
 * the lowest PT_LOAD's page-aligned vaddr; 0, -ENOENT (no such symbol) or
 * -errno. */
static int elf_symbol(const char *path, const char *name, uint64_t *value, uint64_t *first_load)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return -ENOEXEC;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (img == MAP_FAILED)
        return -errno;
    int rc = -ENOEXEC;
    const Elf64_Ehdr *eh = (const void *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 || eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff > size || (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum ||
        eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        goto out;
    const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
    uint64_t low = UINT64_MAX;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < low)
            low = ph[i].p_vaddr & ~(uint64_t)0xfff;
    *first_load = low == UINT64_MAX ? 0 : low;
    const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
    rc = -ENOENT;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset > size || sh[i].sh_size > size - sh[i].sh_offset || strs->sh_offset > size ||
            strs->sh_size > size - strs->sh_offset)
            continue;
        const Elf64_Sym *sym = (const void *)(img + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof *sym;
        const char *str = (const char *)img + strs->sh_offset;
        for (size_t k = 0; k < n; k++) {
            if (sym[k].st_name >= strs->sh_size || sym[k].st_shndx == SHN_UNDEF || !sym[k].st_value ||
                (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC && ELF64_ST_TYPE(sym[k].st_info) != STT_OBJECT))
                continue;
            size_t room = strs->sh_size - sym[k].st_name;
            if (strnlen(str + sym[k].st_name, room) < room && strcmp(str + sym[k].st_name, name) == 0) {
                *value = sym[k].st_value;
                rc = 0;
                goto out;
            }
        }
    }
out:
    munmap((void *)img, size);
    return rc;
}

/* The address of name in pid's copy of the object found at f. */
static int remote_symbol(pid_t pid, const struct found *f, const char *name, uintptr_t *addr)
{
    char file[PATH_MAX + 64];
    uint64_t v, low;
    /* The mapped file itself, even if replaced on disk since (an upgrade);
     * else the path as the target sees it. */
    snprintf(file, sizeof file, "/proc/%d/map_files/%lx-%lx", (int)pid, (unsigned long)f->m.start,
             (unsigned long)f->m.end);
    int rc = elf_symbol(file, name, &v, &low);
    if (rc < 0 && rc != -ENOENT) {
        snprintf(file, sizeof file, "/proc/%d/root%s", (int)pid, f->m.path);
        rc = elf_symbol(file, name, &v, &low);
    }
    if (rc == 0)
        *addr = f->m.start - low + v;
    return rc;
}

/* ---- the traced thread ---- */

struct tracee {
    pid_t pid, tid;
    int memfd;
    struct user_regs_struct regs;     /* as seized */
    struct user_fpregs_struct fpregs;
    unsigned char xstate[16384];
    struct iovec xiov;
    int have_x;
    int restart;                      /* 1: the syscall is rewound to run again */
};

static int wait_stop(pid_t tid, int *status)
{
    for (;;) {
        pid_t r = waitpid(tid, status, __WALL);
        if (r == tid)
            return WIFSTOPPED(*status) ? 0 : -ESRCH;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int is_wait_syscall(long nr)
{
    switch (nr) {
    case SYS_epoll_wait: case SYS_epoll_pwait: case 441 /* epoll_pwait2 */: case SYS_poll: case SYS_ppoll:
    case SYS_select: case SYS_pselect6: case SYS_nanosleep: case SYS_clock_nanosleep:
        return 1;
    }
    return 0;
}

/* The calls that end with EINTR at any stop, handler or not (signal(7):
 * epoll_wait, epoll_pwait, semop, semtimedop, sigtimedwait, io_getevents,
 * and socket calls with a timeout); the kernel restarts none of them.
 * EINTR means nothing was done, so running the call again is what the host
 * would have seen without the stop.  Only when no signal of the host's is
 * pending: then the EINTR is the stop's, not a signal's.  (connect is not
 * here: an interrupted connect goes on in the background.) */
static int eintr_at_stop(long nr)
{
    switch (nr) {
    case SYS_epoll_wait: case SYS_epoll_pwait: case 441 /* epoll_pwait2 */: case SYS_semop: case SYS_semtimedop:
    case SYS_rt_sigtimedwait: case SYS_io_getevents: case SYS_recvfrom: case SYS_recvmsg: case SYS_sendto:
    case SYS_sendmsg: case SYS_accept: case SYS_accept4:
        return 1;
    }
    return 0;
}

/* The registers the thread resumes with: an interrupted system call
 * rewound to its syscall instruction with its number back in rax, as the
 * kernel's signal code does when no handler runs (arch/x86/kernel/signal.c,
 * arch_do_signal_or_restart); orig_rax -1 so that the kernel does not
 * rewind it a second time. */
static void resume_regs(struct tracee *t, struct user_regs_struct *r)
{
    *r = t->regs;
    t->restart = 0;
    long nr = (long)t->regs.orig_rax, ax = (long)t->regs.rax;
    if (nr < 0)
        return;
    long again;
    switch (-ax) {
    case K_ERESTARTSYS: case K_ERESTARTNOINTR: case K_ERESTARTNOHAND:
        again = nr;
        break;
    case K_ERESTART_RESTARTBLOCK:
        again = SYS_restart_syscall;
        break;
    case EINTR:
        if (!eintr_at_stop(nr) || signal_pending(t->pid, t->tid))
            return;
        again = nr;
        break;
    default:
        return;
    }
    unsigned char insn[2];
    if (pread(t->memfd, insn, 2, (off_t)(t->regs.rip - 2)) != 2 ||
        !((insn[0] == 0x0f && insn[1] == 0x05) || (insn[0] == 0xcd && insn[1] == 0x80)))
        return;
    r->rax = (unsigned long long)again;
    r->rip -= 2;
    r->orig_rax = (unsigned long long)-1;
    t->restart = 1;
}

static int put_back(struct tracee *t)
{
    struct user_regs_struct r;
    resume_regs(t, &r);
    int rc = 0;
    if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
        rc = -errno;
    ptrace(PTRACE_SETFPREGS, t->tid, 0, &t->fpregs);
    if (t->have_x)
        ptrace(PTRACE_SETREGSET, t->tid, (void *)NT_X86_XSTATE, &t->xiov);
    return rc;
}

static int save(struct tracee *t)
{
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0 || ptrace(PTRACE_GETFPREGS, t->tid, 0, &t->fpregs) < 0)
        return -errno;
    t->xiov.iov_base = t->xstate;
    t->xiov.iov_len = sizeof t->xstate;
    t->have_x = ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_X86_XSTATE, &t->xiov) == 0;
    return 0;
}

/* Stops tid with PTRACE_INTERRUPT; 0 at the stop, or -errno (the thread
 * exited).  A signal meant for the host that arrives first is passed on. */
static int interrupt(struct tracee *t)
{
    if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
        return -errno;
    for (int i = 0; i < 64; i++) {
        int st;
        int rc = wait_stop(t->tid, &st);
        if (rc < 0)
            return rc;
        if ((st >> 16) == PTRACE_EVENT_STOP)
            return 0;
        /* A signal-delivery-stop: the host's signal, delivered as usual. */
        if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)WSTOPSIG(st)) < 0)
            return -errno;
    }
    return -EAGAIN;
}

static pid_t choose_thread(pid_t pid);

/* Stops a thread where it is safe to run the loader on it: inside a wait
 * (holding no lock of the C library's).  t->tid is seized already; when
 * it is not waiting it is let go exactly as it was, and the thread waiting
 * now (or the main thread) is seized in its place 5 ms later, for about
 * 2 s.  0 with t->tid stopped; -EBUSY (nothing traced any more), or
 * -errno with t->tid seized and running. */
static int stop_in_wait(struct tracee *t)
{
    for (int i = 0; i < 400; i++) {
        int rc = interrupt(t);
        if (rc < 0)
            return rc;
        if ((rc = save(t)) < 0)
            return rc;
        if ((long)t->regs.orig_rax >= 0 && is_wait_syscall((long)t->regs.orig_rax))
            return 0;
        /* Not in a wait: let it go on exactly as it was. */
        if ((rc = put_back(t)) < 0)
            return rc;
        ptrace(PTRACE_DETACH, t->tid, 0, 0);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        for (;;) {
            t->tid = choose_thread(t->pid);
            if (ptrace(PTRACE_SEIZE, t->tid, 0, 0) == 0)
                break;
            if (errno != ESRCH || t->tid == t->pid)
                return -EBUSY;   /* nothing traced */
        }
    }
    if (interrupt(t) == 0 && save(t) == 0)
        put_back(t);
    ptrace(PTRACE_DETACH, t->tid, 0, 0);
    return -EBUSY;
}

static int write_mem(struct tracee *t, uintptr_t at, const void *p, size_t n)
{
    return pwrite(t->memfd, p, n, (off_t)at) == (ssize_t)n ? 0 : -EIO;
}

/* Runs fn(a1, a2) on the thread, on its stack below the red zone, with
 * the string s (when not NULL) copied there as a1.  The call returns to
 * address 0; that fault is the end.  *ret its rax; -errno, or -EFAULT when
 * the call itself faulted elsewhere (the thread is put back either way by
 * the caller). */
static int call_on(struct tracee *t, uintptr_t fn, const char *s, unsigned long a1, unsigned long a2,
                   unsigned long *ret)
{
    struct user_regs_struct r;
    resume_regs(t, &r);
    uintptr_t sp = (uintptr_t)t->regs.rsp - 128;
    if (s) {
        size_t n = strlen(s) + 1;
        sp = (sp - n) & ~(uintptr_t)15;
        if (write_mem(t, sp, s, n) < 0)
            return -EIO;
        a1 = sp;
    }
    sp = (sp & ~(uintptr_t)15) - 8;   /* at entry rsp+8 is 16-byte aligned */
    uint64_t zero = 0;
    if (write_mem(t, sp, &zero, 8) < 0)
        return -EIO;
    r.rsp = sp;
    r.rip = fn;
    r.rdi = a1;
    r.rsi = a2;
    r.rax = 0;
    r.orig_rax = (unsigned long long)-1;   /* no restart logic on these registers */
    if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0 || ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
        return -errno;
    for (;;) {
        int st;
        int rc = wait_stop(t->tid, &st);
        if (rc < 0)
            return rc;
        int sig = WSTOPSIG(st);
        if ((st >> 16) == PTRACE_EVENT_STOP) {   /* a group stop of the host's: keep going */
            if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
                return -errno;
            continue;
        }
        if (sig == SIGSEGV) {
            struct user_regs_struct out;
            if (ptrace(PTRACE_GETREGS, t->tid, 0, &out) < 0)
                return -errno;
            if (out.rip != 0)
                return -EFAULT;
            *ret = out.rax;
            return 0;
        }
        /* The host's signal during the call: delivered (its handler runs
         * on the stack below ours and returns into the call). */
        if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) < 0)
            return -errno;
    }
}

static int remote_call(struct tracee *t, uintptr_t fn, const char *s, unsigned long a2, unsigned long *ret)
{
    return call_on(t, fn, s, 0, a2, ret);
}

static int remote_call_handle(struct tracee *t, uintptr_t fn, unsigned long a1, unsigned long *ret)
{
    return call_on(t, fn, NULL, a1, 0, ret);
}

static int read_string(struct tracee *t, uintptr_t at, char *out, size_t n)
{
    ssize_t k = pread(t->memfd, out, n - 1, (off_t)at);
    if (k <= 0)
        return -EIO;
    out[k] = 0;
    return 0;
}

/* ---- the settings file ---- */

/* pid as the target sees itself (the last NSpid field: its own PID
 * namespace), for the file's name. */
static long own_view_pid(pid_t pid)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) < 0)
        return pid;
    char *p = strstr(buf, "\nNSpid:");
    if (!p)
        return pid;
    long v = pid;
    for (p += 7; *p && *p != '\n';) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p)
            break;
        v = x;
        p = end;
    }
    return v;
}

/* The settings (NAME=VALUE lines) into the target's own /tmp (through
 * /proc/PID/root, so a private /tmp is the target's), where libelmon's
 * constructor looks: /tmp/elmon-attach-UID/PID.settings, UID the target's
 * effective user and PID its own view of itself.  The directory is made
 * 0700 or must already be a directory of UID's closed to others; the file
 * is made with O_EXCL|O_NOFOLLOW, mode 0600, and both belong to UID.
 * full gets the path elmon removes. */
static int write_settings(pid_t pid, uid_t uid, gid_t gid, const char *text, char *full, size_t fn)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "/proc/%d/root/tmp/elmon-attach-%u", (int)pid, (unsigned)uid);
    if (mkdir(dir, 0700) == 0) {
        if (geteuid() != uid && chown(dir, uid, gid) < 0) {
            int e = errno;
            rmdir(dir);
            return -e;
        }
    } else if (errno != EEXIST) {
        return -errno;
    }
    struct stat st;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077))
        return -EPERM;   /* planted, or another user's */
    snprintf(full, fn, "%s/%ld.settings", dir, own_view_pid(pid));
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(full) == 0)   /* left by an elmon killed mid-attach */
        fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        full[0] = 0;
        return -errno;
    }
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -EIO;
    if (!rc && geteuid() != uid && fchown(fd, uid, gid) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static void remove_settings(const char *full)
{
    if (full[0])
        unlink(full);
}

/* ---- choosing the thread ---- */

static long task_syscall(pid_t pid, pid_t tid)
{
    char path[96], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    if (read_small(path, buf, sizeof buf) <= 0 || buf[0] < '0' || buf[0] > '9')
        return -1;
    return strtol(buf, NULL, 10);
}

/* The main thread when it waits, else the first thread that waits, else
 * the main thread. */
static pid_t choose_thread(pid_t pid)
{
    if (is_wait_syscall(task_syscall(pid, pid)))
        return pid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    pid_t pick = pid;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0 && is_wait_syscall(task_syscall(pid, tid))) {
            pick = tid;
            break;
        }
    }
    if (d)
        closedir(d);
    return pick;
}

/* ---- libelmon already in the process ---- */

/* libelmon's mapping in pid (any path named libelmon.so, or lib). */
static int find_libelmon(pid_t pid, const char *lib, struct found *f)
{
    char seen[PATH_MAX];
    snprintf(seen, sizeof seen, "%s", lib);
    if (each_mapping(pid, is_libelmon, seen) != 1)
        return -ENOENT;
    f->want = NULL;
    f->ok = 0;
    struct found g = {.want = seen};
    if (each_mapping(pid, find_object, &g) < 0 || !g.ok)
        return -ENOENT;
    *f = g;
    snprintf(f->m.path, sizeof f->m.path, "%s", seen);
    return 0;
}

/* elmon_attach_state of the libelmon mapped in pid (process/attach.h):
 * 0 preloaded or loaded otherwise, 1 attached, 2 detached; -1 unknown
 * (an older libelmon.so). */
static int attach_state(pid_t pid, const struct found *f)
{
    uintptr_t at;
    if (remote_symbol(pid, f, "elmon_attach_state", &at) < 0)
        return -1;
    char mem[64];
    snprintf(mem, sizeof mem, "/proc/%d/mem", (int)pid);
    int fd = open(mem, O_RDONLY | O_CLOEXEC), v = -1;
    if (fd >= 0) {
        if (pread(fd, &v, sizeof v, (off_t)at) != (ssize_t)sizeof v)
            v = -1;
        close(fd);
    }
    return v;
}

/* Seizes a thread of pid parked in a wait and stops it there (stop_in_wait):
 * ELMON_EXIT_OK with *out, or the exit status after one line on stderr,
 * with nothing left traced. */
static int borrow(pid_t pid, struct tracee **out)
{
    struct tracee *t = calloc(1, sizeof *t);
    if (!t)
        return ELMON_EXIT_FAILURE;
    t->pid = pid;
    t->tid = choose_thread(pid);
    t->memfd = -1;
    if (ptrace(PTRACE_SEIZE, t->tid, 0, 0) < 0) {
        int e = errno;
        free(t);
        if (e == ESRCH) {
            fprintf(stderr, AT "%d: no such process\n", (int)pid);
            return ELMON_EXIT_NO_PROCESS;
        }
        if (e == EPERM && status_field(pid, "TracerPid:", 0) > 0) {
            fprintf(stderr, AT "%d is already traced by process %ld; detach it first\n", (int)pid,
                    status_field(pid, "TracerPid:", 0));
            return ELMON_EXIT_TRACED;
        }
        char scope[16] = "";
        read_small("/proc/sys/kernel/yama/ptrace_scope", scope, sizeof scope);
        scope[strcspn(scope, "\n")] = 0;
        fprintf(stderr, AT "%d: not permitted to trace it (%s)%s%s%s\n", (int)pid, strerror(e),
                status_field(pid, "Uid:", 1) != (long)geteuid() && geteuid() != 0 ? ": another user's process" : "",
                scope[0] && scope[0] != '0' ? "; kernel.yama.ptrace_scope is " : "", scope[0] != '0' ? scope : "");
        return ELMON_EXIT_NOT_PERMITTED;
    }
    char mem[64];
    snprintf(mem, sizeof mem, "/proc/%d/mem", (int)pid);
    t->memfd = open(mem, O_RDWR | O_CLOEXEC);
    int rc = t->memfd < 0 ? -errno : stop_in_wait(t);
    if (rc == 0) {
        *out = t;
        return ELMON_EXIT_OK;
    }
    if (rc == -EBUSY)
        fprintf(stderr, AT "%d: no thread was parked in a wait in 2 s; libelmon is loaded only by a thread that "
                        "waits (nothing changed)\n", (int)pid);
    else
        fprintf(stderr, AT "%d: cannot stop thread %d: %s\n", (int)pid, (int)t->tid, strerror(-rc));
    if (rc != -EBUSY) {
        /* Seized and running: PTRACE_DETACH needs a stop. */
        if (interrupt(t) == 0 && save(t) == 0)
            put_back(t);
        ptrace(PTRACE_DETACH, t->tid, 0, 0);
    }
    if (t->memfd >= 0)
        close(t->memfd);
    free(t);
    return ELMON_EXIT_ATTACH_FAILED;
}

/* The thread's registers back (the wait rewound), detached, freed. */
static void give_back(struct tracee *t)
{
    int rc = put_back(t);
    if (rc < 0)
        fprintf(stderr, AT "%d: cannot restore thread %d's registers: %s\n", (int)t->pid, (int)t->tid, strerror(-rc));
    ptrace(PTRACE_DETACH, t->tid, 0, 0);
    if (t->memfd >= 0)
        close(t->memfd);
    free(t);
}

/* ---- the command ---- */

static int parse_pid(const char *s, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v <= 0 || v > INT32_MAX)
        return -1;
    *out = (pid_t)v;
    return 0;
}

static int add_setting(char *text, size_t n, const char *name, const char *value)
{
    if (strchr(value, '\n')) {
        fprintf(stderr, AT "%s: a value cannot hold a newline\n", name);
        return -1;
    }
    size_t k = strlen(text);
    int w = snprintf(text + k, n - k, "%s=%s\n", name, value);
    if (w < 0 || (size_t)w >= n - k) {
        fprintf(stderr, AT "%s: value too long\n", name);
        return -1;
    }
    return 0;
}

int cmd_attach(int argc, char **argv)
{
    enum { OPT_OUT = 256, OPT_BLOCK, OPT_CRITICAL, OPT_LOG };
    static const struct option opts[] = {
        {"out", required_argument, 0, OPT_OUT},
        {"block-ms", required_argument, 0, OPT_BLOCK},
        {"critical-ms", required_argument, 0, OPT_CRITICAL},
        {"log", required_argument, 0, OPT_LOG},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out_want = NULL, *log = NULL;
    double block = 0, critical = 0;
    int have_block = 0, have_critical = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: out_want = optarg; break;
        case OPT_LOG: log = optarg; break;
        case OPT_BLOCK:
        case OPT_CRITICAL: {
            double v;
            if (parse_ms(c == OPT_BLOCK ? "--block-ms" : "--critical-ms", optarg, &v) < 0)
                return ELMON_EXIT_USAGE;
            if (v + 0.5 < 1) {
                fprintf(stderr, "elmon: %s: at least 1 ms\n", c == OPT_BLOCK ? "--block-ms" : "--critical-ms");
                return ELMON_EXIT_USAGE;
            }
            *(c == OPT_BLOCK ? &block : &critical) = v;
            *(c == OPT_BLOCK ? &have_block : &have_critical) = 1;
            break;
        }
        case 'h': usage("attach"); return ELMON_EXIT_OK;
        default: fprintf(stderr, "Try 'elmon attach --help'.\n"); return ELMON_EXIT_USAGE;
        }
    }
    pid_t pid;
    if (optind + 1 != argc || parse_pid(argv[optind], &pid) < 0) {
        fprintf(stderr, AT "one PID expected\nTry 'elmon attach --help'.\n");
        return ELMON_EXIT_USAGE;
    }

    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (access(path, F_OK) < 0 || status_field(pid, "Tgid:", 0) != pid) {
        fprintf(stderr, AT "%d: no such process\n", (int)pid);
        return ELMON_EXIT_NO_PROCESS;
    }
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int mfd = open(path, O_RDONLY | O_CLOEXEC);
    if (mfd < 0 && (errno == EACCES || errno == EPERM)) {
        fprintf(stderr, AT "%d: not permitted to read its memory map: another user's process?\n", (int)pid);
        return ELMON_EXIT_NOT_PERMITTED;
    }
    if (mfd >= 0)
        close(mfd);
    char lib[PATH_MAX];
    if (find_library(lib, sizeof lib) < 0) {
        fprintf(stderr, AT "libelmon.so not found next to elmon (set ELMON_LIBRARY)\n");
        return ELMON_EXIT_FAILURE;
    }
    struct found mine;
    if (find_libelmon(pid, lib, &mine) == 0) {
        if (attach_state(pid, &mine) == 2) {
            fprintf(stderr, AT "libelmon was detached from %d (%s); it cannot be attached again before %d restarts\n",
                    (int)pid, esc(mine.m.path), (int)pid);
            return ELMON_EXIT_ATTACH_FAILED;
        }
        fprintf(stderr, AT "libelmon is already active in %d (%s); nothing changed\n", (int)pid, esc(mine.m.path));
        return ELMON_EXIT_OK;
    }
    long confined = status_field(pid, "Seccomp:", 0);
    if (confined > 0) {
        fprintf(stderr, AT "%d is confined by seccomp (mode %ld): libelmon's own calls could be refused or kill it; "
                        "not attached\n", (int)pid, confined);
        return ELMON_EXIT_NOT_PERMITTED;
    }
    long tracer = status_field(pid, "TracerPid:", 0);
    if (tracer > 0) {
        fprintf(stderr, AT "%d is already traced by process %ld (a debugger or strace); detach it first\n", (int)pid,
                tracer);
        return ELMON_EXIT_TRACED;
    }
    struct found libc = {0};
    if (each_mapping(pid, find_object, &libc) < 0 || !libc.ok) {
        fprintf(stderr, AT "%d has no C library mapped (statically linked?); libelmon cannot be loaded into it\n",
                (int)pid);
        return ELMON_EXIT_NO_LIBC;
    }
    uintptr_t dlopen_at = 0, dlerror_at = 0;
    int rc = remote_symbol(pid, &libc, "dlopen", &dlopen_at);
    if (rc == -EACCES || rc == -EPERM) {
        fprintf(stderr, AT "%d: not permitted to read its C library (%s): not yours?\n", (int)pid, strerror(-rc));
        return ELMON_EXIT_NOT_PERMITTED;
    }
    if (rc < 0) {
        fprintf(stderr, AT "%d: no dlopen in its C library %s (%s): glibc before 2.34 keeps it in libdl\n", (int)pid,
                esc(libc.m.path), strerror(-rc));
        return ELMON_EXIT_NO_DLOPEN;
    }
    remote_symbol(pid, &libc, "dlerror", &dlerror_at);

    /* The settings: what `elmon run` would have put in the environment. */
    char text[PATH_MAX * 3] = "", dir[PATH_MAX + 64] = "", pattern[PATH_MAX * 2];
    char num[32];
    if (have_block) {
        snprintf(num, sizeof num, "%.0f", block);
        if (add_setting(text, sizeof text, "ELMON_BLOCK_MS", num) < 0)
            return ELMON_EXIT_USAGE;
    }
    if (have_critical) {
        snprintf(num, sizeof num, "%.0f", critical);
        if (add_setting(text, sizeof text, "ELMON_CRITICAL_MS", num) < 0)
            return ELMON_EXIT_USAGE;
    }
    if (log) {
        /* A relative PATH is elmon's, not the host's working directory. */
        char abs_log[PATH_MAX * 2];
        if (strcmp(log, "stderr") && strcmp(log, "off") && log[0] != '/') {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) {
                fprintf(stderr, AT "--log %s: the current directory is unknown\n", esc(log));
                return ELMON_EXIT_USAGE;
            }
            snprintf(abs_log, sizeof abs_log, "%s/%s", cwd, log);
            log = abs_log;
        }
        if (add_setting(text, sizeof text, "ELMON_LOG", log) < 0)
            return ELMON_EXIT_USAGE;
    }
    int created_out = 0;
    char events_dir[PATH_MAX] = "";
    {
        struct stat before;
        int existed = out_want && stat(out_want, &before) == 0;
        char outdir[PATH_MAX], abs[PATH_MAX];
        if ((rc = make_out_dir(out_want, outdir, sizeof outdir)) < 0) {
            fprintf(stderr, AT "cannot create the events directory %s: %s\n", esc(out_want ? out_want : outdir),
                    strerror(-rc));
            return ELMON_EXIT_FAILURE;
        }
        created_out = !existed;
        if (!realpath(outdir, abs) || events_pattern(abs, pattern, sizeof pattern) < 0 ||
            add_setting(text, sizeof text, "ELMON_EVENTS", pattern) < 0)
            return ELMON_EXIT_FAILURE;
        if (created_out) {
            uid_t u = (uid_t)status_field(pid, "Uid:", 1);
            gid_t g = (gid_t)status_field(pid, "Gid:", 1);
            if (geteuid() == 0 && u != 0 && chown(abs, u, g) < 0)
                fprintf(stderr, AT "%s: cannot give it to uid %u: %s\n", esc(abs), (unsigned)u, strerror(errno));
        }
        snprintf(events_dir, sizeof events_dir, "%s", abs);
    }

    struct tracee *t;
    int status = borrow(pid, &t);
    if (status != ELMON_EXIT_OK) {
        if (created_out)
            rmdir(events_dir);
        return status;
    }
    status = ELMON_EXIT_ATTACH_FAILED;
    uid_t uid = (uid_t)status_field(pid, "Uid:", 1);
    gid_t gid = (gid_t)status_field(pid, "Gid:", 1);
    if ((rc = write_settings(pid, uid, gid, text, dir, sizeof dir)) < 0) {
        fprintf(stderr, AT "cannot write the settings file %s: %s\n", dir[0] ? esc(dir) : "", strerror(-rc));
        goto restore;
    }
    unsigned long handle = 0;
    if ((rc = remote_call(t, dlopen_at, lib, 2 /* RTLD_NOW */, &handle)) < 0) {
        fprintf(stderr, AT "%d: the call of dlopen failed: %s\n", (int)pid, strerror(-rc));
        goto restore;
    }
    if (!handle) {
        unsigned long msg = 0;
        char why[512] = "";
        if (dlerror_at && remote_call(t, dlerror_at, NULL, 0, &msg) == 0 && msg)
            read_string(t, msg, why, sizeof why);
        fprintf(stderr, AT "%d: dlopen(%s) failed: %s\n", (int)pid, esc(lib), why[0] ? esc(why) : "(no message)");
        goto restore;
    }
    /* The constructor's answer (process/attach.h): dlopen's handle is the
     * link_map, whose first field is the load bias. */
    uint64_t bias = 0, v, vs, low;
    int started = 0, state = 0;
    if (pread(t->memfd, &bias, 8, (off_t)handle) != 8 || elf_symbol(lib, "elmon_attach_result", &v, &low) < 0 ||
        elf_symbol(lib, "elmon_attach_state", &vs, &low) < 0 ||
        pread(t->memfd, &started, sizeof started, (off_t)(bias + v)) != (ssize_t)sizeof started ||
        pread(t->memfd, &state, sizeof state, (off_t)(bias + vs)) != (ssize_t)sizeof state) {
        fprintf(stderr, AT "%d: libelmon's elmon_attach_result cannot be read (an older libelmon.so?)\n", (int)pid);
        goto restore;
    }
    if (state != 1 && started >= 0)
        started = -ENOENT;   /* the constructor did not find the settings file */
    long r = (long)(int)started;
    if (r < 0) {
        fprintf(stderr, AT "%d: libelmon did not start: %s; unloaded again\n", (int)pid,
                r == -ECANCELED ? "ELMON_DISABLE is set in its environment, or it runs setuid (AT_SECURE)"
                                : strerror((int)-r));
        /* Nothing was redirected (the constructor fails only before it
         * stores into a slot): the library can go. */
        uintptr_t dlclose_at = 0;
        unsigned long ignored;
        if (remote_symbol(pid, &libc, "dlclose", &dlclose_at) == 0)
            remote_call_handle(t, dlclose_at, handle, &ignored);
    } else {
        fprintf(stderr, "elmon: attached to %d (thread %d): %ld call sites now reach libelmon; events in %s/\n",
                (int)pid, (int)t->tid, r, esc(events_dir));
        status = ELMON_EXIT_OK;
    }
restore:
    give_back(t);
    remove_settings(dir);
    if (status != ELMON_EXIT_OK && created_out)
        rmdir(events_dir);   /* only when still empty */
    return status;
}

/*
 * elmon detach PID: the calls elmon attach redirected are put back and the
 * measurement ends as at exit (spans closed, summaries written), on a
 * thread borrowed the same way.  libelmon stays mapped (a thread may be
 * inside one of its wrappers) and makes no call after it.
 */
int cmd_detach(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage("detach");
            return ELMON_EXIT_OK;
        }
        fprintf(stderr, "Try 'elmon detach --help'.\n");
        return ELMON_EXIT_USAGE;
    }
    pid_t pid;
    if (optind + 1 != argc || parse_pid(argv[optind], &pid) < 0) {
        fprintf(stderr, "elmon detach: one PID expected\nTry 'elmon detach --help'.\n");
        return ELMON_EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (access(path, F_OK) < 0 || status_field(pid, "Tgid:", 0) != pid) {
        fprintf(stderr, "elmon detach: %d: no such process\n", (int)pid);
        return ELMON_EXIT_NO_PROCESS;
    }
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int mfd = open(path, O_RDONLY | O_CLOEXEC);
    if (mfd < 0 && (errno == EACCES || errno == EPERM)) {
        fprintf(stderr, "elmon detach: %d: not permitted to read its memory map: another user's process?\n", (int)pid);
        return ELMON_EXIT_NOT_PERMITTED;
    }
    if (mfd >= 0)
        close(mfd);
    char lib[PATH_MAX] = "";
    find_library(lib, sizeof lib);
    struct found mine;
    if (find_libelmon(pid, lib, &mine) < 0) {
        fprintf(stderr, "elmon detach: libelmon is not loaded in %d; nothing to detach\n", (int)pid);
        return ELMON_EXIT_FAILURE;
    }
    int state = attach_state(pid, &mine);
    if (state == 2) {
        fprintf(stderr, "elmon detach: libelmon is already detached from %d; nothing changed\n", (int)pid);
        return ELMON_EXIT_OK;
    }
    if (state != 1) {
        fprintf(stderr, "elmon detach: %d runs libelmon from its start (LD_PRELOAD), not attached: only what elmon "
                        "attach loaded can be detached\n", (int)pid);
        return ELMON_EXIT_FAILURE;
    }
    long confined = status_field(pid, "Seccomp:", 0);
    if (confined > 0) {
        fprintf(stderr, "elmon detach: %d confined itself with seccomp (mode %ld) since the attach; libelmon stopped "
                        "measuring then, and its slots stay (mprotect could be refused)\n", (int)pid, confined);
        return ELMON_EXIT_NOT_PERMITTED;
    }
    long tracer = status_field(pid, "TracerPid:", 0);
    if (tracer > 0) {
        fprintf(stderr, "elmon detach: %d is already traced by process %ld (a debugger or strace); detach it first\n",
                (int)pid, tracer);
        return ELMON_EXIT_TRACED;
    }
    uintptr_t stop_at;
    if (remote_symbol(pid, &mine, "elmon_attach_stop", &stop_at) < 0) {
        fprintf(stderr, "elmon detach: %d: its libelmon has no elmon_attach_stop\n", (int)pid);
        return ELMON_EXIT_ATTACH_FAILED;
    }
    struct tracee *t;
    int status = borrow(pid, &t);
    if (status != ELMON_EXIT_OK)
        return status;
    unsigned long ret = 0;
    int rc = remote_call(t, stop_at, NULL, 0, &ret);
    long r = (long)(int)ret;
    status = ELMON_EXIT_ATTACH_FAILED;
    if (rc < 0)
        fprintf(stderr, "elmon detach: %d: the call of elmon_attach_stop failed: %s\n", (int)pid, strerror(-rc));
    else if (r < 0)
        fprintf(stderr, "elmon detach: %d: libelmon refused: %s\n", (int)pid, strerror((int)-r));
    else {
        fprintf(stderr, "elmon: detached from %d (thread %d): %ld call sites put back; libelmon stays mapped, idle\n",
                (int)pid, (int)t->tid, r);
        status = ELMON_EXIT_OK;
    }
    give_back(t);
    return status;
}
