/*
 * Strict parsing of ELMON_* (and other) environment variables.
 *
 * Every reader follows one rule: an unset or empty variable is the default
 * silently; a value that does not parse, or is out of range, gives exactly
 * one warning line naming the variable, the value and what is used instead,
 * and then the default.  Nothing here ever stops the host.
 *
 * Owns: the core's settings (elmon_opt), the copy of the ELMON_*, OTEL_*
 * and service variables taken at start-up, the program's start-up name.
 * Threads: the snapshot in the constructor (the loader's thread);
 * elmon_config_load once, on the thread registering the first loop; the
 * readers on any libelmon thread after that (the exporter's through the
 * core table, on the watchdog).
 * May not: stop the host or change its environment, read a variable it
 * snapshotted from the live environment again, or run on the hot path.
 */
#ifndef ELMON_CONFIG_H
#define ELMON_CONFIG_H

#include <stdint.h>

/* Pure parsers, 0 or -EINVAL / -ERANGE; exposed for the unit tests. */
int elmon_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int elmon_parse_bool(const char *s, int *out);
/* Index of s in choices (NULL-terminated, case-insensitive), or -EINVAL. */
int elmon_parse_enum(const char *s, const char *const *choices);

/* Environment readers: the value, or def after one warning. */
uint64_t elmon_env_uint(const char *name, uint64_t def, uint64_t min, uint64_t max, const char *unit);
int elmon_env_bool(const char *name, int def);
int elmon_env_enum(const char *name, const char *const *choices, int def);
/* NULL when unset or empty.  After elmon_env_snapshot() (the constructor),
 * ELMON_*, OTEL_* and the seed's service variables come from the copy taken
 * at start-up, whatever the host did to its environment since. */
const char *elmon_env_str(const char *name);
void elmon_env_snapshot(void);
/* Sets NAME=VALUE in the copy (elmon attach's settings file, read once
 * before any loop exists): 0, or -EINVAL when NAME is out of the copy's
 * scope or there is no copy yet, -ENOMEM. */
int elmon_env_snapshot_set(const char *kv);
/* The program's short name as it was at start-up, copied by
 * elmon_env_snapshot(): program_invocation_short_name points into argv[0],
 * which servers such as nginx overwrite when they retitle their workers
 * ("nginx: worker process"), leaving it pointing mid-title. */
const char *elmon_program(void);

/* The text outputs' report budget by default: ELMON_REPORTS_PER_MIN and
 * ELMON_REPORT_BYTES_PER_MIN (docs/VARIABLES.md has the bound they give). */
#define ELMON_DEFAULT_REPORTS_PER_MIN 120
#define ELMON_DEFAULT_REPORT_BYTES_PER_MIN (1024ull * 1024)

/* Settings of the core, read once by elmon_config_load(). */
struct elmon_config {
    uint64_t block_ms, critical_ms;
    const char *events_path;    /* NULL: no events file */
    /* The text outputs' report budget (sinks/budget.h), per 60 s window:
     * span reports of one loop thread, and bytes of span records of one
     * output (the events file, the human log); 0: no limit. */
    uint64_t reports_per_min, report_bytes_per_min;
    int verbose;
};
extern struct elmon_config elmon_opt;
void elmon_config_load(void);

#endif
