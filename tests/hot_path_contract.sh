#!/usr/bin/env bash
# The hot path's contract, checked mechanically:
#  - every file that declares itself HOT PATH (in preload/'s stages or in
#    common/) calls no allocator, lock, stdio or system call wrapper but the
#    clock (comments excluded);
#  - every signal handler libelmon installs (the capture handler) reaches,
#    through the functions of common/ and preload/ it calls, only
#    async-signal-safe calls (tests/signal_safety.py); a call planted in a
#    copy of the sources must be caught;
#  - libelmon.so needs nothing but libc at link time.
set -euo pipefail
top=$1 so=$2
here=$(cd "$(dirname "$0")" && pwd)
cd "$top"
hot=$(grep -lE '^ \* HOT PATH|^/\* HOT PATH|HOT PATH' $(find preload common -name '*.[ch]' | LC_ALL=C sort))
[ -n "$hot" ] || { echo "no file declares itself HOT PATH"; exit 1; }
forbidden='\b(malloc|calloc|realloc|free|mmap|printf|fprintf|snprintf|vsnprintf|fopen|fwrite|puts|write|read|open|close|syscall|gettid|getpid|pthread_mutex_lock|pthread_mutex_trylock|pthread_spin_lock|pthread_create|pthread_setspecific|sem_wait|futex|usleep|nanosleep|sched_yield)\s*\('
bad=$(for f in $hot; do
  # strip /* */ and // comments before looking
  python3 - "$f" "$forbidden" <<'PY'
import re, sys
path, pat = sys.argv[1], sys.argv[2]
src = open(path).read()
src = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), src, flags=re.S)
src = re.sub(r'//[^\n]*', '', src)
# The wrappers' one call of the real function is their contract, not a breach.
src = re.sub(r'elmon_real\.\w+\s*\(', 'elmon_real_call(', src)
src = re.sub(r'^ELMON_EXPORT [^\n]*', '', src, flags=re.M)   # the wrappers' own names
for n, line in enumerate(src.split('\n'), 1):
    if re.search(pat.replace('\\b', r'\b').replace('\\s', r'\s').replace('\\(', r'\('), line):
        print(f"{path}:{n}: {line.strip()}")
PY
done)
if [ -n "$bad" ]; then echo "hot path files call what their contract forbids:"; echo "$bad"; exit 1; fi
echo "hot path files: $(echo $hot)"

# The signal handlers.
python3 "$here/signal_safety.py" "$top" || { echo "a signal handler reaches what is not async-signal-safe"; exit 1; }
# ... and the check sees a call two files away: a copy whose handler first
# calls a new function, of a new file, that allocates.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R common preload "$tmp/"
cap=$(grep -lE '^(static )?void capture_handler\(' preload/*/*.c | head -n1)
[ -n "$cap" ] || { echo "capture_handler's definition not found in preload/*/*.c: nothing to plant into"; exit 1; }
printf '#include <stdlib.h>\nvoid elmon_signal_plant(void)\n{\n    (void)malloc(1);\n}\n' >"$tmp/preload/core/signal_plant.c"
python3 - "$tmp/$cap" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r"(static void capture_handler\([^)]*\)\s*\{)", r"\1 void elmon_signal_plant(void); elmon_signal_plant();", s, count=1)
assert n == 1, "capture_handler's body not found"
open(p, "w").write(s)
PY
want="preload/core/signal_plant.c:4: capture_handler reaches malloc, not async-signal-safe"
if out=$(python3 "$here/signal_safety.py" "$tmp" 2>&1) || ! grep -qF "$want" <<<"$out"; then
    echo "the handler check misses a planted malloc; wanted: $want"; echo "$out"; exit 1
fi
echo "planted: $(grep -F "$want" <<<"$out")"
needed=$(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -vE '^(libc\.so\.6|ld-linux.*)$' || true)
if [ -n "$needed" ]; then echo "$so links against more than libc: $needed"; exit 1; fi
echo "libelmon.so needs: $(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
