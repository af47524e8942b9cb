/*
 * record/unwind.c: native unwinding with libunwind (dlopen'ed).
 *
 * Owns: the libunwind address space and the module and memory tables its
 * accessors read.  Threads: the watchdog (load, refresh, /proc unwinds);
 * loop threads inside the capture handler (elmon_unwind_regs,
 * elmon_regs_from_ucontext, elmon_unwind_in_loader: async-signal-safe).
 * May not: call the dynamic loader or allocate from the handler's calls,
 * or read memory outside the ranges it collected.
 */
#ifndef ELMON_UNWIND_H
#define ELMON_UNWIND_H

#include <stdint.h>

/* Registers the unwinder starts from (x86-64 DWARF numbering: rax, rdx,
 * rcx, rbx, rsi, rdi, rbp, rsp, r8..r15, rip). */
struct elmon_regs {
    uint64_t r[17];
    uint32_t valid;              /* bit per register */
};

/* dlopen libunwind and warm it up (watchdog).  0 or -1 (said once). */
int elmon_unwind_load(void);
/* Rebuild the module and memory tables the unwinder reads; watchdog, never
 * while a handler may run. */
void elmon_unwind_refresh(void);
/* Walk from regs; async-signal-safe (the handler calls it).  Returns the
 * number of return addresses stored, addrs[0] being regs' rip.  When the
 * walk cannot leave that first frame (code without unwind information),
 * the caller is taken from the first of 8 stack words above rsp that
 * follows a call instruction, and the walk goes on from there. */
int elmon_unwind_regs(struct elmon_regs *regs, uintptr_t *addrs, int max);
/* regs from a ucontext_t (handler). */
void elmon_regs_from_ucontext(struct elmon_regs *r, const void *uc);
/* 1 when addr is inside the dynamic loader's text (handler). */
int elmon_unwind_in_loader(uintptr_t pc);

#endif
