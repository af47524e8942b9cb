/*
 * The pipeline (pipeline.h): which stage's code runs at each hook, and the
 * table of sinks, in one place.
 *
 *   loop thread's wait (hot/) -> ring of ended spans, busy_since
 *   watchdog (watchdog.c): crossing -> elmon_pipeline_cross: capture
 *       (record/capture.c), verdict (interpret/report.c)
 *   watchdog: block_begin -> elmon_pipeline_begin, block (the span ended,
 *       also on the exiting thread) -> elmon_pipeline_end: both
 *       elmon_span_build (interpret/), then emit_span -> every sink below
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "capture.h"
#include "cause.h"
#include "clock.h"
#include "config.h"
#include "dl.h"
#include "exit.h"
#include "got.h"
#include "log.h"
#include "pipeline.h"
#include "registry.h"
#include "report.h"
#include "watchdog.h"

static const struct elmon_sink *const sinks[] = {
    &elmon_sink_events, &elmon_sink_human, &elmon_sink_folded, &elmon_sink_stats, &elmon_sink_otlp,
};
#define N_SINKS (sizeof sinks / sizeof sinks[0])

/* Orders the events file's records (and its buffer) between the watchdog
 * and the exiting thread. */
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
/* The kernel thread id of the writer lock's holder, 0 when free: the exit
 * asks the scheduler whether the holder is still working. */
static int writer_tid;

static void writer_take(void)
{
    pthread_mutex_lock(&writer_lock);
    __atomic_store_n(&writer_tid, (int)gettid(), __ATOMIC_RELAXED);
}

static void writer_give(void)
{
    __atomic_store_n(&writer_tid, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&writer_lock);
}

void elmon_pipeline_start(void)
{
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->start)
            sinks[i]->start();
    elmon_exit_register();
    if (!elmon_opt.verbose)
        return;
    char mem[512];
    struct elmon_buf b;
    elmon_buf_init(&b, mem, sizeof mem);
    for (size_t i = 0; i < N_SINKS; i++) {
        const char *off = sinks[i]->off ? sinks[i]->off() : NULL;
        elmon_buf_printf(&b, "%s%s %s", i ? ", " : "", sinks[i]->name, off ? "off (" : "on");
        if (off)
            elmon_buf_printf(&b, "%s)", off);
    }
    elmon_logf("sinks: %s", mem);
}

int elmon_pipeline_cross(struct elmon_loop *l, uint64_t turn)
{
    elmon_capture_on_cross(l, turn);
    return elmon_span_outside_loop(l, turn);
}

static int wanted(const struct elmon_sink *s, int flags)
{
    return !(flags & ELMON_EMIT_RECORDS_ONLY) || s->record;
}

static void emit_span(const struct elmon_span_report *r, int flags)
{
    if (!(flags & ELMON_EMIT_HELD))
        writer_take();
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->locked && wanted(sinks[i], flags))
            sinks[i]->span(r, flags);
    if (!(flags & ELMON_EMIT_HELD))
        writer_give();
    /* The rest after the lock: a host whose stderr is a pipe nobody reads
     * must not keep the events file (or the exit summary) waiting. */
    for (size_t i = 0; i < N_SINKS; i++)
        if (!sinks[i]->locked && wanted(sinks[i], flags))
            sinks[i]->span(r, flags);
}

void elmon_pipeline_begin(const struct elmon_block *b, struct elmon_span_report *bare, int flags)
{
    emit_span(elmon_span_build(b, bare), flags);
}

void elmon_pipeline_end(const struct elmon_block *b, struct elmon_span_report *bare, int flags)
{
    emit_span(elmon_span_build(b, bare), flags);
}

void elmon_pipeline_summary(const struct elmon_loop_snapshot *s, int exited, int flags)
{
    if (!(flags & ELMON_EMIT_HELD))
        writer_take();
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->summary && sinks[i]->locked)
            sinks[i]->summary(s, exited);
    if (!(flags & ELMON_EMIT_HELD))
        writer_give();
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->summary && !sinks[i]->locked)
            sinks[i]->summary(s, exited);
}

/* A locked sink's tick may write records (the events file's left_out
 * records when a window ends), so it takes the writer lock as its spans do. */
void elmon_pipeline_tick(void)
{
    writer_take();
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->tick && sinks[i]->locked)
            sinks[i]->tick();
    writer_give();
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->tick && !sinks[i]->locked)
            sinks[i]->tick();
}

static int lock_until(unsigned timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    dl.tv_sec += timeout_ms / 1000 + dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    return pthread_mutex_timedlock(&writer_lock, &dl) == 0 ? 0 : -ETIMEDOUT;
}

/* Past timeout_ms the holder is waited for in slices while the scheduler
 * calls it runnable (R) or in a disk wait (D): on a busy machine (a burst
 * of forked children on two cores) a watchdog preempted inside a write, or
 * waiting for its file system, waits that long, and giving up then lost
 * the exiting child's block and summary (test_loops /
 * forked_children_keep_their_records, 2 runs in 50; with four spinning
 * processes beside, holders were seen in R for the whole of 500 ms and in
 * D).  A hung NFS server keeps its writer in D: that costs the exit
 * runnable_ms, the bound.  A holder asleep (S: a full pipe, a lock the exiting thread
 * holds) or stopped is not waited for past timeout_ms. */
#define LOCK_SLICE_MS 5

int elmon_pipeline_lock_timed(unsigned timeout_ms, unsigned runnable_ms)
{
    int rc = lock_until(timeout_ms);
    uint64_t end_ns = elmon_mono_ns() + (uint64_t)runnable_ms * 1000000u;
    while (rc != 0 && elmon_mono_ns() < end_ns) {
        int tid = __atomic_load_n(&writer_tid, __ATOMIC_RELAXED);
        char state = tid ? elmon_task_state(tid) : 0;
        if (tid && state != 'R' && state != 'D')
            break;
        rc = lock_until(LOCK_SLICE_MS);
    }
    if (rc == 0)
        __atomic_store_n(&writer_tid, (int)gettid(), __ATOMIC_RELAXED);
    return rc;
}

void elmon_pipeline_unlock(void)
{
    writer_give();
}

void elmon_pipeline_atfork_child(void)
{
    elmon_dl_atfork_child();
    elmon_got_atfork_child();
    elmon_registry_atfork_child();
    elmon_log_atfork_child();
    elmon_capture_atfork_child();
    elmon_span_atfork_child();
    elmon_watchdog_atfork_child();
    pthread_mutex_init(&writer_lock, NULL);
    writer_tid = 0;
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->atfork_child)
            sinks[i]->atfork_child();
}

void elmon_pipeline_shutdown(int fast)
{
    for (size_t i = 0; i < N_SINKS; i++)
        if (sinks[i]->shutdown)
            sinks[i]->shutdown(fast);
}
