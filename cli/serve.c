/*
 * elmon serve: the live stats files of every monitored process of the user
 * (common/statsfile.h), served over HTTP as Prometheus metrics, so that a
 * prefork server's workers, which cannot each open a port, are scraped
 * through one.  No socket is ever opened inside a host.
 *
 * Owns: the listening socket, the connections, and one struct live per
 * monitored process found (cli/live.h).
 * Threads: one; a poll loop.  Every call it makes on a host's file is a
 * pread or one pwrite of wanted_until_ns on a tmpfs file: nothing waits on
 * a host, and a copy the writer left half-written is retried once, then
 * the previous copy serves.
 * May not: read another user's files without --all-users as root, show a
 * command line (labels carry the program's name only), or keep a host's
 * figures fresh when nobody scrapes: the files are asked for fresh figures
 * only within FRESH_AFTER_SCRAPE_NS of the last scrape, so an unscraped
 * host pays nothing.
 *
 * Names (docs/EXPORT.md, "Prometheus"): the OTLP instrument names with '.'
 * '-' '/' as '_', counters with _total, the histogram as cumulative
 * _bucket{le} / _sum / _count over the export's bounds, in seconds, no unit
 * suffix: with ELMON_METRIC_PREFIX=asyncio.eventloop in the host the seed's
 * PromQL finds asyncio_eventloop_lag and the rest unchanged.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "hist.h"
#include "json.h"
#include "live.h"
#include "now.h"
#include "statsfile.h"

#define DEFAULT_LISTEN "127.0.0.1:9464"   /* the port OpenTelemetry's Prometheus exporter uses */
#define TICK_NS 500000000ull              /* twice the writer's refresh: no second's peak is missed */
#define FRESH_AFTER_SCRAPE_NS 120000000000ull
#define MAX_CONNS 64
#define HEAD_MAX 8192                     /* a request head past this gets 431 */
#define REQUEST_DEADLINE_NS 10000000000ull   /* accept to last byte sent: slowloris is cut here */
#define RECHECK_NS 5000000000ull          /* figures this old despite asks: is the owner still there? */

static volatile sig_atomic_t serve_stop;

static void on_serve_stop(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static uint64_t mono(void)
{
    return elmon_now_ns(CLOCK_MONOTONIC);
}

/* --- the hosts --- */

struct host {
    struct live lv;
    uint64_t seen_ns;                           /* last found in its directory */
    int dir;                                    /* its directory, an index into struct dirs */
    uint64_t peak_ns[ELMON_STATS_MAX_LOOPS];    /* largest lag_now since the last scrape, by loops[] slot */
    int32_t peak_tid[ELMON_STATS_MAX_LOOPS];
    char *labels[ELMON_STATS_MAX_LOOPS];        /* a scrape's label text per loop, made once (render) */
};

struct dirs {
    char path[8][4200];
    uid_t uid[8];
    int n;
};

static struct host *hosts;
static size_t n_hosts, cap_hosts;

static void host_drop(size_t i)
{
    live_detach(&hosts[i].lv);
    for (int j = 0; j < ELMON_STATS_MAX_LOOPS; j++)
        free(hosts[i].labels[j]);
    hosts[i] = hosts[--n_hosts];
}

static struct host *host_find(int pid)
{
    for (size_t i = 0; i < n_hosts; i++)
        if (hosts[i].lv.pid == pid)
            return &hosts[i];
    return NULL;
}

static int parse_pid_name(const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(name, &end, 10);
    if (end == name || strcmp(end, ".stats") != 0 || errno || v <= 0 || v > 4194304)
        return -1;
    return (int)v;
}

/* Is pid a process that still runs?  kill(pid, 0) alone says yes for a
 * zombie, and a killed worker stays one until its parent waits. */
static int process_runs(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT && errno != ESRCH;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return 0;
    buf[k] = 0;
    const char *close_paren = strrchr(buf, ')');
    return !(close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X'));
}

/* New files in each directory attached; hosts whose file is gone (their
 * process exited and removed it) or whose process is gone dropped. */
static void hosts_scan(const struct dirs *d, uint64_t now)
{
    for (int k = 0; k < d->n; k++) {
        DIR *dir = opendir(d->path[k]);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            int pid = parse_pid_name(e->d_name);
            if (pid < 0)
                continue;
            struct host *h = host_find(pid);
            if (h) {
                h->seen_ns = now;
                continue;
            }
            if (n_hosts == cap_hosts) {
                size_t cap = cap_hosts ? cap_hosts * 2 : 16;
                struct host *nh = realloc(hosts, cap * sizeof *nh);
                if (!nh)
                    break;
                hosts = nh, cap_hosts = cap;
            }
            h = &hosts[n_hosts];
            memset(h, 0, sizeof *h);
            int rc = live_attach(&h->lv, d->path[k], pid, d->uid[k]);
            if (rc == LIVE_OK) {
                h->seen_ns = now;
                h->dir = k;
                n_hosts++;
            } else {
                live_detach(&h->lv);
            }
        }
        closedir(dir);
    }
    for (size_t i = n_hosts; i-- > 0;) {
        struct host *h = &hosts[i];
        struct stat st;
        int gone = h->seen_ns != now || fstat(h->lv.fd, &st) < 0 || st.st_nlink == 0 ||
                   !process_runs(h->lv.pid);
        /* A process that exec'ed a program without libelmon keeps its pid
         * and leaves the file: figures that stopped moving despite asks
         * make us look again, and live_attach removes a file nobody maps. */
        if (!gone && h->lv.have_copy && h->lv.asked_ns > h->lv.copy.updated_mono_ns + RECHECK_NS) {
            struct live again;
            int rc = live_attach(&again, d->path[h->dir], h->lv.pid, h->lv.uid);
            live_detach(&again);
            gone = rc == LIVE_STALE || rc == LIVE_NONE;
        }
        if (gone)
            host_drop(i);
    }
}

/* One look at every host: fresh figures asked for (when scraped lately),
 * one copy, each loop's lag folded into its peak. */
static void hosts_look(int ask)
{
    for (size_t i = 0; i < n_hosts; i++) {
        struct host *h = &hosts[i];
        if (ask)
            live_ask(&h->lv);
        uint64_t before = h->lv.have_copy ? h->lv.copy.updated_mono_ns : 0;
        if (live_copy_tries(&h->lv, 2) != LIVE_OK || h->lv.copy.updated_mono_ns == before)
            continue;
        const struct elmon_stats_file *c = &h->lv.copy;
        for (uint32_t j = 0; j < c->n_loops; j++) {
            /* Slots follow the writer's loop order, which changes when a
             * thread ends: a peak belongs to its tid. */
            if (h->peak_tid[j] != c->loops[j].tid)
                h->peak_tid[j] = c->loops[j].tid, h->peak_ns[j] = 0;
            if (c->loops[j].lag_now_ns > h->peak_ns[j])
                h->peak_ns[j] = c->loops[j].lag_now_ns;
        }
    }
}

/* The directories read: the user's own, and with all_users (root) every
 * user's private directory under the default places. */
static int dirs_find(struct dirs *d, int all_users)
{
    memset(d, 0, sizeof *d);
    int rc = elmon_stats_dir(d->path[0], sizeof d->path[0], 0, getenv("ELMON_STATS_DIR"), getenv("XDG_RUNTIME_DIR"));
    if (rc < 0 && rc != -ENOENT) {
        fprintf(stderr, "elmon serve: %s: %s\n", esc(d->path[0]),
                rc == -EPERM ? "not a private directory of this user; not reading it" : strerror(-rc));
        return -1;
    }
    d->uid[0] = geteuid();
    d->n = 1;
    if (!all_users)
        return 0;
    const char *bases[] = {"/tmp", "/run/user"};
    for (int b = 0; b < 2 && d->n < 8; b++) {
        DIR *dir = opendir(bases[b]);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) && d->n < 8) {
            char path[4200];
            unsigned uid;
            char tail;
            if (b == 0 ? sscanf(e->d_name, "elmon-%u%c", &uid, &tail) != 1
                       : sscanf(e->d_name, "%u%c", &uid, &tail) != 1)
                continue;
            if (b == 0)
                snprintf(path, sizeof path, "/tmp/%s", e->d_name);
            else
                snprintf(path, sizeof path, "/run/user/%s/elmon", e->d_name);
            struct stat st;
            /* Only a real directory of the user its name gives, closed to
             * everyone else: what that user's libelmon would have made. */
            if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077) ||
                strcmp(path, d->path[0]) == 0)
                continue;
            snprintf(d->path[d->n], sizeof d->path[0], "%s", path);
            d->uid[d->n++] = uid;
        }
        closedir(dir);
    }
    return 0;
}

/* --- the exposition --- */

struct out {
    char *p;
    size_t n, cap;
    int failed;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(o->p ? o->p + o->n : NULL, o->p ? o->cap - o->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            o->failed = 1;
            return;
        }
        if (o->p && o->n + (size_t)k < o->cap) {
            o->n += (size_t)k;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 16384;
        while (cap < o->n + (size_t)k + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = 1;
            return;
        }
        o->p = np, o->cap = cap;
    }
}

/* A label value: backslash, quote and newline escaped (the text format's
 * three); other bytes as they are (UTF-8 is allowed).  Control bytes
 * become '?': a thread name is the host's to choose. */
static void out_label(struct out *o, const char *name, const char *v, int comma)
{
    outf(o, "%s%s=\"", comma ? "," : "", name);
    for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
        if (*s == '\\')
            outf(o, "\\\\");
        else if (*s == '"')
            outf(o, "\\\"");
        else if (*s == '\n')
            outf(o, "\\n");
        else if (*s < 0x20 || *s == 0x7f)
            outf(o, "?");
        else
            outf(o, "%c", *s);
    }
    outf(o, "\"");
}

/* The metric prefix of a host: its ELMON_METRIC_PREFIX checked as the
 * exporter checks it (a letter, then letters, digits, . _ - /), with . - /
 * as _; else eventloop, as the exporter would use. */
static void host_prefix(const struct elmon_stats_file *c, char *out, size_t n)
{
    const char *p = c->metric_prefix;
    size_t len = strnlen(p, sizeof c->metric_prefix);
    int ok = len > 0 && len < sizeof c->metric_prefix && len <= 39;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = p[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (i && ((ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '/'));
    }
    snprintf(out, n, "%s", ok ? p : "eventloop");
    for (char *s = out; *s; s++)
        if (*s == '.' || *s == '-' || *s == '/')
            *s = '_';
}

enum kind { GAUGE, COUNTER, HISTOGRAM };

static const struct metric {
    const char *name;
    enum kind kind;
    const char *help;
} metrics[] = {
    {"lag", GAUGE, "Largest event loop lag since the previous scrape, seconds (a turn still running counts with its "
                   "length so far)."},
    {"max_lag", GAUGE, "Largest event loop lag since the loop started, seconds."},
    {"lag_distribution", HISTOGRAM, "Every turn's lag, seconds."},
    {"utilization", GAUGE, "Busy share of the last second, 0..1."},
    {"blocking_events", COUNTER, "Blocking spans ended, by severity."},
    {"active_fds", GAUGE, "Descriptors registered with the loop."},
    {"time", COUNTER, "Time inside turns (active) and inside the waits (idle), seconds."},
    {"turns", COUNTER, "Loop turns completed."},
};

static void put_labels(struct out *o, const struct elmon_stats_file *c, const struct elmon_stats_loop *l)
{
    char id[24];
    snprintf(id, sizeof id, "%d", (int)c->pid);
    out_label(o, "pid", id, 0);
    out_label(o, "process", c->comm, 1);
    snprintf(id, sizeof id, "%d", (int)l->tid);
    out_label(o, "thread_id", id, 1);
    out_label(o, "thread_name", l->thread, 1);
    out_label(o, "poller", l->poller, 1);
    if (c->service_name[0])
        out_label(o, "service_name", c->service_name, 1);
    if (c->service_version[0])
        out_label(o, "service_version", c->service_version, 1);
}

static double sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void out_series(struct out *o, const struct metric *m, const char *fam, struct host *h, uint32_t j)
{
    const struct elmon_stats_loop *l = &h->lv.copy.loops[j];
    /* Made once per scrape (render): escaping the same labels for each
     * sample was most of a scrape's time. */
    const char *lab = h->labels[j] ? h->labels[j] : "";
    switch (m - metrics) {
    case 0: {
        uint64_t v = h->peak_tid[j] == l->tid && h->peak_ns[j] > l->lag_now_ns ? h->peak_ns[j] : l->lag_now_ns;
        outf(o, "%s{%s", fam, lab), outf(o, "} %.9g\n", sec(v));
        break;
    }
    case 1: outf(o, "%s{%s", fam, lab), outf(o, "} %.9g\n", sec(l->lag_max_ns)); break;
    case 2: {
        uint64_t cum = 0;
        for (unsigned b = 0; b <= ELMON_LAG_BOUNDS; b++) {
            cum += l->lag_buckets[b];
            outf(o, "%s_bucket{%s", fam, lab);
            if (b < ELMON_LAG_BOUNDS)
                outf(o, ",le=\"%g\"} %llu\n", sec(elmon_lag_bounds_ns[b]), (unsigned long long)cum);
            else
                outf(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        outf(o, "%s_sum{%s", fam, lab), outf(o, "} %.9g\n", sec(l->lag_sum_ns));
        outf(o, "%s_count{%s", fam, lab), outf(o, "} %llu\n", (unsigned long long)cum);
        break;
    }
    case 3: outf(o, "%s{%s", fam, lab), outf(o, "} %.6f\n", l->utilization_ppm / 1e6); break;
    case 4:
        outf(o, "%s_total{%s", fam, lab);
        outf(o, ",severity=\"warning\"} %llu\n", (unsigned long long)l->n_warning);
        outf(o, "%s_total{%s", fam, lab);
        outf(o, ",severity=\"critical\"} %llu\n", (unsigned long long)l->n_critical);
        break;
    case 5: outf(o, "%s{%s", fam, lab), outf(o, "} %llu\n", (unsigned long long)l->n_fds); break;
    case 6:
        outf(o, "%s_total{%s", fam, lab), outf(o, ",state=\"active\"} %.9g\n", sec(l->busy_ns));
        outf(o, "%s_total{%s", fam, lab), outf(o, ",state=\"idle\"} %.9g\n", sec(l->idle_ns));
        break;
    case 7: outf(o, "%s_total{%s", fam, lab), outf(o, "} %llu\n", (unsigned long long)l->n_turns); break;
    }
}

/* Every family once (the format wants a family's lines together), for each
 * metric prefix the hosts use; then the peaks start again. */
static void render(struct out *o, int openmetrics)
{
    char (*prefixes)[48] = calloc(n_hosts ? n_hosts : 1, sizeof *prefixes);
    size_t n_pre = 0;
    if (!prefixes) {
        o->failed = 1;
        return;
    }
    for (size_t i = 0; i < n_hosts; i++) {
        char p[48];
        host_prefix(&hosts[i].lv.copy, p, sizeof p);
        size_t k = 0;
        while (k < n_pre && strcmp(prefixes[k], p))
            k++;
        if (k == n_pre && hosts[i].lv.have_copy)
            memcpy(prefixes[n_pre++], p, sizeof p);
    }
    for (size_t i = 0; i < n_hosts; i++)
        for (uint32_t j = 0; j < hosts[i].lv.copy.n_loops && hosts[i].lv.have_copy; j++) {
            struct out lo = {0};
            put_labels(&lo, &hosts[i].lv.copy, &hosts[i].lv.copy.loops[j]);
            free(hosts[i].labels[j]);
            hosts[i].labels[j] = lo.failed ? (free(lo.p), NULL) : lo.p;
            o->failed |= lo.failed;
        }
    for (size_t k = 0; k < n_pre; k++)
        for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
            char fam[128];
            snprintf(fam, sizeof fam, "%s_%s", prefixes[k], metrics[m].name);
            /* OpenMetrics names a counter family without _total; the text
             * format names it as its samples. */
            const char *total = metrics[m].kind == COUNTER && !openmetrics ? "_total" : "";
            const char *type = metrics[m].kind == GAUGE ? "gauge" : metrics[m].kind == COUNTER ? "counter" : "histogram";
            outf(o, "# HELP %s%s %s\n# TYPE %s%s %s\n", fam, total, metrics[m].help, fam, total, type);
            for (size_t i = 0; i < n_hosts; i++) {
                char p[48];
                host_prefix(&hosts[i].lv.copy, p, sizeof p);
                if (!hosts[i].lv.have_copy || strcmp(p, prefixes[k]) || !hosts[i].lv.copy.updated_mono_ns)
                    continue;
                for (uint32_t j = 0; j < hosts[i].lv.copy.n_loops; j++)
                    out_series(o, &metrics[m], fam, &hosts[i], j);
            }
        }
    size_t shown = 0;
    for (size_t i = 0; i < n_hosts; i++)
        shown += hosts[i].lv.have_copy && hosts[i].lv.copy.updated_mono_ns;
    outf(o, "# HELP elmon_serve_processes Monitored processes whose figures this scrape shows.\n"
            "# TYPE elmon_serve_processes gauge\nelmon_serve_processes %zu\n", shown);
    if (openmetrics)
        outf(o, "# EOF\n");
    for (size_t i = 0; i < n_hosts; i++)
        memset(hosts[i].peak_ns, 0, sizeof hosts[i].peak_ns);
    free(prefixes);
}

/* --- HTTP --- */

struct conn {
    int fd;
    uint64_t deadline_ns;
    char head[HEAD_MAX];
    size_t got;
    char *resp;          /* malloc'd, being sent */
    size_t resp_n, sent;
};

static struct conn conns[MAX_CONNS];
static uint64_t last_scrape_ns;
static int scraped_once;

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->resp);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static void respond(struct conn *c, int status, const char *reason, const char *ctype, const char *extra,
                    const char *body, size_t body_n, int head_only)
{
    struct out o = {0};
    outf(&o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
         reason, ctype, body_n, extra ? extra : "");
    if (!head_only && body_n && !o.failed) {
        if (o.n + body_n + 1 > o.cap) {
            char *np = realloc(o.p, o.n + body_n + 1);
            if (!np)
                o.failed = 1;
            else
                o.p = np, o.cap = o.n + body_n + 1;
        }
        if (!o.failed) {
            memcpy(o.p + o.n, body, body_n);
            o.n += body_n;
        }
    }
    if (o.failed) {
        free(o.p);
        conn_close(c);
        return;
    }
    c->resp = o.p;
    c->resp_n = o.n;
    c->sent = 0;
}

static void error_page(struct conn *c, int status, const char *reason, const char *extra)
{
    char body[160];
    int k = snprintf(body, sizeof body, "%d %s\n", status, reason);
    respond(c, status, reason, "text/plain; charset=utf-8", extra, body, (size_t)k, 0);
}

/* Does the Accept header ask for OpenMetrics?  Prometheus sends
 * "application/openmetrics-text;version=1.0.0,...;q=0.5,text/plain;..." */
static int wants_openmetrics(const char *head)
{
    for (const char *p = head; (p = strcasestr(p, "\naccept:")); p++) {
        const char *end = strchr(p + 1, '\n');
        const char *om = strcasestr(p, "application/openmetrics-text");
        if (om && (!end || om < end))
            return 1;
    }
    return 0;
}

static void handle_request(struct conn *c, const struct dirs *d)
{
    c->head[c->got] = 0;
    char method[16], target[1024], version[16];
    char fmt[64];
    snprintf(fmt, sizeof fmt, "%%15s %%1023s %%15s");
    if (sscanf(c->head, fmt, method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) ||
        strchr(c->head, '\0') != c->head + c->got) {
        error_page(c, 400, "Bad Request", NULL);
        return;
    }
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET")) {
        error_page(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = 0;
    if (strcmp(target, "/") == 0) {
        static const char idx[] = "elmon serve: event loop metrics of libelmon's processes at /metrics\n";
        respond(c, 200, "OK", "text/plain; charset=utf-8", NULL, idx, sizeof idx - 1, head_only);
        return;
    }
    if (strcmp(target, "/metrics")) {
        error_page(c, 404, "Not Found", NULL);
        return;
    }
    uint64_t now = mono();
    hosts_scan(d, now);
    hosts_look(1);
    last_scrape_ns = now;
    scraped_once = 1;
    int om = wants_openmetrics(c->head);
    struct out o = {0};
    render(&o, om);
    if (o.failed) {
        free(o.p);
        error_page(c, 500, "Internal Server Error", NULL);
        return;
    }
    respond(c, 200, "OK",
            om ? "application/openmetrics-text; version=1.0.0; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8",
            NULL, o.p, o.n, head_only);
    free(o.p);
}

/* Read what came; a whole head gets its answer.  0 to keep the
 * connection, -1 to close it. */
static int conn_read(struct conn *c, const struct dirs *d)
{
    for (;;) {
        if (c->got >= sizeof c->head - 1) {
            error_page(c, 431, "Request Header Fields Too Large", NULL);
            return 0;
        }
        ssize_t k = recv(c->fd, c->head + c->got, sizeof c->head - 1 - c->got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (k == 0)
            return -1;
        size_t from = c->got > 3 ? c->got - 3 : 0;
        c->got += (size_t)k;
        c->head[c->got] = 0;
        if (memmem(c->head + from, c->got - from, "\r\n\r\n", 4) || memmem(c->head + from, c->got - from, "\n\n", 2)) {
            handle_request(c, d);
            return 0;
        }
    }
}

static int conn_write(struct conn *c)
{
    while (c->sent < c->resp_n) {
        ssize_t k = send(c->fd, c->resp + c->sent, c->resp_n - c->sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)k;
    }
    shutdown(c->fd, SHUT_WR);
    return -1;
}

static int listen_on(const char *addr, char *shown, size_t n)
{
    char host[256], port[32];
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || (size_t)(colon - addr) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        fprintf(stderr, "elmon serve: --listen: HOST:PORT (such as 127.0.0.1:9464 or [::1]:9464), not '%s'\n",
                esc(addr));
        return -2;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    snprintf(port, sizeof port, "%s", colon + 1);
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
        h[hl - 1] = 0, h++;
    char *pend;
    long pv = strtol(port, &pend, 10);
    if (*pend || pv < 0 || pv > 65535 || !*h) {
        fprintf(stderr, "elmon serve: --listen: HOST:PORT with a port from 0 to 65535, not '%s'\n", esc(addr));
        return -2;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gr = getaddrinfo(h, port, &hints, &res);
    if (gr) {
        fprintf(stderr, "elmon serve: --listen %s: %s\n", esc(addr), gai_strerror(gr));
        return -2;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "elmon serve: cannot listen on %s: %s\n", esc(addr), strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
            p = ntohs(s4->sin_port);
            snprintf(shown, n, "%s:%d", ip, p);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            p = ntohs(s6->sin6_port);
            snprintf(shown, n, "[%s]:%d", ip, p);
        }
    }
    return fd;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"all-users", no_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = DEFAULT_LISTEN;
    int all_users = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hl:", opts, NULL)) != -1) {
        switch (c) {
        case 'l': addr = optarg; break;
        case 'A': all_users = 1; break;
        case 'h': usage("serve"); return ELMON_EXIT_OK;
        default: fprintf(stderr, "Try 'elmon serve --help'.\n"); return ELMON_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "elmon serve: unexpected argument '%s'\nTry 'elmon serve --help'.\n", esc(argv[optind]));
        return ELMON_EXIT_USAGE;
    }
    if (all_users && geteuid() != 0) {
        fprintf(stderr, "elmon serve: --all-users reads other users' processes and needs root\n");
        return ELMON_EXIT_FAILURE;
    }
    struct dirs d;
    if (dirs_find(&d, all_users) < 0)
        return ELMON_EXIT_FAILURE;
    char shown[300] = "";
    int lfd = listen_on(addr, shown, sizeof shown);
    if (lfd < 0)
        return lfd == -2 ? ELMON_EXIT_USAGE : ELMON_EXIT_FAILURE;
    struct sigaction sa = {0};
    sa.sa_handler = on_serve_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("elmon serve: http://%s/metrics (%s)\n", shown,
           all_users ? "every user's monitored processes" : "your monitored processes");
    fflush(stdout);

    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    uint64_t next_tick = mono();
    while (!serve_stop) {
        struct pollfd pf[MAX_CONNS + 1];
        int idx[MAX_CONNS + 1], np = 0;
        pf[np].fd = lfd, pf[np].events = POLLIN, idx[np++] = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0) {
                pf[np].fd = conns[i].fd;
                pf[np].events = conns[i].resp ? POLLOUT : POLLIN;
                idx[np++] = i;
            }
        uint64_t now = mono();
        int timeout = next_tick > now ? (int)((next_tick - now) / 1000000) + 1 : 0;
        int r = poll(pf, (nfds_t)np, timeout);
        if (r < 0 && errno != EINTR)
            break;
        now = mono();
        if (r > 0) {
            for (int k = 1; k < np; k++) {
                struct conn *cn = &conns[idx[k]];
                if (!pf[k].revents)
                    continue;
                int rc = cn->resp ? conn_write(cn) : conn_read(cn, &d);
                if (rc == 0 && cn->resp && cn->fd >= 0)
                    rc = conn_write(cn);
                if (rc < 0 && cn->fd >= 0)
                    conn_close(cn);
            }
            if (pf[0].revents & POLLIN) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    int slot = -1, oldest = -1;
                    for (int i = 0; i < MAX_CONNS && slot < 0; i++) {
                        if (conns[i].fd < 0)
                            slot = i;
                        else if (!conns[i].resp && (oldest < 0 || conns[i].deadline_ns < conns[oldest].deadline_ns))
                            oldest = i;
                    }
                    /* Full: the connection that has waited longest for
                     * its request head makes room.  A scraper sends its
                     * head at once and is answered below, so clients that
                     * trickle bytes (slowloris) only push out each other. */
                    if (slot < 0 && oldest >= 0) {
                        conn_close(&conns[oldest]);
                        slot = oldest;
                    }
                    if (slot < 0) {
                        close(fd);
                        continue;
                    }
                    memset(&conns[slot], 0, sizeof conns[slot]);
                    conns[slot].fd = fd;
                    conns[slot].deadline_ns = now + REQUEST_DEADLINE_NS;
                    /* Most requests are here already: answered now, not
                     * after a turn of the loop in which they could be
                     * pushed out. */
                    struct conn *cn = &conns[slot];
                    int rc = conn_read(cn, &d);
                    if (rc == 0 && cn->resp)
                        rc = conn_write(cn);
                    if (rc < 0 && cn->fd >= 0)
                        conn_close(cn);
                }
            }
        }
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0 && now >= conns[i].deadline_ns)
                conn_close(&conns[i]);
        if (now >= next_tick) {
            int wanted = scraped_once && now - last_scrape_ns < FRESH_AFTER_SCRAPE_NS;
            if (wanted) {
                hosts_scan(&d, now);
                hosts_look(1);
            }
            next_tick = now + TICK_NS;
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0)
            conn_close(&conns[i]);
    close(lfd);
    while (n_hosts)
        host_drop(n_hosts - 1);
    free(hosts);
    return ELMON_EXIT_OK;
}
