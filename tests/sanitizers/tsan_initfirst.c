/*
 * Preloaded ahead of libelmon.so in TSan runs (scripts/test-sanitizers).
 *
 * The shared TSan runtime (clang -shared-libsan) has no .preinit_array, so
 * without help its interceptors are still unset when libstdc++'s
 * constructor (a dependency of the runtime) calls __cxa_atexit, and every
 * process crashes at start.  This object is linked with -z initfirst, so the
 * dynamic loader runs its constructor before any other, and it initialises
 * the runtime there.  Executables of the TSan build link it; foreign programs
 * that libelmon.so is preloaded into get it through LD_PRELOAD.
 */
void __tsan_init(void);

__attribute__((constructor)) static void tsan_init_first(void)
{
    __tsan_init();
}
