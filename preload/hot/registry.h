/*
 * hot/registry.c: the table of loop slots (loop.h) and the slow path of a
 * loop thread's first wait.
 *
 * Owns: elmon_loops[], the thread-exit destructor, the process identity
 * (own_pid).  Threads: loop threads (claiming a slot, once per thread;
 * exit), any thread (snapshots, foreach: relaxed loads only).
 * May not: block a loop thread beyond its first wait's slot claim, or free
 * a slot (the watchdog does, after its summary).
 */
#ifndef ELMON_REGISTRY_H
#define ELMON_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include "loop.h"
#include "snapshot.h"

struct elmon_loop *elmon_register(int poller);  /* slow path */
/* Constructor: the process identity, and what a loop thread's first wait
 * starts (process/: the watchdog; NULL in unit tests: nothing). */
void elmon_registry_init(void (*on_first_loop)(void));
void elmon_registry_atfork_child(void);

/* The host is about to confine itself (seccomp through prctl or the
 * system call, wrap.c): runs, once, what process/ set with
 * elmon_registry_on_confine (it ends the measurement while every call is
 * still allowed), before the real call.  how names the call. */
void elmon_registry_on_confine(void (*fn)(const char *how));
void elmon_confining(const char *how);

/* 0 in a vfork child (or a raw clone of the process): it shares libelmon's
 * memory with its parent without the atfork handlers having run, and must
 * change nothing in it.  One getpid system call. */
int elmon_same_process(void);

/* Start one of libelmon's own threads: every signal blocked (they never
 * take a signal meant for the host), never counted as a loop.  0 or
 * -errno. */
int elmon_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

/* Snapshots and the loop table, for every reader but the loop thread. */
void elmon_loop_snapshot(struct elmon_loop *l, struct elmon_loop_snapshot *out);

/* The thread's current name (/proc/self/task/TID/comm); 0 or -1. */
int elmon_read_comm(int tid, char *out, size_t n);

/* healthy < 10 ms <= ok < 50 ms <= degraded < 500 ms <= critical */
const char *elmon_status_name(uint64_t lag_ns);

/* The largest lag since the previous call (the exporter's window); the
 * watchdog folds each second's maximum in. */
uint64_t elmon_loop_take_window_max(struct elmon_loop *l);
/* The slot's index in the loop table. */
int elmon_loop_index(const struct elmon_loop *l);

/* Visit every ACTIVE or DEAD loop; stops early when fn returns non-zero. */
int elmon_loops_foreach(int (*fn)(struct elmon_loop *l, void *arg), void *arg);

#endif
