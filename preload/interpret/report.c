/*
 * The span report (report.h): the raw capture interpreted once, the
 * watchdog's timings added for each record of the span.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "cause.h"
#include "culprit.h"
#include "pyframes.h"
#include "report.h"
#include "symbolize.h"
#include "turn.h"

struct elmon_span_cache {
    int valid;
    uint32_t generation;         /* of the capture interpreted */
    uint64_t turn;
    uint32_t seq;
    struct elmon_span_report r;
};

/* libelmon's own path: its frames are never the culprit. */
static const char *self_module(void)
{
    static const char *self;
    static int looked;
    if (!looked) {
        Dl_info di;
        looked = 1;
        if (dladdr((void *)self_module, &di) && di.dli_fname)
            self = strdup(di.dli_fname);
    }
    return self;
}

/* Offset of p in the report's text, 0 for NULL or anything outside it
 * (the symbolizer's "" when the text was full). */
static uint32_t text_off(const struct elmon_span_report *r, const char *p)
{
    return p && p > r->text && p < r->text + sizeof r->text ? (uint32_t)(p - r->text) : 0;
}

static void put_how(struct elmon_span_report *r, const char *how)
{
    memset(r->how, 0, sizeof r->how);
    strncpy(r->how, how ? how : "none", sizeof r->how - 1);
}

/* The capture part of r from c (c->lock held). */
static void interpret(struct elmon_span_report *r, const struct elmon_capture *c)
{
    size_t from = offsetof(struct elmon_span_report, captured);
    memset((char *)r + from, 0, offsetof(struct elmon_span_report, text) - from);
    struct elmon_arena a;
    elmon_arena_init(&a, r->text, sizeof r->text);
    r->captured = 1;
    r->culprit_frame = -1;
    put_how(r, c->pending ? "signal" : c->how);

    struct elmon_task none = {.nr = -2};
    elmon_cause_fill(&r->cause, c->have_task ? &c->task : &none, c->cpu_share, c->span_ms);
    r->stack_ms = c->stack_ms;
    r->handler_us = r->handler_cpu_us = -1;
    if (!c->pending && c->how && strcmp(c->how, "signal") == 0) {
        r->handler_us = (double)c->handler_ns / 1e3;
        if (c->handler_cpu_ns != UINT64_MAX)
            r->handler_cpu_us = (double)c->handler_cpu_ns / 1e3;
    }
    r->note = c->note[0] ? elmon_arena_put(&a, c->note, strlen(c->note)) : 0;

    struct elmon_py_view pv[ELMON_SPAN_MAX_PY];
    int n_py = c->n_py < ELMON_SPAN_MAX_PY ? c->n_py : ELMON_SPAN_MAX_PY;
    for (int i = 0; i < n_py; i++) {
        const struct elmon_pyframe *p = &c->py[i];
        r->py[i].file = p->file ? elmon_arena_put(&a, p->file, strlen(p->file)) : 0;
        r->py[i].function = p->function ? elmon_arena_put(&a, p->function, strlen(p->function)) : 0;
        r->py[i].line = p->line;
        pv[i] = (struct elmon_py_view){p->file, p->function, p->line};
    }
    r->n_py = n_py;
    r->py_read_us = c->py_read_ns != UINT64_MAX ? (double)c->py_read_ns / 1e3 : -1;
    if (c->py_task_function) {
        char task[600];
        snprintf(task, sizeof task, "%s (%s:%d)", c->py_task_function, elmon_base_name(c->py_task_file ? c->py_task_file : "?"),
                 c->py_task_line);
        r->task = elmon_arena_put(&a, task, strlen(task));
    }

    /* libdw is loaded under elmon_dlopen's fork lock; reading ELF and DWARF
     * afterwards loads nothing (debuginfod is kept out). */
    /* A pending answer's handler may still be writing addrs[]: no native
     * frames until it is in (the report is rebuilt then, c->seq). */
    int n = c->pending ? 0 : c->n_addrs < ELMON_SPAN_MAX_FRAMES ? c->n_addrs : ELMON_SPAN_MAX_FRAMES;
    if (n)
        elmon_sym_load();
    struct elmon_frame_view fv[ELMON_SPAN_MAX_FRAMES];
    for (int i = 0; i < n; i++) {
        struct elmon_frame f;
        const struct elmon_capture_map *cm = &c->maps[i];
        struct elmon_sym_where w = {cm->found, cm->start, cm->file_off, cm->path};
        elmon_sym_frame(&a, c->addrs[i], i > 0, &w, &f);
        struct elmon_span_frame *o = &r->frames[i];
        o->addr = f.addr;
        o->offset = f.offset;
        o->module = text_off(r, f.module);
        o->build_id = text_off(r, f.build_id);
        o->function = text_off(r, f.function);
        o->symbol = text_off(r, f.symbol);
        o->file = text_off(r, f.file);
        o->line = f.line;
        o->flags = elmon_frame_is_vm(f.module) ? ELMON_FRAME_VM : 0;
        fv[i] = (struct elmon_frame_view){f.module, f.function, f.file, f.line, f.offset};
    }
    r->n_frames = n;
    /* A stack none of whose addresses lies in a loaded object names
     * nothing ("?+0x0"): the thread was stopped where its stack cannot be
     * walked (seen inside dlopen, test_stack / signal_inside_dlopen).  Say
     * so rather than leave a report with neither culprit nor reason. */
    int in_object = 0;
    for (int i = 0; i < n && !in_object; i++)
        in_object = fv[i].module != NULL;
    if (n && !in_object) {
        char why[400];
        snprintf(why, sizeof why, "%s%sno address of the stack lies in a loaded object: the thread was stopped where "
                 "its stack cannot be walked (inside the dynamic loader, or code without unwind information)",
                 c->note, c->note[0] ? "; " : "");
        r->note = elmon_arena_put(&a, why, strlen(why));
    }

    char culprit[512];
    int index;
    r->culprit_kind = elmon_culprit(pv, n_py, fv, n, self_module(), culprit, sizeof culprit, &index);
    r->culprit_frame = index;
    r->culprit = r->culprit_kind != ELMON_CULPRIT_NONE ? elmon_arena_put(&a, culprit, strlen(culprit)) : 0;
    /* JIT code without names: how to get them (docs/STACKS.md). */
    if (r->culprit_kind == ELMON_CULPRIT_RUNTIME && elmon_frames_jit_unnamed(fv, n)) {
        char hint[400];
        snprintf(hint, sizeof hint, "%s%sJIT frames have no names: no perf map covers them (JVM: start it with "
                 "-XX:+PreserveFramePointer and run jcmd %d Compiler.perfmap; node: --perf-basic-prof)",
                 c->note, c->note[0] ? "; " : "", (int)getpid());
        r->note = elmon_arena_put(&a, hint, strlen(hint));
    }
    r->text_len = a.len;
}

static void bare_capture(struct elmon_span_report *r)
{
    size_t from = offsetof(struct elmon_span_report, captured);
    memset((char *)r + from, 0, offsetof(struct elmon_span_report, frames) - from);
    r->culprit_frame = -1;
    r->stack_ms = r->handler_us = r->handler_cpu_us = r->py_read_us = -1;
    r->cause.cpu_ms = -1;
    r->text[0] = 0;
    r->text_len = 1;
}

static void fill_span(struct elmon_span_report *r, const struct elmon_block *b)
{
    r->size = sizeof *r;
    r->version = ELMON_SPAN_REPORT_VERSION;
    r->pid = b->pid;
    r->tid = b->tid;
    memcpy(r->thread, b->thread, sizeof r->thread);
    r->thread[sizeof r->thread - 1] = 0;
    r->poller = b->poller;
    r->phase = b->ongoing ? ELMON_SPAN_BEGIN : ELMON_SPAN_END;
    r->end = b->end;
    r->critical = b->critical;
    r->turn = b->turn;
    r->start_unix_ns = b->start_unix_ns;
    r->duration_ns = b->duration_ns;
    r->lag_ns = b->lag_ns;
}

static struct elmon_span_cache *cache_of(struct elmon_loop *l)
{
    if (!l->report)
        l->report = calloc(1, sizeof *l->report);
    return l->report;
}

const struct elmon_span_report *elmon_span_build(const struct elmon_block *b, struct elmon_span_report *bare)
{
    struct elmon_span_report *r = bare;
    struct elmon_capture *c = b->no_capture ? NULL : elmon_capture_lock_span(b->loop, b->turn, !b->no_settle);
    if (c) {
        struct elmon_span_cache *k = cache_of(b->loop);
        int same = k && k->valid && k->generation == c->generation && k->turn == c->turn;
        /* _exit: no symbolizing (it may allocate); the capture as it was
         * last interpreted. */
        if (k && !b->no_settle && (!same || k->seq != c->seq)) {
            interpret(&k->r, c);
            k->valid = 1;
            k->generation = c->generation;
            k->turn = c->turn;
            k->seq = c->seq;
            same = 1;
        }
        if (same)
            r = &k->r;
        elmon_capture_unlock(c);
    }
    if (r == bare)
        bare_capture(r);
    fill_span(r, b);
    return r;
}

/* 1 when a wait made from site is CPython's own: its select module, built
 * into the interpreter or as an extension.  That is a loop written in
 * Python (asyncio, tornado, twisted, trio...), which the run-method rule
 * knows how to read; loops that native code runs (uvloop's libuv, GLib,
 * Qt, gevent's libev, a wait made through ctypes) have no Python run
 * method to look for, and are never judged by it. */
static int site_in_cpython_select(uintptr_t site)
{
    static uintptr_t cached_site;
    static int cached;
    if (!site)
        return 0;
    if (site == cached_site)
        return cached;
    Dl_info at, py;
    int yes = 0;
    void *eval = dlsym(RTLD_DEFAULT, "PyEval_EvalCode");
    if (dladdr((void *)site, &at) && at.dli_fname) {
        const char *base = elmon_base_name(at.dli_fname);
        yes = strncmp(base, "select.", 7) == 0 || (eval && dladdr(eval, &py) && py.dli_fbase == at.dli_fbase);
    }
    cached_site = site;
    cached = yes;
    return yes;
}

int elmon_span_outside_loop(struct elmon_loop *l, uint64_t turn)
{
    if (!elmon_capture_loop_check())
        return 0;
    struct elmon_capture *c = elmon_capture_lock_span(l, turn, 0);
    if (!c)
        return 0;
    /* A stack that changed under every read keeps the outer frames the
     * reads agreed on, where a run method would be; none agreed, or a frame
     * unreadable: unknown, so a span. */
    int outside = c->py_header && !c->py_truncated && !c->py_loop && !c->py_unsure;
    elmon_capture_unlock(c);
    /* Last: only a CPython host gets this far (its thread state was
     * found), so the interpreter's symbol is there to be found. */
    return outside && site_in_cpython_select(ELMON_LOAD(&l->loop_site));
}

void elmon_span_atfork_child(void)
{
    for (int i = 0; i < ELMON_MAX_LOOPS; i++)
        if (elmon_loops[i].report)
            elmon_loops[i].report->valid = 0;
    elmon_sym_atfork_child();
}
