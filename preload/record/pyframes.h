/*
 * record/pyframes.c: Python frames of a CPython host, with CPython's own
 * async-signal-safe traceback dumper (the one faulthandler uses).
 *
 * Owns: the dump pipe and the dumper's symbols.  Runs on: the watchdog
 * (load, prepare, collect); loop threads in the capture handler
 * (elmon_py_dump: write(2) into a non-blocking pipe, nothing else).
 * May not: block the handler (a full pipe truncates), or call into the
 * interpreter beyond the dumper.
 */
#ifndef ELMON_PYFRAMES_H
#define ELMON_PYFRAMES_H

#include <stddef.h>

struct elmon_capture;

/* 1 when the host is an initialised CPython whose dumper is usable. */
int elmon_py_load(void);
void elmon_py_prepare(void);          /* watchdog: empty the pipe */
void elmon_py_dump(void);             /* handler */
void elmon_py_collect(struct elmon_capture *c);   /* watchdog */
/* 1 when a Python frame (file, function) is an event loop's run method
 * (asyncio, tornado, twisted, socketserver, kombu, curio, trio, gevent,
 * eventlet). */
int elmon_py_is_loop_frame(const char *file, size_t file_len, const char *function);
void elmon_py_atfork_child(void);

#endif
