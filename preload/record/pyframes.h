/*
 * record/pyframes.c: the Python frames of a CPython host's thread, read
 * from the interpreter's memory on the watchdog, without a signal and
 * without running interpreter code.
 *
 * Owns: the layout of the running interpreter (record/pylayout.h), the
 * code-object cache, the raw frame chains.  Threads: the watchdog only.
 * May not: touch the host's memory other than by process_vm_readv on the
 * process itself (a bad address is an error, never a fault), take the
 * GIL, a host lock or the host's allocator, or give one thread's frames to
 * another.
 */
#ifndef ELMON_PYFRAMES_H
#define ELMON_PYFRAMES_H

#include <stddef.h>
#include <stdint.h>

struct elmon_capture;

/* 1 when the host is an initialised CPython whose layout is known; a
 * CPython whose version or layout is not gets one warning and 0. */
int elmon_py_load(void);
/* The Python stack of thread tid (pthread_self() value pthread_id) into
 * c's py[], py_header, py_depth, py_partial, py_loop and note (c->lock
 * held).  Nothing when the thread runs no Python. */
void elmon_py_read(struct elmon_capture *c, int tid, uintptr_t pthread_id);
/* 1 when a Python frame (file, function) is an event loop's run method
 * (asyncio, tornado, twisted, socketserver, kombu, curio, trio, gevent,
 * eventlet). */
int elmon_py_is_loop_frame(const char *file, size_t file_len, const char *function);
void elmon_py_atfork_child(void);

#endif
