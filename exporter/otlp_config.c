/*
 * OTEL_* configuration (see otlp_config.h).  Runs once on the watchdog
 * thread when the exporter starts, and in the unit tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "otlp_config.h"

void otlp_kvlist_free(struct otlp_kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int otlp_kvlist_set(struct otlp_kvlist *l, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].key, key) == 0) {
            free(l->v[i].value);
            l->v[i].value = v;
            return 0;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct otlp_kv *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            free(v);
            return -ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    l->v[l->n].key = k;
    l->v[l->n].value = v;
    l->n++;
    return 0;
}

const char *otlp_kvlist_get(const struct otlp_kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0)
            return l->v[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int otlp_percent_decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -EINVAL;
            out[k++] = (char)(a * 16 + b);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = 0;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

int otlp_parse_kvlist(const char *s, int strict, struct otlp_kvlist *out, int *n_bad)
{
    int bad = 0, rc = 0;
    const char *p = s ? s : "";
    size_t len = strlen(p);
    char *key = malloc(len + 1), *val = malloc(len + 1);
    if (!key || !val) {
        rc = -ENOMEM;
        goto out;
    }
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *item = p;
        size_t k = n;
        trim(&item, &k);
        p += n;
        if (*p == ',')
            p++;
        if (!k)
            continue;            /* "a=1,,b=2" and a trailing comma are harmless */
        const char *eq = memchr(item, '=', k);
        if (!eq) {
            bad++;
            continue;
        }
        const char *ks = item, *vs = eq + 1;
        size_t kn = (size_t)(eq - item), vn = k - kn - 1;
        trim(&ks, &kn);
        trim(&vs, &vn);
        if (!kn || otlp_percent_decode(ks, kn, key) < 0 || otlp_percent_decode(vs, vn, val) < 0) {
            bad++;
            continue;
        }
        rc = otlp_kvlist_set(out, key, val);
        if (rc < 0)
            goto out;
    }
    if (strict && bad) {
        otlp_kvlist_free(out);
        rc = -EINVAL;
    }
out:
    free(key);
    free(val);
    if (n_bad)
        *n_bad = bad;
    return rc;
}

static const char *const protocol_names[] = {"http/protobuf", "grpc", "http/json", 0};
static const char *const temporality_names[] = {"cumulative", "delta", "lowmemory", 0};
static const char *const histogram_names[] = {"explicit_bucket_histogram",
                                              "base2_exponential_bucket_histogram", 0};

static int parse_in(const char *s, const char *const *names)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; names[i]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -EINVAL;
}

int otlp_parse_protocol(const char *s) { return parse_in(s, protocol_names); }
int otlp_parse_temporality(const char *s) { return parse_in(s, temporality_names); }
int otlp_parse_histogram(const char *s) { return parse_in(s, histogram_names); }

static const char *const signal_paths[] = {"v1/metrics", "v1/logs"};
static const char *const grpc_methods[] = {
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

static int has_scheme(const char *s, const char **rest)
{
    if (strncasecmp(s, "http://", 7) == 0) {
        *rest = s + 7;
        return 1;
    }
    if (strncasecmp(s, "https://", 8) == 0) {
        *rest = s + 8;
        return 2;
    }
    return 0;
}

static int valid_authority(const char *host, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c == 0x7f || c == '\\' || c == '"' || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

char *otlp_endpoint_url(const char *generic, const char *per_signal, int signal, int protocol,
                        int insecure, int *err)
{
    char *url = NULL;
    *err = 0;
    if (protocol == OTLP_GRPC) {
        const char *ep = per_signal ? per_signal : generic ? generic : "http://localhost:4317";
        const char *rest;
        int scheme = has_scheme(ep, &rest);
        if (!scheme)
            rest = ep;
        size_t auth = strcspn(rest, "/?#");
        if (!valid_authority(rest, auth)) {
            *err = -EINVAL;
            return NULL;
        }
        const char *sch = scheme == 1 ? "http" : scheme == 2 ? "https" : insecure ? "http" : "https";
        if (asprintf(&url, "%s://%.*s%s", sch, (int)auth, rest, grpc_methods[signal]) < 0)
            url = NULL;
        return url;
    }
    const char *rest;
    if (per_signal) {
        if (!has_scheme(per_signal, &rest) || !valid_authority(rest, strcspn(rest, "/?#"))) {
            *err = -EINVAL;
            return NULL;
        }
        return strdup(per_signal);
    }
    const char *ep = generic ? generic : "http://localhost:4318";
    if (!has_scheme(ep, &rest) || !valid_authority(rest, strcspn(rest, "/?#"))) {
        *err = -EINVAL;
        return NULL;
    }
    size_t n = strlen(ep);
    int slash = n && ep[n - 1] == '/';
    if (asprintf(&url, "%s%s%s", ep, slash ? "" : "/", signal_paths[signal]) < 0)
        url = NULL;
    return url;
}

void otlp_url_printable(const char *url, char *out, size_t n)
{
    const char *rest;
    int scheme = has_scheme(url, &rest);
    if (!scheme) {
        snprintf(out, n, "(invalid)");
        return;
    }
    size_t auth = strcspn(rest, "/?#");
    /* The last '@': a password may hold a raw one ("user:p@ss@host"). */
    const char *at = memrchr(rest, '@', auth);
    const char *host = at ? at + 1 : rest;
    size_t path = strcspn(host, "?#");
    snprintf(out, n, "%s://%.*s", scheme == 1 ? "http" : "https", (int)path, host);
}

/* --- environment --- */

/* Every variable the exporter reads, spelled out per signal (the docs test
 * checks literals against docs/VARIABLES.md). */
struct signal_vars {
    const char *endpoint, *protocol, *headers, *timeout, *compression;
    const char *certificate, *client_key, *client_certificate, *insecure;
};
static const struct signal_vars generic_vars = {
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_INSECURE",
};
static const struct signal_vars signal_vars[OTLP_NSIGNALS] = {
    {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
     "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
     "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
     "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
     "OTEL_EXPORTER_OTLP_METRICS_INSECURE"},
    {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
     "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
     "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
     "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
     "OTEL_EXPORTER_OTLP_LOGS_INSECURE"},
};

/* The per-signal variable when set, else the generic one; *which names the
 * variable used, for warnings. */
static const char *pick(const struct elmon_export_core *c, const char *sig, const char *gen,
                        const char **which)
{
    const char *v = c->env_str(sig);
    *which = sig;
    if (!v) {
        v = c->env_str(gen);
        *which = gen;
    }
    return v;
}

/* A generic variable serves both signals and is warned about once: when
 * the second signal reads one the first has read, it parses quietly. */
static uint64_t uint_once(const struct elmon_export_core *c, int quiet, const char *name)
{
    uint64_t v;
    const char *s = c->env_str(name);
    if (!quiet)
        return c->env_uint(name, 10000, 1, 3600000, "ms");
    return s && c->parse_uint(s, 1, 3600000, &v) == 0 ? v : 10000;
}

static int bool_once(const struct elmon_export_core *c, int quiet, const char *name)
{
    int v;
    const char *s = c->env_str(name);
    if (!quiet)
        return c->env_bool(name, 0);
    return s && c->parse_bool(s, &v) == 0 ? v : 0;
}

static int enum_once(const struct elmon_export_core *c, int quiet, const char *name, const char *const *names)
{
    const char *s = c->env_str(name);
    if (!quiet)
        return c->env_enum(name, names, 0);
    int i = s ? c->parse_enum(s, names) : -1;
    return i >= 0 ? i : 0;
}

static int load_target(const struct elmon_export_core *c, int signal, int sink, int generic_read,
                       struct otlp_target *t)
{
    const struct signal_vars *sv = &signal_vars[signal], *gv = &generic_vars;
    const char *which;
    t->sink = sink;
    if (!(sink & ELMON_SINK_OTLP))
        return 0;

    const char *proto = pick(c, sv->protocol, gv->protocol, &which);
    t->protocol = OTLP_HTTP_PROTOBUF;
    if (proto) {
        int p = otlp_parse_protocol(proto);
        int quiet = generic_read && which == gv->protocol;
        if (p == OTLP_HTTP_JSON && !quiet)
            c->warn("%s=http/json is not supported by libelmon; using http/protobuf", which);
        else if (p < 0)
            enum_once(c, quiet, which, protocol_names);   /* the one warning */
        else
            t->protocol = p;
    }

    int insecure = 0;
    if (c->env_str(sv->insecure))
        insecure = c->env_bool(sv->insecure, 0);
    else
        insecure = bool_once(c, generic_read, gv->insecure);

    const char *gen_ep = c->env_str(gv->endpoint), *sig_ep = c->env_str(sv->endpoint);
    int err;
    t->url = otlp_endpoint_url(gen_ep, sig_ep, signal, t->protocol, insecure, &err);
    if (!t->url && err) {
        if (sig_ep || !generic_read)
            c->warn("%s is not an http:// or https:// URL; using the default endpoint",
                    sig_ep ? sv->endpoint : gv->endpoint);
        t->url = otlp_endpoint_url(NULL, NULL, signal, t->protocol, insecure, &err);
    }
    if (!t->url)
        return -ENOMEM;

    const char *h = pick(c, sv->headers, gv->headers, &which);
    if (h) {
        int bad = 0;
        if (otlp_parse_kvlist(h, 0, &t->headers, &bad) == -ENOMEM)
            return -ENOMEM;
        if (bad && !(generic_read && which == gv->headers))   /* never the value: headers carry credentials */
            c->warn("%s has %d malformed entr%s (not key=value with valid %%XX escapes); %s ignored",
                    which, bad, bad == 1 ? "y" : "ies", bad == 1 ? "it is" : "they are");
    }

    if (c->env_str(sv->timeout))
        t->timeout_ms = c->env_uint(sv->timeout, 10000, 1, 3600000, "ms");
    else
        t->timeout_ms = uint_once(c, generic_read, gv->timeout);

    static const char *const compressions[] = {"none", "gzip", 0};
    if (c->env_str(sv->compression))
        t->gzip = c->env_enum(sv->compression, compressions, 0) == 1;
    else
        t->gzip = enum_once(c, generic_read, gv->compression, compressions) == 1;

    const char *v;
    if ((v = pick(c, sv->certificate, gv->certificate, &which)) && !(t->ca_file = strdup(v)))
        return -ENOMEM;
    if ((v = pick(c, sv->client_certificate, gv->client_certificate, &which)) && !(t->client_cert = strdup(v)))
        return -ENOMEM;
    if ((v = pick(c, sv->client_key, gv->client_key, &which)) && !(t->client_key = strdup(v)))
        return -ENOMEM;
    return 0;
}

int otlp_config_load(const struct elmon_export_core *c, struct otlp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    struct elmon_export_plan plan;
    c->export_plan(&plan);
    int rc = load_target(c, OTLP_METRICS, plan.metrics, 0, &cfg->t[OTLP_METRICS]);
    if (rc == 0)
        rc = load_target(c, OTLP_LOGS, plan.logs, (plan.metrics & ELMON_SINK_OTLP) != 0, &cfg->t[OTLP_LOGS]);
    if (rc < 0)
        return rc;

    /* The seed's OTEL_METRIC_EXPORT_INTERVAL_MS is read when the spec's name
     * is not set. */
    if (c->env_str("OTEL_METRIC_EXPORT_INTERVAL"))
        cfg->interval_ms = c->env_uint("OTEL_METRIC_EXPORT_INTERVAL", 60000, 1, 86400000, "ms");
    else
        cfg->interval_ms = c->env_uint("OTEL_METRIC_EXPORT_INTERVAL_MS", 60000, 1, 86400000, "ms");
    cfg->export_timeout_ms = c->env_uint("OTEL_METRIC_EXPORT_TIMEOUT", 30000, 1, 3600000, "ms");
    cfg->flush_ms = c->env_uint("ELMON_EXPORT_FLUSH_MS", 2000, 0, 60000, "ms");
    cfg->temporality = c->env_enum("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", temporality_names, 0);
    cfg->histogram = c->env_enum("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", histogram_names, 0);
    cfg->logs_delay_ms = c->env_uint("OTEL_BLRP_SCHEDULE_DELAY", 1000, 1, 3600000, "ms");
    cfg->logs_queue = c->env_uint("OTEL_BLRP_MAX_QUEUE_SIZE", 2048, 1, 65536, "records");
    cfg->logs_batch = c->env_uint("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512, 1, 65536, "records");
    if (cfg->logs_batch > cfg->logs_queue)
        cfg->logs_batch = cfg->logs_queue;
    cfg->command_args = c->env_bool("ELMON_EXPORT_COMMAND_ARGS", 0);

    const char *prefix = c->env_str("ELMON_METRIC_PREFIX");
    snprintf(cfg->prefix, sizeof cfg->prefix, "eventloop");
    if (prefix) {
        size_t n = strlen(prefix);
        int ok = n < sizeof cfg->prefix - 24;
        for (size_t i = 0; ok && i < n; i++) {
            char ch = prefix[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (i && ch >= '0' && ch <= '9') ||
                 (i && (ch == '.' || ch == '_' || ch == '-' || ch == '/'));
        }
        if (ok)
            snprintf(cfg->prefix, sizeof cfg->prefix, "%s", prefix);
        else
            c->warn("ELMON_METRIC_PREFIX is not a valid instrument name prefix (a letter, then letters, "
                    "digits, '.', '_', '-' or '/', at most 39 characters); using eventloop");
    }
    return 0;
}

void otlp_config_free(struct otlp_config *cfg)
{
    for (int s = 0; s < OTLP_NSIGNALS; s++) {
        struct otlp_target *t = &cfg->t[s];
        free(t->url);
        free(t->ca_file);
        free(t->client_cert);
        free(t->client_key);
        otlp_kvlist_free(&t->headers);
    }
    memset(cfg, 0, sizeof *cfg);
}
