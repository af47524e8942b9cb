/*
 * The OTLP sink, the core's side of OTLP export: deciding from the OTEL_* variables whether
 * anything is exported at all, loading libelmon-exporter.so (dlopen, so
 * libelmon.so itself links libc alone and libcurl's TLS stack is never bound
 * to the host's), and forwarding ended spans to it.
 *
 * Threads: the watchdog thread (start, span), the exiting thread
 * (shutdown), the forking thread (atfork child).  ops and exporter_running
 * are written by the watchdog thread before it forwards the first span and
 * read by the exiting thread with acquire loads.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include "buf.h"
#include "config.h"
#include "dl.h"
#include "otlp.h"
#include "ownfd.h"
#include "hist.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sink.h"
#include "snapshot.h"
#include "unittest.h"

static const struct elmon_exporter_ops *ops;
static int exporter_running;
static int plan_done;
static struct elmon_export_plan plan;

/* OTEL_{METRICS,LOGS}_EXPORTER: a comma-separated list as in the SDK
 * specification.  Unset means otlp when an endpoint is configured for the
 * signal, and nothing otherwise: with no endpoint anywhere libelmon never
 * touches the network unless told "otlp" explicitly. */
UNITTEST int sink_for(const char *var, int have_endpoint)
{
    const char *v = elmon_env_str(var);
    if (!v)
        return have_endpoint ? ELMON_SINK_OTLP : ELMON_SINK_NONE;
    int sink = ELMON_SINK_NONE, none = 0, warned = 0;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        char item[32];
        const char *s = p;
        size_t k = n;
        while (k && (*s == ' ' || *s == '\t'))
            s++, k--;
        while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
            k--;
        snprintf(item, sizeof item, "%.*s", (int)(k < sizeof item ? k : sizeof item - 1), s);
        static const char *const names[] = {"otlp", "console", "none", 0};
        int i = k < sizeof item ? elmon_parse_enum(item, names) : -EINVAL;
        if (i == 0)
            sink |= ELMON_SINK_OTLP;
        else if (i == 1)
            sink |= ELMON_SINK_CONSOLE;
        else if (i == 2)
            none = 1;
        else if (k && !warned++) {   /* one warning per variable: the first unknown name */
            char mem[256];
            struct elmon_buf b;
            elmon_buf_init(&b, mem, sizeof mem);
            elmon_buf_printf(&b, "%s names an exporter libelmon does not have: ", var);
            elmon_buf_quote_value(&b, item, 32);
            elmon_buf_puts(&b, " (otlp, console, none); ignoring it");
            elmon_warn("%s", mem);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return none ? ELMON_SINK_NONE : sink;
}

/* What each signal goes to, from the environment; warns once per bad
 * variable, so the core asks once and keeps the answer. */
UNITTEST void plan_from_env(struct elmon_export_plan *out)
{
    out->metrics = out->logs = ELMON_SINK_NONE;
    if (elmon_env_bool("OTEL_SDK_DISABLED", 0))
        return;
    int generic = elmon_env_str("OTEL_EXPORTER_OTLP_ENDPOINT") != NULL;
    out->metrics = sink_for("OTEL_METRICS_EXPORTER", generic || elmon_env_str("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));
    out->logs = sink_for("OTEL_LOGS_EXPORTER", generic || elmon_env_str("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"));
}

void elmon_export_plan(struct elmon_export_plan *out)
{
    if (!plan_done) {
        plan_from_env(&plan);
        plan_done = 1;
    }
    *out = plan;
}

static const struct elmon_export_core core_api = {
    .size = sizeof(struct elmon_export_core),
    .version = ELMON_EXPORT_API_VERSION,
    .elmon_version = ELMON_VERSION,
    .loop_index = elmon_loop_index,
    .loops_foreach = elmon_loops_foreach,
    .loop_snapshot = elmon_loop_snapshot,
    .take_window_max = elmon_loop_take_window_max,
    .poller_name = elmon_poller_name,
    .log_line = elmon_log_line,
    .logf = elmon_logf,
    .warn = elmon_warn,
    .parse_uint = elmon_parse_uint,
    .parse_bool = elmon_parse_bool,
    .parse_enum = elmon_parse_enum,
    .env_uint = elmon_env_uint,
    .env_bool = elmon_env_bool,
    .env_enum = elmon_env_enum,
    .env_str = elmon_env_str,
    .export_plan = elmon_export_plan,
    .thread_start = elmon_thread_start,
    .hist_bucket_lo = elmon_hist_bucket_lo,
    .hist_bucket_hi = elmon_hist_bucket_hi,
    .adopt_fd = elmon_own_adopt,
    .release_fd = elmon_own_release,
};

/* How the exporter and its libraries (libcurl, OpenSSL, nghttp2, zlib) bind
 * their symbols.  Loaded plainly, every reference is looked up in the
 * global scope first, where a host that carries its own copies wins: in a
 * Node.js process libcurl and even the system's libssl would call node's
 * OpenSSL, nghttp2 and zlib.  RTLD_DEEPBIND puts the exporter's own
 * dependencies first, so it gets the system's libraries, and C library
 * functions too: that is safe only when the process's allocator is the C
 * library's.  A host that interposes malloc (redis links jemalloc; a
 * sanitizer's runtime) would have libc allocate with its malloc and
 * libcurl free with glibc's, which aborted redis; there the exporter loads
 * without DEEPBIND, and such a host's bundled libraries, if any, win. */
struct definer {
    const char *name;   /* the symbol */
    void *addr;         /* its first definition in the global scope */
};

/* dl_iterate_phdr visits the objects in the global lookup order: the
 * executable, the preloaded libraries, then their dependencies.  The first
 * one other than the executable that defines the symbol itself is where a
 * canonical PLT entry of the executable leads. */
static int first_definer(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct definer *d = arg;
    if (!info->dlpi_name || !*info->dlpi_name)
        return 0;   /* the executable (or the vDSO) */
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return 0;
    void *p = dlsym(h, d->name);
    Dl_info di;
    int own = p && dladdr(p, &di) && di.dli_fname && strcmp(di.dli_fname, info->dlpi_name) == 0;
    dlclose(h);
    if (!own)
        return 0;
    d->addr = p;
    return 1;
}

UNITTEST int allocator_is_libc(void)
{
    /* A sanitizer's runtime refuses RTLD_DEEPBIND outright. */
    static const char *const sanitizers[] = {"__asan_init", "__tsan_init", "__msan_init", "__hwasan_init"};
    for (size_t i = 0; i < sizeof sanitizers / sizeof sanitizers[0]; i++)
        if (dlsym(RTLD_DEFAULT, sanitizers[i]))
            return 0;
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc)
        return 0;
    static const char *const names[] = {"malloc", "free", "calloc", "realloc"};
    int same = 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && same; i++) {
        void *own = dlsym(libc, names[i]);
        void *seen = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        const ElfW(Sym) *sym = NULL;
        /* A non-PIE executable that takes malloc's address (node) has a
         * canonical PLT entry, an undefined symbol with a value, which is
         * what the global lookup returns: look for the definition it leads
         * to instead. */
        if (seen != own && dladdr1(seen, &info, (void **)&sym, RTLD_DL_SYMENT) && sym &&
            sym->st_shndx == SHN_UNDEF) {
            struct definer d = {names[i], NULL};
            dl_iterate_phdr(first_definer, &d);
            seen = d.addr;
        }
        same = own && seen == own;
    }
    dlclose(libc);
    return same;
}

/* The exporter lives next to libelmon.so: dladdr names our own file. */
static const struct elmon_exporter_ops *load_exporter(void)
{
    Dl_info info;
    char path[4096];
    if (!dladdr((void *)load_exporter, &info) || !info.dli_fname) {
        elmon_warn("cannot find libelmon's own path; OTLP export is off");
        return NULL;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    int dir = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(path, sizeof path, "%.*s/%s", dir, slash ? info.dli_fname : ".", ELMON_EXPORTER_SONAME);
    int deep = allocator_is_libc();
    if (elmon_opt.verbose)
        elmon_logf("exporter loaded %s (%s)", deep ? "with RTLD_DEEPBIND: its own libraries first" :
                   "without RTLD_DEEPBIND", deep ? "the C library's allocator" : "the host interposes malloc");
    void *h = elmon_dlopen(path, RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
    if (!h) {
        const char *e = dlerror();
        elmon_warn("cannot load %s (%s); OTLP export is off", path, e ? e : "unknown error");
        return NULL;
    }
    elmon_exporter_entry_fn entry = (elmon_exporter_entry_fn)dlsym(h, "elmon_exporter_entry");
    const struct elmon_exporter_ops *o = entry ? entry() : NULL;
    if (!o || o->version != ELMON_EXPORT_API_VERSION || o->size < sizeof *o) {
        elmon_warn("%s is not the exporter of this libelmon (version %u); OTLP export is off",
                   path, o ? o->version : 0u);
        dlclose(h);
        return NULL;
    }
    return o;
}

static int start_exporter(void *core)
{
    return ops->start(core);
}

static void otlp_start(void)
{
    struct elmon_export_plan p;
    elmon_export_plan(&p);
    if (p.metrics == ELMON_SINK_NONE && p.logs == ELMON_SINK_NONE)
        return;
    if (!ops)
        __atomic_store_n(&ops, load_exporter(), __ATOMIC_RELEASE);
    if (!ops)
        return;
    struct elmon_export_core c = core_api;
    c.verbose = elmon_opt.verbose;
    c.block_ns = elmon_block_ns;
    c.critical_ns = elmon_critical_ns;
    /* Under the load lock: its first call initialises libcurl and OpenSSL
     * (core/dl.h), which a fork must not split. */
    if (elmon_dl_init(start_exporter, &c) == 0)
        __atomic_store_n(&exporter_running, 1, __ATOMIC_RELEASE);
}

/* Ended spans only: the exporter sends one log record per span. */
static void otlp_span(const struct elmon_span_report *r, int flags)
{
    (void)flags;
    if (r->phase == ELMON_SPAN_END && __atomic_load_n(&exporter_running, __ATOMIC_ACQUIRE))
        ops->on_span(r);
}

/* Not at _exit: the final flush could take the exporter's whole timeout. */
static void otlp_shutdown(int fast)
{
    if (!fast && __atomic_load_n(&exporter_running, __ATOMIC_ACQUIRE))
        ops->shutdown();
}

static void otlp_atfork_child(void)
{
    exporter_running = 0;
    if (ops)
        ops->atfork_child();
}

static const char *otlp_off(void)
{
    struct elmon_export_plan p;
    elmon_export_plan(&p);
    if (p.metrics == ELMON_SINK_NONE && p.logs == ELMON_SINK_NONE)
        return "no OTEL_* exporter or endpoint";
    return __atomic_load_n(&exporter_running, __ATOMIC_ACQUIRE) ? NULL : "the exporter did not start";
}

const struct elmon_sink elmon_sink_otlp = {
    .name = "otlp",
    .off = otlp_off,
    .start = otlp_start,
    .span = otlp_span,
    .atfork_child = otlp_atfork_child,
    .shutdown = otlp_shutdown,
};
