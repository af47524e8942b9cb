#!/usr/bin/env python3
"""The signal handlers' contract, checked from the sources (hot_path_contract.sh).

Every handler libelmon installs (a function stored in sa_sigaction or
sa_handler, or passed to signal(), in common/ or preload/) is followed
through every function it calls that is defined in common/ or preload/
(static ones in their own file first, then the rest, then inline ones in
headers; project macros are expanded the same way), transitively.  Each call
that leaves the project must be async-signal-safe:

  - a function of POSIX's list (signal-safety(7), POSIX.1-2008 TC2 included,
    which added memcpy, memset, strlen...);
  - syscall() of one of a few raw system calls (tgkill, gettid, ...);
  - a GCC atomic builtin (__atomic_*, __sync_*) or a compile-time builtin;
  - a call through a function pointer that was loaded with dlsym from a
    symbol the lists below name, with the reason it is safe.  Where
    libunwind is called, the accessors the file hands it (unw_accessors_t)
    are followed too: libunwind calls them from inside the handler.

Anything else is reported as
    file:line: HANDLER reaches NAME, not async-signal-safe (HANDLER -> ... -> caller)
and the check fails.  The parse is rough by design: comments and strings are
blanked, `name(...) {` at file scope is a definition, `ident(` in a body is a
call.  System headers' macros that hide calls (SIGRTMIN...) are not seen.

usage: signal_safety.py SOURCE_ROOT
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# signal-safety(7): the functions POSIX.1 requires to be async-signal-safe.
POSIX_SAFE = set("""
abort accept access aio_error aio_return alarm bind cfgetispeed cfgetospeed
cfsetispeed cfsetospeed chdir chmod chown clock_gettime close connect creat
dup dup2 execl execle execv execve _exit _Exit faccessat fchdir fchmod fchmodat
fchown fchownat fcntl fdatasync fexecve ffs fork fstat fstatat fsync ftruncate
futimens getegid geteuid getgid getgroups getpeername getpgrp getpid getppid
getsockname getsockopt getuid htonl htons kill link linkat listen longjmp
lseek lstat memccpy memchr memcmp memcpy memmove memset mkdir mkdirat mkfifo
mkfifoat mknod mknodat ntohl ntohs open openat pause pipe poll
posix_trace_event pselect pthread_kill pthread_self pthread_sigmask raise
read readlink readlinkat recv recvfrom recvmsg rename renameat rmdir select
sem_post send sendmsg sendto setgid setpgid setsid setsockopt setuid shutdown
sigaction sigaddset sigdelset sigemptyset sigfillset sigismember siglongjmp
signal sigpause sigpending sigprocmask sigqueue sigset sigsuspend sleep
sockatmark socket socketpair stat stpcpy stpncpy strcat strchr strcmp strcpy
strcspn strlen strncat strncmp strncpy strnlen strpbrk strrchr strspn strstr
strtok_r symlink symlinkat tcdrain tcflow tcflush tcgetattr tcgetpgrp
tcsendbreak tcsetattr tcsetpgrp time timer_getoverrun timer_gettime
timer_settime times umask uname unlink unlinkat utime utimensat utimes wait
waitpid wcpcpy wcpncpy wcscat wcschr wcscmp wcscpy wcscspn wcslen wcsncat
wcsncmp wcsncpy wcsnlen wcspbrk wcsrchr wcsspn wcsstr wcstok wmemchr wmemcmp
wmemcpy wmemmove wmemset write
""".split())
# glibc's aio_suspend takes a mutex (signal-safety(7), deviations).
POSIX_SAFE.discard("aio_suspend")

# syscall(SYS_x, ...): raw system calls, no libc state behind them.
RAW_SYSCALLS = {"SYS_tgkill", "SYS_tkill", "SYS_gettid", "SYS_getpid", "SYS_kill", "SYS_write",
                "SYS_clock_gettime", "SYS_rt_sigprocmask", "SYS_rt_sigaction"}

# Compile-time builtins and intrinsics: no code of a library runs.
BUILTINS = {"__builtin_expect", "__builtin_unreachable", "__builtin_constant_p", "__builtin_offsetof",
            "offsetof", "__builtin_frame_address", "__builtin_return_address", "__builtin_trap",
            "__builtin_clz", "__builtin_clzl", "__builtin_clzll", "__builtin_ctz", "__builtin_ctzl",
            "__builtin_ctzll", "__builtin_popcount", "__builtin_popcountl", "__builtin_popcountll",
            "__builtin_bswap32", "__builtin_bswap64", "__builtin_prefetch", "__rdtsc", "_mm_pause",
            "__builtin_ia32_pause"}

# Symbols loaded with dlsym that a handler may call through their pointer.
# Documented as async-signal-safe by their own project:
DLSYM_DOCUMENTED = {
    "_Ux86_64_get_reg": "unw_get_reg(3): 'safe to use from a signal handler'",
    "_ULx86_64_get_reg": "unw_get_reg(3): 'safe to use from a signal handler'",
    "_ULx86_64_init_local": "unw_init_local(3): 'safe to use from a signal handler'",
    "_ULx86_64_init_local2": "unw_init_local(3): 'safe to use from a signal handler'",
    "_ULx86_64_step": "unw_step(3): signal-safe for a cursor in the local address space",
}
# Not guaranteed by libunwind, allowed on libelmon's own argument: the handler
# unwinds with unw_init_remote on an address space of its own accessors, and
# libunwind(3) says "For remote-unwinding, none of the libunwind routines are
# guaranteed to be signal-safe."  preload/record/unwind.c's argument: the
# accessors are followed by this check (they must be safe too), caching is
# UNW_CACHE_NONE (no cache lock), libunwind's CIE pool is signal-safe, and
# warm_up() runs the one-time initialisation on the watchdog.  Printed on
# every run so that it stays visible.
DLSYM_ARGUED = {
    "_Ux86_64_init_remote": "unw_init_remote(3): signal-safe only for the local address space",
    "_Ux86_64_step": "unw_step(3): signal-safe only for a cursor in the local address space",
    "_Ux86_64_dwarf_search_unwind_table": "libunwind internal, undocumented",
}

KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "_Alignof", "alignof", "__alignof__",
            "typeof", "__typeof__", "__typeof", "__attribute__", "__asm__", "asm", "__asm",
            "_Static_assert", "static_assert", "_Generic", "__extension__", "defined", "case", "do",
            "else", "goto", "__volatile__", "volatile"}


from csource import strip  # noqa: E402  (tests/csource.py)


def blank(m):
    return re.sub(r"[^\n]", " ", m.group(0))


def matching(s, i, open_c, close_c):
    """Index just past the bracket that closes the one at s[i]."""
    d = 0
    for j in range(i, len(s)):
        if s[j] == open_c:
            d += 1
        elif s[j] == close_c:
            d -= 1
            if d == 0:
                return j + 1
    return len(s)


class Source:
    def __init__(self, root, rel):
        self.rel = rel
        with open(os.path.join(root, rel), errors="replace") as f:
            raw = f.read()
        self.with_strings = strip(raw, blank_strings=False)
        code = strip(raw)
        # function-like macros, then every preprocessor line out
        self.macros = {}
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", code, re.M):
            self.macros[m.group(1)] = (m.start(3), m.group(3))
        code = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", blank, code, flags=re.M)
        code = self.strip_attributes(code)
        self.code = code
        self.funcs = {}      # name -> (body start, body text, static, name's offset)
        self.fptrs = set()   # file-scope function pointer variables
        self.scan_top_level()
        # ptr = (cast)dlsym(handle, "symbol")
        self.loaded = {m.group(1): m.group(2) for m in re.finditer(
            r"\b(\w+)\s*=\s*(?:\([^;]*\))?\s*dlsym\s*\(\s*[^,;]+,\s*\"(\w+)\"\s*\)", self.with_strings)}
        # the functions handed to libunwind as accessors
        self.accessors = []
        for m in re.finditer(r"\bunw_accessors_t\s+\w+\s*=\s*\{", code):
            body = code[m.end() - 1:matching(code, m.end() - 1, "{", "}")]
            self.accessors += re.findall(r"\.\s*\w+\s*=\s*&?\s*([A-Za-z_]\w*)", body)

    @staticmethod
    def strip_attributes(code):
        while True:
            m = re.search(r"__attribute__\s*\(\(", code)
            if not m:
                return code
            j = matching(code, m.end() - 2, "(", ")")
            code = code[:m.start()] + re.sub(r"[^\n]", " ", code[m.start():j]) + code[j:]

    def scan_top_level(self):
        code, i, n, stmt_start = self.code, 0, len(self.code), 0
        while i < n:
            c = code[i]
            if c == ";":
                self.note_declaration(code[stmt_start:i])
                stmt_start = i + 1
            elif c == "{":
                end = matching(code, i, "{", "}")
                head = code[stmt_start:i]
                m = re.search(r"\b([A-Za-z_]\w*)\s*\(", head)
                if re.search(r"\)\s*$", head) and m and "=" not in head and not head.lstrip().startswith("typedef"):
                    # the name is the last identifier before the parameter list
                    p = head.rstrip()
                    k = len(p) - 1
                    d = 0
                    while k >= 0:
                        d += p[k] == ")"
                        d -= p[k] == "("
                        if d == 0:
                            break
                        k -= 1
                    nm = re.search(r"([A-Za-z_]\w*)\s*$", p[:k])
                    if nm and nm.group(1) not in KEYWORDS:
                        static = re.search(r"\bstatic\b", p[:nm.start(1)]) is not None
                        self.funcs.setdefault(nm.group(1), (i, code[i:end], static, stmt_start + nm.start(1)))
                    stmt_start = end
                    i = end
                    continue
                i = end
                continue
            i += 1

    def note_declaration(self, stmt):
        if stmt.lstrip().startswith("typedef"):
            return
        for m in re.finditer(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(", stmt):
            self.fptrs.add(m.group(1))

    def line(self, pos):
        return self.code.count("\n", 0, pos) + 1


def main():
    root = sys.argv[1]
    rels = []
    for top in ("common", "preload"):
        for d, subdirs, names in os.walk(os.path.join(root, top)):
            subdirs.sort()
            rels += [os.path.relpath(os.path.join(d, n), root) for n in sorted(names) if n.endswith((".c", ".h"))]
    srcs = [Source(root, r) for r in rels]

    def resolve(name, src):
        """(Source, kind) for a name called from src: a function of its own
        file, a non-static one anywhere, an inline one of a header, a macro;
        or a function pointer variable; None when it is not the project's."""
        if name in src.funcs:
            return src, "func"
        glob = [s for s in srcs if s.rel.endswith(".c") and name in s.funcs and not s.funcs[name][2]]
        if glob:
            return glob[0], "func"
        hdr = [s for s in srcs if s.rel.endswith(".h") and name in s.funcs]
        if hdr:
            return hdr[0], "func"
        if name in src.macros:
            return src, "macro"
        mac = [s for s in srcs if s.rel.endswith(".h") and name in s.macros]
        if mac:
            return mac[0], "macro"
        if name in src.fptrs or name in src.loaded:
            return src, "fptr"
        ext = [s for s in srcs if name in s.fptrs and not re.search(r"\bstatic\b[^;]*\(\s*\*\s*" + name + r"\b", s.code)]
        if ext:
            return ext[0], "fptr"
        return None, None

    handlers = []
    seen_h = set()
    for s in srcs:
        for m in re.finditer(r"\bsa_(?:sigaction|handler)\s*=\s*&?\s*([A-Za-z_]\w*)\s*;|\bsignal\s*\(\s*[^,()]+,\s*&?\s*([A-Za-z_]\w*)\s*\)",
                             s.code):
            h = m.group(1) or m.group(2)
            if h.startswith("SIG_") or (s.rel, h) in seen_h:
                continue
            hs, kind = resolve(h, s)
            if kind != "func":
                print(f"{s.rel}:{s.line(m.start())}: installs {h} as a signal handler, defined nowhere in common/ or preload/")
                return 1
            seen_h.add((s.rel, h))
            handlers.append((hs, h))
    if not any(h == "capture_handler" for _, h in handlers):
        print("no signal handler named capture_handler is installed (sa_sigaction = capture_handler) in preload/")
        return 1

    rc = 0
    call_re = re.compile(r"(->|\.)?\s*\b([A-Za-z_]\w*)\s*\(|\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(")
    for hsrc, handler in handlers:
        reached = {}                       # (rel, name) -> path
        external, pointers, argued = set(), {}, {}
        violations = []
        todo = [(hsrc, handler, "func", [handler])]
        reached[(hsrc.rel, handler)] = [handler]
        by_rel = {s.rel: s for s in srcs}
        unwinding_from = set()
        while todo:
            src, name, kind, path = todo.pop()
            base, body = src.funcs[name][:2] if kind == "func" else src.macros[name]

            def where(off):
                return f"{src.rel}:{src.line(base + off)}"

            def reach(s2, n2, k2):
                key = (s2.rel, n2 + ("()" if k2 == "macro" else ""))
                if key not in reached:
                    reached[key] = path + [n2]
                    todo.append((s2, n2, k2, path + [n2]))

            for m in call_re.finditer(body):
                member, nm, deref = m.group(1), m.group(2), m.group(3)
                if deref:
                    nm, member = deref, None
                rest = body[m.end():]
                if not deref and re.match(r"\s*\*", rest) and not member:
                    continue           # a declarator or a cast: int (*fn)(void)
                if nm in KEYWORDS:
                    continue
                site = where(m.start(2) if not deref else m.start(3))
                if member:
                    violations.append((site, f"{member}{nm} (a call through a structure's function pointer)", path))
                    continue
                s2, k2 = resolve(nm, src)
                if k2 in ("func", "macro"):
                    reach(s2, nm, k2)
                    continue
                if k2 == "fptr":
                    sym = s2.loaded.get(nm)
                    if sym in DLSYM_DOCUMENTED:
                        pointers[nm] = sym
                    elif sym in DLSYM_ARGUED:
                        pointers[nm] = sym
                        argued[sym] = DLSYM_ARGUED[sym]
                    else:
                        how = f"loaded from {sym}" if sym else "not loaded with dlsym"
                        violations.append((site, f"{nm} (a function pointer {how})", path))
                        continue
                    if sym.startswith("_U"):
                        unwinding_from.add(s2.rel)
                        for acc in s2.accessors:
                            if acc in s2.funcs:
                                reach(s2, acc, "func")
                    continue
                if nm.startswith(("__atomic_", "__sync_")) or nm in BUILTINS or nm in POSIX_SAFE:
                    external.add(nm)
                    continue
                if nm.startswith("__builtin_") and nm[len("__builtin_"):] in POSIX_SAFE:
                    external.add(nm)
                    continue
                if nm == "syscall":
                    a = re.match(r"\s*([A-Za-z_]\w*)\s*[,)]", rest)
                    if a and a.group(1) in RAW_SYSCALLS:
                        external.add(f"syscall({a.group(1)})")
                        continue
                    violations.append((site, f"syscall({a.group(1) if a else '?'})", path))
                    continue
                violations.append((site, nm, path))
            # a project function named without a call is one it may call
            for m in re.finditer(r"\b([A-Za-z_]\w*)\b(?!\s*\()", body):
                nm = m.group(1)
                if nm != name and nm in src.funcs and kind == "func":
                    reach(src, nm, "func")

        funcs = sorted(n for (_, n) in reached)
        print(f"signal handler {handler} ({hsrc.rel}:{hsrc.line(hsrc.funcs[handler][3])}) reaches "
              f"{len(funcs)} project functions: {' '.join(funcs)}")
        print(f"  and calls: {' '.join(sorted(external))}"
              + (f"; through dlsym'd pointers: {' '.join(f'{p}={s}' for p, s in sorted(pointers.items()))}" if pointers else ""))
        if unwinding_from:
            accs = sorted({a for r in unwinding_from for a in by_rel[r].accessors})
            print(f"  libunwind's accessors followed ({', '.join(sorted(unwinding_from))}): {' '.join(accs)}")
        for sym, why in sorted(argued.items()):
            print(f"  note: {sym} is allowed on libelmon's own argument (preload/record/unwind.c), not by its "
                  f"documentation: {why}; libunwind(3): for remote unwinding none of its routines is guaranteed signal-safe")
        for site, what, path in sorted(set((s, w, tuple(p)) for s, w, p in violations)):
            print(f"{site}: {handler} reaches {what}, not async-signal-safe ({' -> '.join(path)})")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
