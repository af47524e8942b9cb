/*
 * Resource detection (see resource.h).  Reads /proc, /etc and uname once at
 * start; never on a loop thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "resource.h"
#include "unittest.h"

/* The file's first max bytes, NUL-terminated; *lenp (when not NULL)
 * receives their count, NULs inside included. */
static char *read_text(const char *path, size_t max, size_t *lenp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(max + 1);
    size_t len = 0;
    while (buf && len < max) {
        ssize_t k = read(fd, buf + len, max - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    if (buf)
        buf[len] = 0;
    if (lenp)
        *lenp = len;
    return buf;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int otlp_container_id(const char *text, char out[65])
{
    int found = -ENOENT;
    size_t run = 0;
    for (const char *p = text;; p++) {
        if (*p && is_hex(*p)) {
            run++;
            continue;
        }
        /* A run of exactly 64 hex digits bounded by path punctuation. */
        if (run == 64) {
            const char *start = p - 64;
            char before = start > text ? start[-1] : '/';
            if ((before == '/' || before == '-' || before == ':') &&
                (!*p || *p == '/' || *p == '.' || *p == '\n')) {
                memcpy(out, start, 64);
                out[64] = 0;
                found = 0;
            }
        }
        run = 0;
        if (!*p)
            break;
    }
    return found;
}

const char *otlp_host_arch(const char *m)
{
    static const struct { const char *uname, *otel; } map[] = {
        {"x86_64", "amd64"}, {"aarch64", "arm64"}, {"arm64", "arm64"}, {"i386", "x86"},
        {"i486", "x86"}, {"i586", "x86"}, {"i686", "x86"}, {"armv7l", "arm32"}, {"armv6l", "arm32"},
        {"ppc", "ppc32"}, {"ppc64", "ppc64"}, {"ppc64le", "ppc64"}, {"s390x", "s390x"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(m, map[i].uname) == 0)
            return map[i].otel;
    return m;
}

void otlp_uuid4(char out[37])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, GRND_NONBLOCK);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got < sizeof r) {
        /* No entropy yet this early in boot: time and pid are unique enough
         * for an instance id. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
                               ((unsigned long long)getpid() << 40);
        for (size_t i = got; i < sizeof r; i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
            r[i] = (unsigned char)(x >> 56);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

int otlp_resource_is_int(const char *key)
{
    return strcmp(key, "process.pid") == 0 || strcmp(key, "process.parent_pid") == 0;
}

static void set(struct otlp_resource *r, const char *k, const char *v)
{
    if (v && *v)
        otlp_kvlist_set(&r->attrs, k, v);
}

/* Node's version as process.versions.node spells it ("20.20.2"), from
 * node::per_process::metadata, whose first member is versions.node, a
 * libstdc++ std::string: {data pointer, length, 16-byte inline buffer}.
 * Only the inline case is read (a version is under 16 bytes, so its data
 * pointer then points into the object itself): nothing outside the
 * exported object is ever dereferenced, and a layout that does not match
 * (another C++ library, another node) leaves the version out. */
int otlp_node_version(const void *metadata, char *out, size_t n)
{
    if (!metadata)
        return -1;
    const unsigned char *obj = metadata;
    const char *data;
    size_t len;
    memcpy(&data, obj, sizeof data);
    memcpy(&len, obj + sizeof data, sizeof len);
    const char *inline_buf = (const char *)obj + sizeof data + sizeof len;
    if (data != inline_buf || len == 0 || len >= 16 || len >= n || inline_buf[len] != 0)
        return -1;
    if (strspn(inline_buf, "0123456789.") != len || inline_buf[0] == '.')
        return -1;
    memcpy(out, inline_buf, len + 1);
    return 0;
}

static void detect_runtime(struct otlp_resource *r)
{
    /* The host's own symbols, found in the global scope. */
    const char *(*py_version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
    if (py_version) {
        const char *v = py_version();
        char ver[64];
        snprintf(ver, sizeof ver, "%.*s", (int)strcspn(v, " "), v);
        set(r, "process.runtime.name", "cpython");
        set(r, "process.runtime.version", ver);
        set(r, "process.runtime.description", v);
        return;
    }
    if (dlsym(RTLD_DEFAULT, "napi_module_register")) {
        set(r, "process.runtime.name", "nodejs");
        char ver[16];
        if (otlp_node_version(dlsym(RTLD_DEFAULT, "_ZN4node11per_process8metadataE"), ver, sizeof ver) == 0)
            set(r, "process.runtime.version", ver);
    }
}

/* PRETTY_NAME of os-release(5) text, unquoted, into out; out is left
 * alone when there is none. */
UNITTEST void os_pretty_name(const char *osr, char *out, size_t n)
{
    const char *p = strstr(osr, "PRETTY_NAME=");
    if (p && (p == osr || p[-1] == '\n')) {
        p += 12;
        size_t k = strcspn(p, "\n");
        if (k >= 2 && (p[0] == '"' || p[0] == '\'') && p[k - 1] == p[0]) {
            p++;
            k -= 2;
        }
        snprintf(out, n, "%.*s", (int)k, p);
    }
}

static void detect_os(struct otlp_resource *r)
{
    struct utsname u;
    if (uname(&u) == 0) {
        set(r, "host.name", u.nodename);
        set(r, "host.arch", otlp_host_arch(u.machine));
        set(r, "os.version", u.release);
    }
    set(r, "os.type", "linux");
    char *osr = read_text("/etc/os-release", 16384, NULL);
    char desc[256] = "";
    if (osr) {
        os_pretty_name(osr, desc, sizeof desc);
        free(osr);
    }
    if (desc[0] && uname(&u) == 0) {
        size_t k = strlen(desc);
        snprintf(desc + k, sizeof desc - k, " (Linux %s)", u.release);
    } else if (uname(&u) == 0) {
        snprintf(desc, sizeof desc, "%s %s", u.sysname, u.release);
    }
    set(r, "os.description", desc);
    char *mid = read_text("/etc/machine-id", 128, NULL);
    if (!mid)
        mid = read_text("/var/lib/dbus/machine-id", 128, NULL);
    if (mid) {
        mid[strcspn(mid, "\n")] = 0;
        set(r, "host.id", mid);
        free(mid);
    }
    char cid[65];
    char *cg = read_text("/proc/self/cgroup", 65536, NULL);
    int found = cg ? otlp_container_id(cg, cid) : -ENOENT;
    free(cg);
    if (found < 0) {
        /* cgroup v2 with a private cgroup namespace shows "0::/": the
         * runtime's bind mounts still name the container. */
        char *mi = read_text("/proc/self/mountinfo", 1 << 20, NULL);
        if (mi) {
            char *line = strstr(mi, "/containers/");
            found = line ? otlp_container_id(line, cid) : -ENOENT;
            free(mi);
        }
    }
    if (found == 0)
        set(r, "container.id", cid);
}

/* process.command_args from /proc/self/cmdline's len bytes: NUL-separated
 * arguments, up to the first empty one.  The last may lack its NUL: the
 * file was cut at read_text's limit, or the process rewrote its argument
 * area to set its title (nginx does), and the kernel then returns the
 * title without one. */
UNITTEST void cmdline_args(const char *cmd, size_t len, struct otlp_resource *r)
{
    const char *end = cmd + len;
    size_t n = 0;
    for (const char *p = cmd; p < end && *p; p += strnlen(p, (size_t)(end - p)) + 1)
        n++;
    r->command_args = calloc(n ? n : 1, sizeof *r->command_args);
    size_t i = 0;
    for (const char *p = cmd; r->command_args && p < end && *p && i < n;
         p += strnlen(p, (size_t)(end - p)) + 1)
        r->command_args[i++] = strndup(p, (size_t)(end - p));
    r->n_args = r->command_args ? i : 0;
}

static void detect_process(const struct otlp_config *cfg, struct otlp_resource *r)
{
    char num[32], path[4096];
    snprintf(num, sizeof num, "%d", (int)getpid());
    set(r, "process.pid", num);
    snprintf(num, sizeof num, "%d", (int)getppid());
    set(r, "process.parent_pid", num);
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k > 0) {
        path[k] = 0;
        set(r, "process.executable.path", path);
        const char *slash = strrchr(path, '/');
        set(r, "process.executable.name", slash ? slash + 1 : path);
    } else {
        set(r, "process.executable.name", program_invocation_short_name);
    }
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res)
        set(r, "process.owner", pw.pw_name);
    if (cfg->command_args) {
        size_t len;
        char *cmd = read_text("/proc/self/cmdline", 1 << 20, &len);
        if (cmd) {
            cmdline_args(cmd, len, r);
            free(cmd);
        }
    }
}

int otlp_resource_detect(const struct elmon_export_core *c, const struct otlp_config *cfg,
                         struct otlp_resource *r)
{
    memset(r, 0, sizeof *r);
    /* Lowest precedence first: the SDK's own attributes, then detected
     * ones, then OTEL_RESOURCE_ATTRIBUTES, then the seed's variables, then
     * OTEL_SERVICE_NAME. */
    set(r, "telemetry.sdk.name", "libelmon");
    set(r, "telemetry.sdk.language", "c");
    set(r, "telemetry.sdk.version", c->elmon_version);
    detect_process(cfg, r);
    detect_runtime(r);
    detect_os(r);

    const char *ra = c->env_str("OTEL_RESOURCE_ATTRIBUTES");
    if (ra) {
        struct otlp_kvlist l = {0};
        int bad = 0;
        if (otlp_parse_kvlist(ra, 1, &l, &bad) == -EINVAL)
            c->warn("OTEL_RESOURCE_ATTRIBUTES has %d malformed entr%s (not key=value with valid %%XX "
                    "escapes); the whole variable is ignored", bad, bad == 1 ? "y" : "ies");
        for (size_t i = 0; i < l.n; i++)
            set(r, l.v[i].key, l.v[i].value);
        otlp_kvlist_free(&l);
    }
    static const struct { const char *var, *key; } seed[] = {
        {"SERVICE_VERSION", "service.version"},
        {"SERVICE_NAMESPACE", "service.namespace"},
        {"DEPLOYMENT_ENVIRONMENT", "deployment.environment"},
        {"OTEL_RD_K8S_POD_NAME", "k8s.pod.name"},
        {"OTEL_RD_K8S_POD_UID", "k8s.pod.uid"},
        {"OTEL_RD_K8S_NAMESPACE_NAME", "k8s.namespace.name"},
        {"OTEL_RD_K8S_CONTAINER_NAME", "k8s.container.name"},
        {"OTEL_RD_K8S_DEPLOYMENT_NAME", "k8s.deployment.name"},
        {"OTEL_RD_K8S_NODE_NAME", "k8s.node.name"},
        {"OTEL_RD_K8S_CLUSTER_NAME", "k8s.cluster.name"},
    };
    for (size_t i = 0; i < sizeof seed / sizeof seed[0]; i++)
        set(r, seed[i].key, c->env_str(seed[i].var));
    set(r, "service.name", c->env_str("OTEL_SERVICE_NAME"));
    if (!otlp_kvlist_get(&r->attrs, "service.name")) {
        char name[512];
        snprintf(name, sizeof name, "unknown_service:%s",
                 otlp_kvlist_get(&r->attrs, "process.executable.name") ?: program_invocation_short_name);
        set(r, "service.name", name);
    }
    char id[37];
    otlp_uuid4(id);
    set(r, "service.instance.id", id);
    return 0;
}

void otlp_resource_free(struct otlp_resource *r)
{
    otlp_kvlist_free(&r->attrs);
    for (size_t i = 0; i < r->n_args; i++)
        free(r->command_args[i]);
    free(r->command_args);
    memset(r, 0, sizeof *r);
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct otlp_kv *)a)->key, ((const struct otlp_kv *)b)->key);
}

/* Outside text for the log, control characters as '?': a value from the
 * environment must not break or forge log lines, nor drive a terminal. */
static const char *log_text(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = 0;
    return out;
}

void otlp_resource_print(const struct elmon_export_core *c, const struct otlp_config *cfg,
                         const struct otlp_resource *r)
{
    static const char *const sink_names[] = {"none", "otlp", "console", "otlp+console"};
    static const char *const proto_names[] = {"http/protobuf", "grpc", "http/json"};
    char line[1024], url[512], key[256], value[1024];
    c->logf("OpenTelemetry Configuration:");
    c->logf("  Metric export interval: %llums", (unsigned long long)cfg->interval_ms);
    for (int s = 0; s < OTLP_NSIGNALS; s++) {
        const struct otlp_target *t = &cfg->t[s];
        const char *sig = s == OTLP_METRICS ? "Metrics" : "Logs";
        if (!(t->sink & ELMON_SINK_OTLP)) {
            c->logf("  %s exporter: %s", sig, sink_names[t->sink & 3]);
            continue;
        }
        otlp_url_printable(t->url, value, sizeof value);
        log_text(value, url, sizeof url);
        int k = snprintf(line, sizeof line, "  %s exporter: %s, OTLP endpoint: %s (%s%s, timeout %llums",
                         sig, sink_names[t->sink & 3], url, proto_names[t->protocol],
                         t->gzip ? ", gzip" : "", (unsigned long long)t->timeout_ms);
        /* Header names only: their values are credentials. */
        for (size_t i = 0; i < t->headers.n && k > 0 && (size_t)k < sizeof line; i++)
            k += snprintf(line + k, sizeof line - (size_t)k, "%s%s", i ? ", " : ", headers: ",
                          log_text(t->headers.v[i].key, key, sizeof key));
        if (k > 0 && (size_t)k < sizeof line)
            snprintf(line + k, sizeof line - (size_t)k, ")");
        c->logf("%s", line);
    }
    c->logf("OpenTelemetry Resource Attributes:");
    struct otlp_kv *sorted = malloc(r->attrs.n * sizeof *sorted);
    if (!sorted)
        return;
    memcpy(sorted, r->attrs.v, r->attrs.n * sizeof *sorted);
    qsort(sorted, r->attrs.n, sizeof *sorted, cmp_kv);
    for (size_t i = 0; i < r->attrs.n; i++)
        c->logf("  %s: %s", log_text(sorted[i].key, key, sizeof key),
                log_text(sorted[i].value, value, sizeof value));
    free(sorted);
    if (r->n_args)
        c->logf("  process.command_args: %zu arguments", r->n_args);
}
