/*
 * Python frames of a CPython host, with CPython's own async-signal-safe
 * traceback dumper (the one faulthandler uses).
 *
 * At the first capture the watchdog looks up Py_IsInitialized,
 * PyGILState_GetThisThreadState and _Py_DumpTraceback in the process
 * (dlsym, never in the handler) and makes a non-blocking pipe.  In the
 * handler the loop thread reads its own thread state from CPython's
 * thread-specific storage, as faulthandler does, and _Py_DumpTraceback
 * writes "  File \"f.py\", line 12 in name" lines into the pipe with
 * write(2); a full pipe truncates, it never blocks.  The watchdog parses the
 * lines after the handler is done.
 *
 * Runs on: the watchdog (load, prepare, collect), loop threads in the
 * capture handler (elmon_py_dump).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "ownfd.h"
#include "pyframes.h"
#include "log.h"

static int (*py_is_initialized)(void);
static void *(*py_this_tstate)(void);
static void (*py_dump)(int fd, void *tstate);
static int pipe_r = -1, pipe_w = -1;
static int pipe_lost_warned;
static int make_pipe(void);
static void drop_pipe(void);
static int load_state;           /* 0 not tried, 1 ready, -1 not CPython or unusable */

int elmon_py_load(void)
{
    if (load_state)
        return load_state == 1;
    py_is_initialized = (int (*)(void))dlsym(RTLD_DEFAULT, "Py_IsInitialized");
    if (!py_is_initialized || !py_is_initialized())
        return 0;   /* not (yet) CPython: ask again at the next capture */
    load_state = -1;
    py_this_tstate = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    py_dump = (void (*)(int, void *))dlsym(RTLD_DEFAULT, "_Py_DumpTraceback");
    if (!py_this_tstate || !py_dump) {
        elmon_warn("this CPython does not export %s; native stacks only",
                   py_dump ? "PyGILState_GetThisThreadState" : "_Py_DumpTraceback");
        return 0;
    }
    if (make_pipe() < 0)
        return 0;
    load_state = 1;
    return 1;
}

/* The pipe's two ends are libelmon's own descriptors (core/ownfd.h): out
 * of reach of a host that closes every descriptor it did not open. */
static int make_pipe(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        elmon_warn("cannot make a pipe for Python frames (%s); native stacks only", strerror(errno));
        return -1;
    }
    /* Room for CPython's 100-frame limit at full line length. */
    fcntl(fds[1], F_SETPIPE_SZ, 256 * 1024);
    pipe_r = elmon_own_adopt(fds[0]);
    pipe_w = elmon_own_adopt(fds[1]);
    if (pipe_r < 0 || pipe_w < 0) {
        drop_pipe();
        elmon_warn("no room for the Python-frames pipe among libelmon's descriptors; native stacks only");
        return -1;
    }
    return 0;
}

static void drop_pipe(void)
{
    if (pipe_r >= 0)
        elmon_own_release(pipe_r);
    if (pipe_w >= 0)
        elmon_own_release(pipe_w);
    pipe_r = pipe_w = -1;
}

/* On the watchdog, before the signal: a pipe the host took (dup2 onto an
 * end) is dropped, never read or written again, and made anew. */
void elmon_py_prepare(void)
{
    char junk[4096];
    if (load_state != 1)
        return;
    if (!elmon_own_ok(pipe_r) || !elmon_own_ok(pipe_w)) {
        drop_pipe();
        if (!pipe_lost_warned++)
            elmon_warn("the host took the Python-frames pipe's descriptors; making a new pipe");
        if (make_pipe() < 0) {
            load_state = -1;
            return;
        }
    }
    while (read(pipe_r, junk, sizeof junk) > 0)
        ;
}

void elmon_py_dump(void)
{
    if (load_state != 1)
        return;
    /* In the handler: the write end must still be ours (fstat, which is
     * async-signal-safe), or the dump would go into a host's file. */
    if (!elmon_own_ok(pipe_w))
        return;
    void *ts = py_this_tstate();
    if (ts)
        py_dump(pipe_w, ts);
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int contains(const char *s, size_t n, const char *part)
{
    size_t k = strlen(part);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, part, k) == 0)
            return 1;
    return 0;
}

/* The run methods libelmon knows.  A frame of one of them on the stack
 * means the thread is inside a running event loop. */
int elmon_py_is_loop_frame(const char *file, size_t n, const char *function)
{
    if (ends_with(file, n, "asyncio/base_events.py"))
        return strcmp(function, "run_forever") == 0 || strcmp(function, "_run_once") == 0;
    if (ends_with(file, n, "tornado/ioloop.py"))
        return strcmp(function, "start") == 0;
    if (ends_with(file, n, "twisted/internet/base.py"))
        return strcmp(function, "mainLoop") == 0 || strcmp(function, "run") == 0;
    if (ends_with(file, n, "/socketserver.py"))
        return strcmp(function, "serve_forever") == 0;
    if (ends_with(file, n, "kombu/asynchronous/hub.py"))
        return strcmp(function, "run_forever") == 0 || strcmp(function, "run_once") == 0 ||
               strcmp(function, "create_loop") == 0;
    if (ends_with(file, n, "curio/kernel.py"))
        return strcmp(function, "run") == 0 || strcmp(function, "_run_coro") == 0;
    if (ends_with(file, n, "trio/_core/_run.py"))
        return 1;   /* trio's whole scheduler lives in this file */
    /* Greenlets: the blocked greenlet's frames do not show the hub's loop,
     * so any frame of theirs counts. */
    return contains(file, n, "/gevent/") || contains(file, n, "/eventlet/");
}

/* '  File "/x/app.py", line 12 in slow_handler' */
static void parse_line(struct elmon_capture *c, char *s)
{
    if (strncmp(s, "Stack (most recent call first)", 30) == 0) {
        c->py_header = 1;
        return;
    }
    if (strcmp(s, "  ...") == 0) {
        c->py_truncated = 1;
        return;
    }
    char *f = strstr(s, "File \"");
    if (!f)
        return;
    f += 6;
    char *q = strstr(f, "\", line ");
    if (!q)
        return;
    char *e;
    long line = strtol(q + 8, &e, 10);
    const char *fn = strncmp(e, " in ", 4) == 0 ? e + 4 : "???";
    if (elmon_py_is_loop_frame(f, (size_t)(q - f), fn))
        c->py_loop = 1;
    if (c->n_py >= ELMON_CAPTURE_MAX_PY)
        return;   /* not kept, but seen by the loop test above */
    struct elmon_pyframe *p = &c->py[c->n_py++];
    p->file = elmon_capture_str(c, f, (size_t)(q - f));
    p->line = (int)line;
    p->function = elmon_capture_str(c, fn, strlen(fn));
}

void elmon_py_collect(struct elmon_capture *c)
{
    if (pipe_r < 0 || !elmon_own_ok(pipe_r))
        return;
    static char text[256 * 1024 + 1];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof text - 1 && (k = read(pipe_r, text + n, sizeof text - 1 - n)) > 0)
        n += (size_t)k;
    text[n] = 0;
    for (char *s = text, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        if (!nl) {
            parse_line(c, s);
            break;
        }
        *nl = 0;
        parse_line(c, s);
    }
}

/* The child must not share the parent's pipe: a fresh one at its first
 * capture. */
void elmon_py_atfork_child(void)
{
    drop_pipe();
    if (load_state == 1)
        load_state = 0;
}
