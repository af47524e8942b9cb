/*
 * The whole OTEL_* configuration as the exporter reads it: the core's
 * OTEL_{METRICS,LOGS}_EXPORTER lists (preload/export_glue.c plan_from_env), then
 * otlp_config_load (exporter/otlp_config.c) through the same core table
 * libelmon.so hands the exporter, then the ELMON_VERBOSE printout.
 *
 * Checked: every setting ends within its documented range (the defaults
 * are); each URL is http(s); no log line holds a control character; and a
 * header value, which carries credentials, never appears in a warning or
 * in the printout.
 *
 * Input: lines; each line's first byte picks a variable, the rest is its
 * value.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "otlp.h"
#include "fuzz.h"
#include "log.h"
#include "otlp_config.h"
#include "resource.h"

static const char *const vars[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
    "OTEL_SDK_DISABLED", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_INTERVAL_MS",
    "OTEL_METRIC_EXPORT_TIMEOUT", "ELMON_EXPORT_FLUSH_MS",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "OTEL_BLRP_SCHEDULE_DELAY",
    "OTEL_BLRP_MAX_QUEUE_SIZE", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "ELMON_EXPORT_COMMAND_ARGS",
    "ELMON_METRIC_PREFIX", "OTEL_RESOURCE_ATTRIBUTES",
};
#define N_VARS (sizeof vars / sizeof vars[0])

static const struct elmon_export_core core = {
    .size = sizeof(struct elmon_export_core),
    .version = ELMON_EXPORT_API_VERSION,
    .elmon_version = "fuzz",
    .logf = elmon_logf,
    .warn = elmon_warn,
    .parse_uint = elmon_parse_uint,
    .parse_bool = elmon_parse_bool,
    .parse_enum = elmon_parse_enum,
    .env_uint = elmon_env_uint,
    .env_bool = elmon_env_bool,
    .env_enum = elmon_env_enum,
    .env_str = elmon_env_str,
    .export_plan = plan_from_env,   /* elmon_export_plan without its once-only cache */
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_log_start();
    return 0;
}

/* Every headers variable gets this pair appended: a credential that must
 * never reach the log, whatever the fuzzed pairs around it are. */
#define CANARY "c4n4ry-s3cr3t"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    char *env[40];
    size_t n_env = 0;
    for (char *line = s, *next; line && n_env < 40; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line)
            continue;
        const char *name = vars[(unsigned char)line[0] % N_VARS];
        int headers = strstr(name, "_HEADERS") != NULL;
        if (asprintf(&env[n_env], "%s=%s%s", name, line + 1, headers ? ",x-fuzz=" CANARY : "") < 0)
            abort();
        n_env++;
    }
    if (n_env < 40 && asprintf(&env[n_env++], "OTEL_EXPORTER_OTLP_LOGS_HEADERS=x-fuzz=" CANARY) < 0)
        abort();
    fuzz_environ(env, n_env);

    struct otlp_config cfg;
    int rc = otlp_config_load(&core, &cfg);
    FUZZ_CHECK(rc == 0);
    for (int sig = 0; sig < OTLP_NSIGNALS; sig++) {
        const struct otlp_target *t = &cfg.t[sig];
        FUZZ_CHECK(t->sink >= 0 && t->sink <= (ELMON_SINK_OTLP | ELMON_SINK_CONSOLE));
        if (!(t->sink & ELMON_SINK_OTLP))
            continue;
        FUZZ_CHECK(t->url && (strncasecmp(t->url, "http://", 7) == 0 || strncasecmp(t->url, "https://", 8) == 0));
        FUZZ_CHECK(t->protocol == OTLP_HTTP_PROTOBUF || t->protocol == OTLP_GRPC);
        FUZZ_CHECK(t->timeout_ms >= 1 && t->timeout_ms <= 3600000);
        FUZZ_CHECK(t->gzip == 0 || t->gzip == 1);
        for (size_t i = 0; i < t->headers.n; i++)
            FUZZ_CHECK(t->headers.v[i].key[0]);
    }
    FUZZ_CHECK(cfg.interval_ms >= 1 && cfg.interval_ms <= 86400000);
    FUZZ_CHECK(cfg.export_timeout_ms >= 1 && cfg.export_timeout_ms <= 3600000);
    FUZZ_CHECK(cfg.flush_ms <= 60000);
    FUZZ_CHECK(cfg.temporality >= 0 && cfg.temporality <= OTLP_LOWMEMORY);
    FUZZ_CHECK(cfg.histogram >= 0 && cfg.histogram <= OTLP_HIST_EXPONENTIAL);
    FUZZ_CHECK(cfg.logs_delay_ms >= 1 && cfg.logs_queue >= 1 && cfg.logs_batch >= 1);
    FUZZ_CHECK(cfg.logs_batch <= cfg.logs_queue && cfg.logs_queue <= 65536);
    size_t pn = strnlen(cfg.prefix, sizeof cfg.prefix);
    FUZZ_CHECK(pn > 0 && pn < sizeof cfg.prefix);
    FUZZ_CHECK((cfg.prefix[0] | 0x20) >= 'a' && (cfg.prefix[0] | 0x20) <= 'z');

    /* The printout, with resource attributes from the input alone. */
    struct otlp_resource r = {0};
    otlp_kvlist_set(&r.attrs, "telemetry.sdk.name", "libelmon");   /* never empty */
    const char *ra = elmon_env_str("OTEL_RESOURCE_ATTRIBUTES");
    struct otlp_kvlist l = {0};
    if (ra && otlp_parse_kvlist(ra, 1, &l, NULL) == 0)
        for (size_t i = 0; i < l.n; i++)
            otlp_kvlist_set(&r.attrs, l.v[i].key, l.v[i].value);
    otlp_kvlist_free(&l);
    otlp_resource_print(&core, &cfg, &r);

    size_t len;
    const char *log = fuzz_log_take(&len);
    fuzz_check_log_text(log, len, 0);
    /* Only the header value may carry the canary into the log.  An input
     * that holds its tail can legitimately print it: a warning escapes '\\'
     * before "4n4ry-s3cr3t" as "\\x5c4n4ry-s3cr3t", which spells the canary. */
    if (!memmem(data, size, "s3cr3t", 6))
        FUZZ_CHECK(!strstr(log, CANARY));

    otlp_kvlist_free(&r.attrs);
    otlp_config_free(&cfg);
    fuzz_environ(NULL, 0);
    for (size_t i = 0; i < n_env; i++)
        free(env[i]);
    free(s);
    return 0;
}
