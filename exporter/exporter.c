/*
 * libelmon-exporter.so: the OTLP exporter's state and its one background
 * thread ("elmon-otlp").
 *
 * Threads:
 *   - the watchdog calls start() once (and again in a forked child) and
 *     on_span() for every ended span; on_span only appends to the
 *     bounded queue under ex.lock, which no one holds across I/O;
 *   - the exporter thread owns everything else: the per-loop series, the
 *     arena and buffers, the curl handles.  It wakes for the next metric
 *     interval, the log batch delay, a full batch, or stop;
 *   - shutdown() (the core's exit work, which atexit runs just before
 *     this library's own atexit handler, or that handler) asks for the final
 *     flush and waits for it at most ELMON_EXPORT_FLUSH_MS;
 *   - atfork_child() runs in the forking thread of a new child.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "encode.h"
#include "export_api.h"
#include "now.h"
#include "otlp_config.h"
#include "resource.h"
#include "transport.h"

#define QUEUE_BYTES_MAX (1024 * 1024)   /* span reports held for sending */

/* A queued span: its report, copied up to its used text only. */
struct qrec {
    struct otlp_log_in in;
    size_t bytes;
    struct elmon_span_report span;    /* last: allocated short */
};

/* One loop slot's series, by slot index. */
struct series {
    int used;                       /* seen in this export */
    uint32_t generation;
    int tid;
    uint64_t start_unix_ns, last_unix_ns;
    uint64_t busy_ns, idle_ns, n_turns, n_warning, n_critical;   /* at the last export */
    uint64_t util_busy_ns, util_idle_ns;                         /* the same, with the ongoing turn */
    char thread[64];
    struct elmon_hist cur;
    struct elmon_hist *prev;        /* delta temporality only */
    struct elmon_hist delta;
};

static struct {
    struct elmon_export_core c;
    struct otlp_config cfg;
    int cfg_loaded;
    struct otlp_resource res;
    struct otlp_hist_geom geom;

    pthread_mutex_t lock;
    pthread_cond_t cond;            /* CLOCK_MONOTONIC */
    pthread_t thread;
    int running;                    /* under lock */
    int stop;                       /* under lock */
    int flushed;                    /* under lock: the thread has finished its final flush */
    int shut;                       /* shutdown() ran */
    uint64_t abort_at_ns;           /* atomic: cut every transfer past this */

    struct qrec **q;                /* under lock: ring of logs_queue entries */
    size_t q_head, q_n, q_bytes;
    uint64_t n_dropped;             /* under lock */

    /* exporter thread */
    struct series **series;         /* ELMON_MAX_LOOPS pointers */
    struct otlp_loop_point *points;
    struct otlp_log_in *log_batch;
    struct qrec **log_take;
    struct otlp_arena arena;
    struct otlp_bytes buf;
    struct otlp_transport tr;
    uint64_t last_export_unix_ns;
} ex = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ns(void)
{
    return elmon_now_ns(CLOCK_MONOTONIC);
}

static uint64_t unix_ns(void)
{
    return elmon_now_ns(CLOCK_REALTIME);
}

static struct timespec mono_ts(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* A retry sleep, cut short by stop. */
static int sleep_ms(uint64_t ms)
{
    struct timespec dl = mono_ts(mono_ns() + ms * 1000000);
    pthread_mutex_lock(&ex.lock);
    while (!ex.stop && pthread_cond_timedwait(&ex.cond, &ex.lock, &dl) != ETIMEDOUT)
        ;
    int stop = ex.stop;
    pthread_mutex_unlock(&ex.lock);
    return stop;
}

/* --- metrics --- */

struct collect {
    size_t n;
    uint64_t now_unix_ns;
};

static int collect_one(struct elmon_loop *l, void *arg)
{
    struct collect *co = arg;
    size_t idx = (size_t)ex.c.loop_index(l);
    if (idx >= ELMON_MAX_LOOPS)
        return 0;
    struct elmon_loop_snapshot *s = &(struct elmon_loop_snapshot){0};
    ex.c.loop_snapshot(l, s);
    uint64_t window = ex.c.take_window_max(l);
    struct series *se = ex.series[idx];
    if (!se) {
        se = ex.series[idx] = calloc(1, sizeof *se);
        if (!se)
            return 0;
    }
    if (se->generation != s->generation || se->tid != s->tid || !se->start_unix_ns) {
        /* A new thread in this slot: a new series from its start. */
        free(se->prev);
        memset(se, 0, sizeof *se);
        se->generation = s->generation;
        se->tid = s->tid;
        se->start_unix_ns = s->start_unix_ns;
        se->last_unix_ns = s->start_unix_ns;
    }
    se->used = 1;
    memcpy(se->thread, s->thread, sizeof se->thread);
    se->thread[sizeof se->thread - 1] = 0;
    se->cur = s->lag;

    int t = ex.cfg.temporality;
    struct otlp_loop_point *p = &ex.points[co->n++];
    memset(p, 0, sizeof *p);
    p->tid = s->tid;
    p->thread = se->thread;
    p->poller = ex.c.poller_name(s->poller);
    p->cum_start_unix_ns = se->start_unix_ns;
    p->delta_start_unix_ns = se->last_unix_ns;
    uint64_t lag = window > s->ongoing_busy_ns ? window : s->ongoing_busy_ns;
    uint64_t max = s->lag.max_ns > s->ongoing_busy_ns ? s->lag.max_ns : s->ongoing_busy_ns;
    p->lag_s = (double)lag * 1e-9;
    p->max_lag_s = (double)max * 1e-9;
    uint64_t ub = s->busy_ns + s->ongoing_busy_ns, ui = s->idle_ns;
    uint64_t db = ub > se->util_busy_ns ? ub - se->util_busy_ns : 0;
    uint64_t di = ui > se->util_idle_ns ? ui - se->util_idle_ns : 0;
    p->utilization = db + di ? (double)db / (double)(db + di) : 0.0;
    p->n_fds = s->n_fds;

    /* Temporality per instrument kind, as the SDK's preferences define
     * them: blocking_events, turns and lag_distribution count as the
     * synchronous kinds, time as an asynchronous counter. */
    p->counters_delta = t == OTLP_DELTA || t == OTLP_LOWMEMORY;
    p->hist_delta = p->counters_delta;
    p->time_delta = t == OTLP_DELTA;
    p->n_warning = s->n_warning - (p->counters_delta ? se->n_warning : 0);
    p->n_critical = s->n_critical - (p->counters_delta ? se->n_critical : 0);
    p->n_turns = s->n_turns - (p->counters_delta ? se->n_turns : 0);
    p->busy_s = (double)(s->busy_ns - (p->time_delta ? se->busy_ns : 0)) * 1e-9;
    p->idle_s = (double)(s->idle_ns - (p->time_delta ? se->idle_ns : 0)) * 1e-9;
    if (p->hist_delta) {
        if (!se->prev && !(se->prev = calloc(1, sizeof *se->prev))) {
            co->n--;
            return 0;
        }
        se->delta = se->cur;
        for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++)
            se->delta.counts[i] -= se->prev->counts[i];
        se->delta.n -= se->prev->n;
        se->delta.sum_ns -= se->prev->sum_ns;
        p->hist = &se->delta;
    } else {
        p->hist = &se->cur;
    }

    /* What the next export's deltas start from. */
    se->busy_ns = s->busy_ns;
    se->idle_ns = s->idle_ns;
    se->n_turns = s->n_turns;
    se->n_warning = s->n_warning;
    se->n_critical = s->n_critical;
    se->util_busy_ns = ub;
    se->util_idle_ns = ui;
    se->last_unix_ns = co->now_unix_ns;
    if (se->prev)
        *se->prev = se->cur;
    return 0;
}

static void console_metrics(const struct otlp_loop_point *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ex.c.logf("metrics pid %d tid %d (%s, %s): %s.lag %.6f s, %s.max_lag %.6f s, %s.utilization %.3f, "
                  "%s.turns %llu, %s.blocking_events warning %llu critical %llu, %s.active_fds %llu, "
                  "%s.time active %.3f s idle %.3f s, %s.lag_distribution count %llu sum %.6f s",
                  (int)getpid(), p[i].tid, p[i].thread, p[i].poller, ex.cfg.prefix, p[i].lag_s,
                  ex.cfg.prefix, p[i].max_lag_s, ex.cfg.prefix, p[i].utilization, ex.cfg.prefix,
                  (unsigned long long)p[i].n_turns, ex.cfg.prefix, (unsigned long long)p[i].n_warning,
                  (unsigned long long)p[i].n_critical, ex.cfg.prefix, (unsigned long long)p[i].n_fds,
                  ex.cfg.prefix, p[i].busy_s, p[i].idle_s, ex.cfg.prefix, (unsigned long long)p[i].hist->n,
                  (double)p[i].hist->sum_ns * 1e-9);
}

static void export_metrics(uint64_t deadline_ns)
{
    const struct otlp_target *tg = &ex.cfg.t[OTLP_METRICS];
    if (!tg->sink)
        return;
    struct collect co = {0, unix_ns()};
    for (size_t i = 0; i < ELMON_MAX_LOOPS; i++)
        if (ex.series[i])
            ex.series[i]->used = 0;
    ex.c.loops_foreach(collect_one, &co);
    /* Slots whose thread is gone: their series end. */
    for (size_t i = 0; i < ELMON_MAX_LOOPS; i++) {
        if (ex.series[i] && !ex.series[i]->used) {
            free(ex.series[i]->prev);
            free(ex.series[i]);
            ex.series[i] = NULL;
        }
    }
    ex.last_export_unix_ns = co.now_unix_ns;
    if (!co.n)
        return;                 /* no request with zero points */
    if (tg->sink & ELMON_SINK_CONSOLE)
        console_metrics(ex.points, co.n);
    if (!(tg->sink & ELMON_SINK_OTLP))
        return;
    struct otlp_metrics_in in = {
        .resource = &ex.res, .prefix = ex.cfg.prefix, .scope_version = ex.c.elmon_version,
        .exponential = ex.cfg.histogram == OTLP_HIST_EXPONENTIAL, .geom = &ex.geom,
        .now_unix_ns = co.now_unix_ns, .loops = ex.points, .n_loops = co.n,
    };
    int rc = otlp_encode_metrics(&in, &ex.arena, &ex.buf);
    otlp_arena_reset(&ex.arena);
    if (rc < 0) {
        ex.c.warn("cannot encode OTLP metrics (%s); this interval is dropped", strerror(-rc));
        return;
    }
    struct otlp_send_result r;
    otlp_send(&ex.tr, tg, OTLP_METRICS, ex.buf.p, ex.buf.len, deadline_ns, &r);
}

/* --- logs --- */

static void export_logs(uint64_t deadline_ns, int all)
{
    const struct otlp_target *tg = &ex.cfg.t[OTLP_LOGS];
    for (;;) {
        size_t n = 0;
        uint64_t dropped;
        pthread_mutex_lock(&ex.lock);
        while (n < ex.cfg.logs_batch && ex.q_n) {
            struct qrec *r = ex.q[ex.q_head];
            ex.q[ex.q_head] = NULL;
            ex.q_head = (ex.q_head + 1) % ex.cfg.logs_queue;
            ex.q_n--;
            ex.q_bytes -= r->bytes;
            ex.log_take[n++] = r;
        }
        dropped = ex.n_dropped;
        ex.n_dropped = 0;
        pthread_mutex_unlock(&ex.lock);
        if (dropped)
            ex.c.warn("the OTLP log queue was full: %llu blocking event%s not exported",
                      (unsigned long long)dropped, dropped == 1 ? "" : "s");
        if (!n)
            return;
        for (size_t i = 0; i < n; i++) {
            ex.log_batch[i] = ex.log_take[i]->in;
            if (tg->sink & ELMON_SINK_CONSOLE) {
                const struct elmon_span_report *l = &ex.log_take[i]->span;
                const char *culprit = l->captured ? elmon_span_str(l, l->culprit) : NULL;
                ex.c.logf("log eventloop.block pid %d tid %d (%s, %s): %s, duration %.3f ms, lag %.3f ms%s%s",
                          (int)getpid(), l->tid, l->thread, ex.log_take[i]->in.poller, l->critical ? "ERROR" : "WARN",
                          (double)l->duration_ns / 1e6, (double)l->lag_ns / 1e6, culprit ? ", in " : "",
                          culprit ? culprit : "");
            }
        }
        if (tg->sink & ELMON_SINK_OTLP) {
            int rc = otlp_encode_logs(&ex.res, ex.c.elmon_version, ex.log_batch, n, &ex.arena, &ex.buf);
            otlp_arena_reset(&ex.arena);
            if (rc < 0) {
                ex.c.warn("cannot encode OTLP logs (%s); %zu records dropped", strerror(-rc), n);
            } else {
                struct otlp_send_result r;
                otlp_send(&ex.tr, tg, OTLP_LOGS, ex.buf.p, ex.buf.len, deadline_ns, &r);
            }
        }
        for (size_t i = 0; i < n; i++)
            free(ex.log_take[i]);
        if (!all || mono_ns() >= deadline_ns)
            return;
    }
}

/* --- the thread --- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void *exporter_main(void *arg)
{
    (void)arg;
    uint64_t interval_ns = ex.cfg.interval_ms * 1000000;
    uint64_t next_metrics = mono_ns() + interval_ns;
    uint64_t next_logs = mono_ns() + ex.cfg.logs_delay_ms * 1000000;
    uint64_t metrics_timeout_ns = min_u64(ex.cfg.export_timeout_ms, ex.cfg.t[OTLP_METRICS].timeout_ms) * 1000000;
    uint64_t logs_timeout_ns = ex.cfg.t[OTLP_LOGS].timeout_ms * 1000000;
    pthread_mutex_lock(&ex.lock);
    for (;;) {
        int batch_full = ex.q_n >= ex.cfg.logs_batch;
        uint64_t wake = min_u64(next_metrics, next_logs);
        if (!ex.stop && !batch_full && mono_ns() < wake) {
            struct timespec dl = mono_ts(wake);
            pthread_cond_timedwait(&ex.cond, &ex.lock, &dl);
            continue;
        }
        if (ex.stop)
            break;
        pthread_mutex_unlock(&ex.lock);
        uint64_t now = mono_ns();
        if (batch_full || now >= next_logs) {
            export_logs(now + logs_timeout_ns, 0);
            next_logs = mono_ns() + ex.cfg.logs_delay_ms * 1000000;
        }
        now = mono_ns();
        if (now >= next_metrics) {
            export_metrics(now + metrics_timeout_ns);
            next_metrics += interval_ns;
            if (next_metrics <= mono_ns())   /* an export overran: skip, never burst */
                next_metrics = mono_ns() + interval_ns;
        }
        pthread_mutex_lock(&ex.lock);
    }
    pthread_mutex_unlock(&ex.lock);

    /* The final flush: the last interval once, within the flush deadline. */
    uint64_t deadline = __atomic_load_n(&ex.abort_at_ns, __ATOMIC_ACQUIRE);
    if (deadline && mono_ns() < deadline) {
        export_metrics(deadline);
        export_logs(deadline, 1);
    }
    otlp_transport_final_report(&ex.tr, ex.cfg.t);
    pthread_mutex_lock(&ex.lock);
    ex.flushed = 1;
    ex.running = 0;
    pthread_cond_broadcast(&ex.cond);
    pthread_mutex_unlock(&ex.lock);
    return NULL;
}

static void exporter_atexit(void);

static int alloc_state(void)
{
    if (!ex.series && !(ex.series = calloc(ELMON_MAX_LOOPS, sizeof *ex.series)))
        return -ENOMEM;
    if (!ex.points && !(ex.points = calloc(ELMON_MAX_LOOPS, sizeof *ex.points)))
        return -ENOMEM;
    if (!ex.q && !(ex.q = calloc(ex.cfg.logs_queue, sizeof *ex.q)))
        return -ENOMEM;
    if (!ex.log_batch && !(ex.log_batch = calloc(ex.cfg.logs_batch, sizeof *ex.log_batch)))
        return -ENOMEM;
    if (!ex.log_take && !(ex.log_take = calloc(ex.cfg.logs_batch, sizeof *ex.log_take)))
        return -ENOMEM;
    return 0;
}

/* OpenSSL's first initialisation registers OPENSSL_cleanup with atexit and
 * then goes on initialising.  A host whose exit() came in between ran that
 * cleanup, which frees OpenSSL's global locks, under this thread, which
 * then died of SIGSEGV in OBJ_NAME_add: a short-lived host crashed because
 * it was monitored (21 of 1600 runs of a 0.15 s fault_fix exporting to a
 * closed port, test_faults / bad_values_of_every_variable in CI).  OpenSSL
 * initialised first with OPENSSL_INIT_NO_ATEXIT registers no cleanup at
 * all; the kernel frees its memory at exit, and a host that calls
 * OPENSSL_cleanup itself still can.  Looked up in libcurl's own scope (its
 * libcrypto), so nothing new is linked; a libcurl built on another TLS
 * library has no such symbol and is left as it is. */
static void openssl_no_atexit(void)
{
    Dl_info di;
    if (!dladdr((void *)curl_global_init, &di) || !di.dli_fname)
        return;
    void *h = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return;
    int (*init_crypto)(uint64_t, const void *) = (int (*)(uint64_t, const void *))dlsym(h, "OPENSSL_init_crypto");
    if (init_crypto)
        init_crypto(UINT64_C(0x00080000) /* OPENSSL_INIT_NO_ATEXIT */, NULL);
    dlclose(h);
}

static int ex_start(const struct elmon_export_core *core)
{
    static int atexit_done;
    if (core->size < sizeof(struct elmon_export_core) || core->version != ELMON_EXPORT_API_VERSION)
        return -EINVAL;
    ex.c = *core;
    ex.geom.lo = core->hist_bucket_lo;
    ex.geom.hi = core->hist_bucket_hi;
    if (!ex.cfg_loaded) {
        if (otlp_config_load(&ex.c, &ex.cfg) < 0) {
            ex.c.warn("cannot configure the OTLP exporter (out of memory); export is off");
            return -ENOMEM;
        }
        openssl_no_atexit();
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ex.c.warn("cannot initialise libcurl; OTLP export is off");
            return -EIO;
        }
        if ((ex.cfg.t[OTLP_METRICS].protocol == OTLP_GRPC || ex.cfg.t[OTLP_LOGS].protocol == OTLP_GRPC) &&
            !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2))
            ex.c.warn("this libcurl has no HTTP/2: OTLP/gRPC requests will fail");
        ex.cfg_loaded = 1;
    }
    otlp_resource_free(&ex.res);
    otlp_resource_detect(&ex.c, &ex.cfg, &ex.res);
    if (ex.c.verbose)
        otlp_resource_print(&ex.c, &ex.cfg, &ex.res);
    if (alloc_state() < 0 || (!ex.tr.easy[0] && otlp_transport_init(&ex.tr) < 0)) {
        ex.c.warn("cannot set up the OTLP exporter (out of memory); export is off");
        return -ENOMEM;
    }
    ex.tr.sleep_ms = sleep_ms;
    ex.tr.abort_at_ns = &ex.abort_at_ns;
    ex.tr.core = &ex.c;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ex.cond, &ca);
    pthread_condattr_destroy(&ca);
    ex.stop = ex.flushed = ex.shut = 0;
    __atomic_store_n(&ex.abort_at_ns, 0, __ATOMIC_RELEASE);
    ex.running = 1;
    int rc = ex.c.thread_start(&ex.thread, exporter_main, NULL, "elmon-otlp");
    if (rc < 0) {
        ex.running = 0;
        ex.c.warn("cannot start the OTLP exporter thread (%s); export is off", strerror(-rc));
        return rc;
    }
    /* atexit handlers run before any library's destructor: the final flush
     * happens while libcurl and OpenSSL are still whole. */
    if (!atexit_done) {
        atexit(exporter_atexit);
        atexit_done = 1;
    }
    return 0;
}

static void ex_on_span(const struct elmon_span_report *b)
{
    if (!(ex.cfg.t[OTLP_LOGS].sink))
        return;
    /* A report of another layout is refused, never read past its size. */
    if (b->version != ELMON_SPAN_REPORT_VERSION || b->size != sizeof(struct elmon_span_report))
        return;
    size_t cap = elmon_span_report_len(b);
    pthread_mutex_lock(&ex.lock);
    int room = ex.running && !ex.stop && ex.q_n < ex.cfg.logs_queue && ex.q_bytes + cap <= QUEUE_BYTES_MAX;
    if (!room) {
        if (ex.running)
            ex.n_dropped++;
        pthread_mutex_unlock(&ex.lock);
        return;
    }
    pthread_mutex_unlock(&ex.lock);
    struct qrec *r = malloc(offsetof(struct qrec, span) + cap);
    if (!r)
        return;
    memcpy(&r->span, b, cap);
    r->bytes = cap;
    r->in = (struct otlp_log_in){.span = &r->span, .poller = ex.c.poller_name(b->poller), .observed_unix_ns = unix_ns()};
    pthread_mutex_lock(&ex.lock);
    if (ex.q_n < ex.cfg.logs_queue && ex.q_bytes + cap <= QUEUE_BYTES_MAX) {
        ex.q[(ex.q_head + ex.q_n) % ex.cfg.logs_queue] = r;
        ex.q_n++;
        ex.q_bytes += cap;
        r = NULL;
        if (ex.q_n >= ex.cfg.logs_batch)
            pthread_cond_broadcast(&ex.cond);
    } else {
        ex.n_dropped++;
    }
    pthread_mutex_unlock(&ex.lock);
    free(r);
}

static void ex_shutdown(void)
{
    pthread_mutex_lock(&ex.lock);
    if (ex.shut || !ex.running) {
        ex.shut = 1;
        pthread_mutex_unlock(&ex.lock);
        return;
    }
    ex.shut = 1;
    uint64_t deadline = mono_ns() + ex.cfg.flush_ms * 1000000;
    __atomic_store_n(&ex.abort_at_ns, deadline ? deadline : 1, __ATOMIC_RELEASE);
    ex.stop = 1;
    pthread_cond_broadcast(&ex.cond);
    struct timespec dl = mono_ts(deadline);
    while (!ex.flushed && pthread_cond_timedwait(&ex.cond, &ex.lock, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&ex.lock);
}

static void exporter_atexit(void)
{
    ex_shutdown();
}

static void ex_atfork_child(void)
{
    /* Only the forking thread exists here: the exporter thread, its
     * connections and the parent's queued spans stay with the parent. */
    pthread_mutex_init(&ex.lock, NULL);
    ex.running = ex.stop = ex.flushed = 0;
    ex.shut = 0;
    ex.abort_at_ns = 0;
    for (size_t i = 0; ex.q && i < ex.cfg.logs_queue; i++) {
        free(ex.q[i]);
        ex.q[i] = NULL;
    }
    ex.q_head = ex.q_n = ex.q_bytes = 0;
    ex.n_dropped = 0;
    for (size_t i = 0; ex.series && i < ELMON_MAX_LOOPS; i++) {
        if (ex.series[i]) {
            free(ex.series[i]->prev);
            free(ex.series[i]);
            ex.series[i] = NULL;
        }
    }
    otlp_transport_abandon(&ex.tr);
}

static const struct elmon_exporter_ops ops = {
    .size = sizeof(struct elmon_exporter_ops),
    .version = ELMON_EXPORT_API_VERSION,
    .start = ex_start,
    .on_span = ex_on_span,
    .shutdown = ex_shutdown,
    .atfork_child = ex_atfork_child,
};

__attribute__((visibility("default"))) const struct elmon_exporter_ops *elmon_exporter_entry(void)
{
    return &ops;
}
