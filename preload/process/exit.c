/*
 * The end of the process's measurement (exit.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include "exit.h"
#include "log.h"
#include "loop.h"
#include "pipeline.h"
#include "watchdog.h"

/* Exit is bounded: the watchdog gets STOP_MS to stop, then the writer lock
 * is waited for at most LOCK_MS; at _exit (which may run in a signal
 * handler) less of both.  A holder of the writer lock that is runnable or
 * in a disk wait is writing, only short of a CPU or of its disk, so it gets
 * up to RUNNABLE_MS more: on a loaded machine that is what keeps an exiting
 * child's records.  A holder asleep (a pipe nobody reads) gets no more. */
#define EXIT_STOP_MS 80
#define EXIT_LOCK_MS 50
#define EXIT_FAST_STOP_MS 20
#define EXIT_FAST_LOCK_MS 30
#define EXIT_RUNNABLE_MS 1000

/* The end of the process's measurement, once: from the atexit handler that
 * elmon_exit_register() installs, or from the destructor when exit()
 * came before that handler existed (or the process never called exit). */
static int exit_done;

/* fast: _exit, which runs no atexit handler and may be called from a
 * signal handler: the records and summaries within about 50 ms, and no
 * final export (it could take the exporter's whole timeout), no stats file
 * removal beyond unlink and close. */
void elmon_exit_work(int fast)
{
    if (!elmon_active || __atomic_exchange_n(&exit_done, 1, __ATOMIC_ACQ_REL))
        return;
    /* Loop threads still running see a plain wrapper from here on. */
    __atomic_store_n(&elmon_active, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&elmon_exiting, 1, __ATOMIC_RELEASE);
    if (fast)
        elmon_watchdog_shutdown(EXIT_FAST_STOP_MS, EXIT_FAST_LOCK_MS, EXIT_RUNNABLE_MS, 1);
    else
        elmon_watchdog_shutdown(EXIT_STOP_MS, EXIT_LOCK_MS, EXIT_RUNNABLE_MS, 0);
    elmon_pipeline_shutdown(fast);
}

static void exit_work(void)
{
    elmon_exit_work(0);
}

/* atexit handlers run last-registered first, and all of them before any
 * library's destructor.  The exporter registers its final flush with
 * atexit (so it runs while libcurl and OpenSSL are whole); registered after
 * it, ours runs first, and the spans that ended just before exit reach the
 * exporter before it flushes instead of arriving after it stopped. */
void elmon_exit_register(void)
{
    static int registered;
    if (!__atomic_exchange_n(&registered, 1, __ATOMIC_ACQ_REL))
        atexit(exit_work);
}

