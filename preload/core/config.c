/*
 * Environment parsing for the whole library.  Runs once, on the thread that
 * registers the first loop (or in a test), never on the hot path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "buf.h"
#include "config.h"
#include "log.h"
#include "thresholds.h"

struct elmon_config elmon_opt;

int elmon_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    int over = 0;
    /* Every byte is looked at: "99999999999999999999x" is not a number,
     * whatever its digits overflow to. */
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    if (over || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int elmon_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on", 0};
    static const char *const no[] = {"0", "false", "no", "off", 0};
    if (elmon_parse_enum(s, yes) >= 0) {
        *out = 1;
        return 0;
    }
    if (elmon_parse_enum(s, no) >= 0) {
        *out = 0;
        return 0;
    }
    return -EINVAL;
}

int elmon_parse_enum(const char *s, const char *const *choices)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; choices[i]; i++)
        if (strcasecmp(s, choices[i]) == 0)
            return i;
    return -EINVAL;
}

/* The environment as it was when the process started.  Servers rewrite
 * theirs before their loops start (nginx keeps only TZ for its workers and
 * moves the strings to set its process title), and libelmon reads its
 * settings lazily at the first loop, so the constructor copies what it will
 * need: every ELMON_* and OTEL_* variable and the few others named below. */
static const char *const env_extra[] = {
    "SERVICE_VERSION", "SERVICE_NAMESPACE", "DEPLOYMENT_ENVIRONMENT", "XDG_RUNTIME_DIR", 0,
};
static char **env_snap;
static size_t n_env_snap;
static int env_snapped;

static int env_in_scope(const char *name, size_t len)
{
    if ((len > 6 && strncmp(name, "ELMON_", 6) == 0) || (len > 5 && strncmp(name, "OTEL_", 5) == 0))
        return 1;
    for (int i = 0; env_extra[i]; i++)
        if (strlen(env_extra[i]) == len && strncmp(name, env_extra[i], len) == 0)
            return 1;
    return 0;
}

static char progname[64];

const char *elmon_program(void)
{
    return progname[0] ? progname : program_invocation_short_name;
}

void elmon_env_snapshot(void)
{
    snprintf(progname, sizeof progname, "%s", program_invocation_short_name);
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        n += eq && env_in_scope(*e, (size_t)(eq - *e));
    }
    env_snap = n ? calloc(n, sizeof *env_snap) : NULL;
    for (char **e = environ; env_snap && e && *e && n_env_snap < n; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && env_in_scope(*e, (size_t)(eq - *e)) && (env_snap[n_env_snap] = strdup(*e)))
            n_env_snap++;
    }
    env_snapped = 1;
}

int elmon_env_snapshot_set(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!env_snapped || !eq || !env_in_scope(kv, (size_t)(eq - kv)))
        return -EINVAL;
    size_t len = (size_t)(eq - kv) + 1;
    char *copy = strdup(kv);
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n_env_snap; i++)
        if (strncmp(env_snap[i], kv, len) == 0) {
            free(env_snap[i]);
            env_snap[i] = copy;
            return 0;
        }
    char **grown = realloc(env_snap, (n_env_snap + 1) * sizeof *env_snap);
    if (!grown) {
        free(copy);
        return -ENOMEM;
    }
    env_snap = grown;
    env_snap[n_env_snap++] = copy;
    return 0;
}

const char *elmon_env_str(const char *name)
{
    size_t len = strlen(name);
    const char *v = NULL;
    if (env_snapped && env_in_scope(name, len)) {
        for (size_t i = 0; i < n_env_snap; i++)
            if (strncmp(env_snap[i], name, len) == 0 && env_snap[i][len] == '=') {
                v = env_snap[i] + len + 1;
                break;
            }
    } else {
        v = getenv(name);
    }
    return v && *v ? v : NULL;
}

static void warn_value(const char *name, const char *value, const char *why, const char *instead)
{
    char mem[512];
    struct elmon_buf b;
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_printf(&b, "%s=", name);
    elmon_buf_quote_value(&b, value, 64);
    elmon_buf_printf(&b, " %s; using %s", why, instead);
    elmon_warn("%s", mem);
}

uint64_t elmon_env_uint(const char *name, uint64_t def, uint64_t min, uint64_t max, const char *unit)
{
    const char *v = elmon_env_str(name);
    uint64_t out;
    if (!v)
        return def;
    int rc = elmon_parse_uint(v, min, max, &out);
    if (rc == 0)
        return out;
    char why[128], instead[64];
    snprintf(why, sizeof why, "%s (a whole number of %s from %llu to %llu)",
             rc == -ERANGE ? "is out of range" : "is not a number", unit,
             (unsigned long long)min, (unsigned long long)max);
    snprintf(instead, sizeof instead, "%llu", (unsigned long long)def);
    warn_value(name, v, why, instead);
    return def;
}

int elmon_env_bool(const char *name, int def)
{
    const char *v = elmon_env_str(name);
    int out;
    if (!v)
        return def;
    if (elmon_parse_bool(v, &out) == 0)
        return out;
    warn_value(name, v, "is not a boolean (1/0, true/false, yes/no, on/off)", def ? "true" : "false");
    return def;
}

int elmon_env_enum(const char *name, const char *const *choices, int def)
{
    const char *v = elmon_env_str(name);
    if (!v)
        return def;
    int i = elmon_parse_enum(v, choices);
    if (i >= 0)
        return i;
    char why[256];
    struct elmon_buf b;
    elmon_buf_init(&b, why, sizeof why);
    elmon_buf_puts(&b, "is not one of");
    for (int k = 0; choices[k]; k++)
        elmon_buf_printf(&b, "%s %s", k ? "," : "", choices[k]);
    warn_value(name, v, why, choices[def]);
    return def;
}

void elmon_config_load(void)
{
    elmon_opt.block_ms = elmon_env_uint("ELMON_BLOCK_MS", ELMON_DEFAULT_BLOCK_MS, 1, 3600000, "ms");
    elmon_opt.critical_ms = elmon_env_uint("ELMON_CRITICAL_MS", ELMON_DEFAULT_CRITICAL_MS, 1, 3600000, "ms");
    if (elmon_opt.critical_ms < elmon_opt.block_ms) {
        char v[32], instead[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)elmon_opt.critical_ms);
        snprintf(instead, sizeof instead, "%llu (ELMON_BLOCK_MS)", (unsigned long long)elmon_opt.block_ms);
        warn_value("ELMON_CRITICAL_MS", v, "is below ELMON_BLOCK_MS", instead);
        elmon_opt.critical_ms = elmon_opt.block_ms;
    }
    elmon_opt.events_path = elmon_env_str("ELMON_EVENTS");
    /* Defaults no normal run reaches (two spans a second on one loop for a
     * minute; at most 1 MiB of span records a minute), which bound each
     * text output to about 60 MiB an hour when ELMON_BLOCK_MS is set far
     * too low (docs/VARIABLES.md). */
    elmon_opt.reports_per_min = elmon_env_uint("ELMON_REPORTS_PER_MIN", ELMON_DEFAULT_REPORTS_PER_MIN, 0, 600000,
                                               "span reports per loop per minute");
    elmon_opt.report_bytes_per_min = elmon_env_uint("ELMON_REPORT_BYTES_PER_MIN", ELMON_DEFAULT_REPORT_BYTES_PER_MIN, 0,
                                                    1ull << 40, "bytes per minute");
    elmon_opt.verbose = elmon_env_bool("ELMON_VERBOSE", 0);
    /* Read for real by the constructor; here only so a bad value is named. */
    elmon_env_bool("ELMON_DISABLE", 0);
    elmon_env_bool("ELMON_CHILDREN", 1);
}
