/*
 * interpret/report.c, the span report, driven in-process: a loop slot's raw
 * capture made by hand (return addresses of this program's own functions
 * and of libc, Python frames, /proc readings), then elmon_span_build.
 * Proves the interpretation happens once per capture (and again only when
 * the capture changed), that a span without a capture of its own gets a
 * bare report that leaves the slot's alone, and what the report holds:
 * symbols, culprit, cause, timings per record.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "loop.h"
#include "report.h"
#include "span.h"
#include "support.h"

/* The culprit to be named, with DWARF lines, in a library of its own
 * (tests/fixtures/report_dso.c): this program holds libelmon's code, and
 * its frames count as libelmon's. */
int report_fixture_work(int n);

static struct elmon_loop *slot(void)
{
    struct elmon_loop *l = &elmon_loops[7];
    memset(l, 0, sizeof *l);
    l->generation = 3;
    l->tid = (int)getpid();
    struct elmon_capture *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    elmon_arena_init(&c->arena, c->arena_mem, sizeof c->arena_mem);
    c->valid = 1;
    c->generation = 3;
    c->turn = 41;
    c->seq = 1;
    c->how = "signal";
    c->handler_ns = 25000;
    c->handler_cpu_ns = 20000;
    c->stack_ms = 1.5;
    c->have_task = 1;
    c->task.state = 'R';
    c->task.nr = -1;
    c->cpu_share = 0.9;
    c->span_ms = 100;
    /* Innermost first: libc's getpid, then our function (+1: a return
     * address inside it). */
    c->addrs[0] = (uintptr_t)&getpid;
    c->addrs[1] = (uintptr_t)&report_fixture_work + 8;
    c->n_addrs = 2;
    l->capture = c;
    return l;
}

static struct elmon_block block(struct elmon_loop *l, uint64_t turn, int ongoing, uint64_t dur_ns)
{
    struct elmon_block b;
    memset(&b, 0, sizeof b);
    b.loop = l;
    b.pid = 100;
    b.tid = l->tid;
    snprintf(b.thread, sizeof b.thread, "loop-a");
    b.poller = ELMON_POLLER_EPOLL_WAIT;
    b.turn = turn;
    b.start_unix_ns = 1000;
    b.duration_ns = dur_ns;
    b.lag_ns = dur_ns + 1;
    b.critical = dur_ns >= 500000000;
    b.ongoing = ongoing;
    b.end = ongoing ? 0 : ELMON_END_LOOP_CLOSED;
    return b;
}

static void py_frame(struct elmon_capture *c, const char *file, const char *fn, int line)
{
    struct elmon_pyframe *p = &c->py[c->n_py++];
    p->file = elmon_capture_str(c, file, strlen(file));
    p->function = elmon_capture_str(c, fn, strlen(fn));
    p->line = line;
}

static struct elmon_span_report bare;

START_TEST(native_capture_interpreted)
{
    struct elmon_loop *l = slot();
    struct elmon_block b = block(l, 41, 1, 60000000);
    const struct elmon_span_report *r = elmon_span_build(&b, &bare);
    ck_assert_ptr_ne(r, &bare);
    ck_assert_int_eq(r->captured, 1);
    ck_assert_int_eq(r->version, ELMON_SPAN_REPORT_VERSION);
    ck_assert_int_eq(r->n_frames, 2);
    /* Frame 0 is libc's: symbolized, never the culprit. */
    ck_assert_msg(strstr(elmon_span_str(r, r->frames[0].module), "libc"), "%s",
                  elmon_span_str(r, r->frames[0].module));
    ck_assert_int_eq(r->culprit_kind, ELMON_CULPRIT_NATIVE);
    ck_assert_msg(r->culprit_frame == 1, "culprit frame %d: %s in %s", r->culprit_frame,
                  elmon_span_str(r, r->frames[0].function), elmon_span_str(r, r->frames[0].module));
    const char *cul = elmon_span_str(r, r->culprit);
    ck_assert_msg(cul && strncmp(cul, "report_fixture_work (report_dso.c:", 34) == 0, "culprit %s", cul ? cul : "none");
    /* The cause from the readings: running, 90% of 100 ms on the CPU. */
    ck_assert_str_eq(r->cause.cls, "cpu");
    ck_assert_int_eq(r->cause.state, 'R');
    ck_assert(r->cause.cpu_ms > 89.9 && r->cause.cpu_ms < 90.1);
    ck_assert_str_eq(r->how, "signal");
    ck_assert(r->handler_us > 24.9 && r->handler_us < 25.1);
    ck_assert(r->handler_cpu_us > 19.9 && r->handler_cpu_us < 20.1);
    /* The span's part. */
    ck_assert_int_eq(r->phase, ELMON_SPAN_BEGIN);
    ck_assert_uint_eq(r->turn, 41);
    ck_assert_uint_eq(r->duration_ns, 60000000);
    ck_assert_str_eq(r->thread, "loop-a");
}
END_TEST

/* A stack whose addresses lie in no loaded object (nothing mapped there)
 * names nothing: the report says why, where a readable one has no note. */
START_TEST(unwalkable_stack_has_a_note)
{
    struct elmon_loop *l = slot();
    struct elmon_block b = block(l, 41, 1, 60000000);
    const struct elmon_span_report *r = elmon_span_build(&b, &bare);
    ck_assert_msg(r->note == 0, "note on a readable stack: %s", elmon_span_str(r, r->note));
    /* An address far from every mapping (64 TiB; user space ends at 128). */
    l = slot();
    l->capture->addrs[0] = (uintptr_t)0x400000000000ull;
    l->capture->n_addrs = 1;
    l->capture->seq = 2;   /* a new capture, not the one interpreted above */
    b = block(l, 41, 1, 60000000);
    r = elmon_span_build(&b, &bare);
    ck_assert_int_eq(r->n_frames, 1);
    ck_assert_msg(r->frames[0].module == 0, "module %s", elmon_span_str(r, r->frames[0].module));
    const char *note = elmon_span_str(r, r->note);
    ck_assert_msg(note && strstr(note, "no address of the stack lies in a loaded object"), "note: %s",
                  note ? note : "none");
}
END_TEST

START_TEST(python_frames_name_the_culprit)
{
    struct elmon_loop *l = slot();
    py_frame(l->capture, "/srv/app.py", "render_page", 5);
    py_frame(l->capture, "/srv/app.py", "handle", 20);
    struct elmon_block b = block(l, 41, 0, 70000000);
    const struct elmon_span_report *r = elmon_span_build(&b, &bare);
    ck_assert_int_eq(r->n_py, 2);
    ck_assert_int_eq(r->culprit_kind, ELMON_CULPRIT_PY);
    ck_assert_str_eq(elmon_span_str(r, r->culprit), "render_page (app.py:5)");
    ck_assert_str_eq(elmon_span_str(r, r->py[1].function), "handle");
    ck_assert_int_eq(r->phase, ELMON_SPAN_END);
    ck_assert_int_eq(r->end, ELMON_END_LOOP_CLOSED);
}
END_TEST

/* The capture is interpreted once: the second record of the span reuses
 * it (a change the capture did not count is not seen), and only a change
 * it counts (seq: a late handler answer) is interpreted again. */
START_TEST(interpreted_once_per_capture)
{
    struct elmon_loop *l = slot();
    struct elmon_block begin = block(l, 41, 1, 60000000), end = block(l, 41, 0, 300000000);
    const struct elmon_span_report *r1 = elmon_span_build(&begin, &bare);
    uint32_t culprit = r1->culprit;
    l->capture->n_addrs = 1;   /* uncounted: must not be looked at again */
    const struct elmon_span_report *r2 = elmon_span_build(&end, &bare);
    ck_assert_ptr_eq(r1, r2);
    ck_assert_int_eq(r2->n_frames, 2);
    ck_assert_uint_eq(r2->culprit, culprit);
    ck_assert_uint_eq(r2->duration_ns, 300000000);   /* timings per record */
    ck_assert_int_eq(r2->phase, ELMON_SPAN_END);
    l->capture->seq++;
    const struct elmon_span_report *r3 = elmon_span_build(&end, &bare);
    ck_assert_int_eq(r3->n_frames, 1);
    /* libc alone: a statement of where the thread is, "in libc.so.6: ..." */
    ck_assert_int_eq(r3->culprit_kind, ELMON_CULPRIT_RUNTIME);
    ck_assert_msg(strncmp(elmon_span_str(r3, r3->culprit), "in ", 3) == 0, "%s", elmon_span_str(r3, r3->culprit));
}
END_TEST

/* At _exit (no_settle) nothing is symbolized: the last interpretation is
 * used even when the capture changed since. */
START_TEST(exit_uses_last_interpretation)
{
    struct elmon_loop *l = slot();
    struct elmon_block b = block(l, 41, 1, 60000000);
    elmon_span_build(&b, &bare);
    l->capture->n_addrs = 1;
    l->capture->seq++;
    b.ongoing = 0;
    b.no_settle = 1;
    const struct elmon_span_report *r = elmon_span_build(&b, &bare);
    ck_assert_int_eq(r->n_frames, 2);
}
END_TEST

/* A span that is not the capture's (another turn, a reused slot), or one
 * reported beside a running watchdog (no_capture), gets the caller's bare
 * report, and the slot's report is left as it was. */
START_TEST(bare_without_a_capture)
{
    struct elmon_loop *l = slot();
    struct elmon_block b = block(l, 41, 1, 60000000);
    const struct elmon_span_report *own = elmon_span_build(&b, &bare);
    uint32_t culprit = own->culprit;
    struct elmon_block other = block(l, 42, 0, 80000000);
    const struct elmon_span_report *r = elmon_span_build(&other, &bare);
    ck_assert_ptr_eq(r, &bare);
    ck_assert_int_eq(r->captured, 0);
    ck_assert_uint_eq(r->culprit, 0);
    ck_assert_int_eq(r->n_frames, 0);
    ck_assert_uint_eq(r->turn, 42);
    ck_assert(r->handler_us < 0 && r->cause.cpu_ms < 0);
    struct elmon_block exiting = block(l, 41, 0, 90000000);
    exiting.no_capture = 1;
    ck_assert_ptr_eq(elmon_span_build(&exiting, &bare), &bare);
    l->generation = 4;   /* the slot reused by another thread */
    ck_assert_ptr_eq(elmon_span_build(&b, &bare), &bare);
    /* The slot's report still has its capture and its own timings. */
    ck_assert_uint_eq(own->culprit, culprit);
    ck_assert_uint_eq(own->turn, 41);
    ck_assert_uint_eq(own->duration_ns, 60000000);
}
END_TEST

/* An answer not in yet: the report says signal, with no stack and no
 * handler time. */
START_TEST(pending_answer)
{
    struct elmon_loop *l = slot();
    l->capture->pending = 1;
    l->capture->n_addrs = 0;
    struct elmon_block b = block(l, 41, 1, 60000000);
    const struct elmon_span_report *r = elmon_span_build(&b, &bare);
    ck_assert_int_eq(r->captured, 1);
    ck_assert_str_eq(r->how, "signal");
    ck_assert_int_eq(r->n_frames, 0);
    ck_assert(r->handler_us < 0);
    ck_assert_int_eq(r->culprit_kind, ELMON_CULPRIT_NONE);
    ck_assert_uint_eq(r->culprit, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, native_capture_interpreted);
    tcase_add_test(tc, unwalkable_stack_has_a_note);
    tcase_add_test(tc, python_frames_name_the_culprit);
    tcase_add_test(tc, interpreted_once_per_capture);
    tcase_add_test(tc, exit_uses_last_interpretation);
    tcase_add_test(tc, bare_without_a_capture);
    tcase_add_test(tc, pending_answer);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
