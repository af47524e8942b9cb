/*
 * The OTLP resource: who is sending (service.*, process.*, host.*, os.*,
 * container.id, k8s.*, telemetry.sdk.*).  Detected once when the exporter
 * starts, and again in a forked child (its own pid and service.instance.id).
 * Runs on the watchdog thread; the helpers below are pure and unit-tested.
 */
#ifndef ELMON_OTLP_RESOURCE_H
#define ELMON_OTLP_RESOURCE_H

#include <stddef.h>
#include "otlp_config.h"

struct otlp_resource {
    struct otlp_kvlist attrs;      /* string values; see otlp_resource_is_int */
    char **command_args;           /* process.command_args (opt-in), or NULL */
    size_t n_args;
};

int otlp_resource_detect(const struct elmon_export_core *c, const struct otlp_config *cfg,
                         struct otlp_resource *r);
void otlp_resource_free(struct otlp_resource *r);
/* Keys whose value is sent as an int (process.pid, process.parent_pid). */
int otlp_resource_is_int(const char *key);
/* ELMON_VERBOSE=1: the configuration and the attributes, sorted, in the
 * seed's "Example Output" form; header values are never printed. */
void otlp_resource_print(const struct elmon_export_core *c, const struct otlp_config *cfg,
                         const struct otlp_resource *r);

/* Pure helpers. */
/* The container id in /proc/self/cgroup (v1 and v2) or mountinfo text: the
 * last 64-hex-digit path component (docker-<id>.scope, cri-containerd-<id>,
 * /docker/containers/<id>/...).  0 and out filled, or -ENOENT. */
int otlp_container_id(const char *text, char out[65]);
/* uname machine to host.arch: x86_64 -> amd64, aarch64 -> arm64, ... */
const char *otlp_host_arch(const char *machine);
/* Node's version ("20.20.2") from node::per_process::metadata into out;
 * 0, or -1 when the object's layout is not the one expected. */
int otlp_node_version(const void *metadata, char *out, size_t n);
/* A random UUID v4, 36 characters and a NUL. */
void otlp_uuid4(char out[37]);

#ifdef ELMON_UNITTEST
void os_pretty_name(const char *osr, char *out, size_t n);
void cmdline_args(const char *cmd, size_t len, struct otlp_resource *r);
#endif

#endif
