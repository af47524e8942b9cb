#!/usr/bin/env bash
# `cmake --install` puts elmon in bin/ and libelmon.so in the lib directory,
# and the installed elmon finds the installed library by itself.
# Usage: cli_install.sh BUILD_DIR LOOPFIX
set -euo pipefail
build=$1 loopfix=$2
prefix=$(mktemp -d /tmp/elmon-cli-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
[ -x "$prefix/bin/elmon" ] || { echo "FAIL: no bin/elmon"; exit 1; }
lib=$(find "$prefix" -name libelmon.so | head -1)
[ -n "$lib" ] || { echo "FAIL: no libelmon.so installed"; exit 1; }
cd "$prefix"
mkdir -m 700 "$prefix/stats"
env -u ELMON_LIBRARY ELMON_STATS_DIR="$prefix/stats" "$prefix/bin/elmon" run --out "$prefix/ev" --json "$prefix/s.json" \
    -- "$loopfix" -n 20 -b 60 2>"$prefix/err" || { echo "FAIL: elmon run"; cat "$prefix/err"; exit 1; }
grep -q '"process":"loopfix"' "$prefix/s.json" || { echo "FAIL: the installed elmon measured nothing"; cat "$prefix/err"; exit 1; }
# ELMON_LIBRARY overrides the search; a wrong one is elmon's own failure.
set +e
ELMON_LIBRARY=/nonexistent/libelmon.so "$prefix/bin/elmon" run -- true 2>"$prefix/err"
rc=$?
set -e
[ $rc = 125 ] && grep -q "ELMON_LIBRARY" "$prefix/err" || { echo "FAIL: ELMON_LIBRARY: status $rc"; cat "$prefix/err"; exit 1; }
echo "cli_install: ok ($lib)"
