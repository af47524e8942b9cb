#!/usr/bin/env bash
# Every ctest test has its row in tests/README.md, the one list of the
# tests: a suite added without one fails here.
set -euo pipefail
src=$1 build=$2
names=$(cd "$build" && ctest -N | sed -n 's/^ *Test *#[0-9]*: *//p' | sort -u)
[ -n "$names" ] || { echo "ctest -N listed no tests"; exit 1; }
missing=0
for t in $names; do
  if ! grep -qF "| \`$t\`" "$src/tests/README.md"; then
    echo "tests/README.md has no row for $t"
    missing=1
  fi
done
[ $missing = 0 ] && echo "tests/README.md lists all $(echo "$names" | wc -l) tests"
exit $missing
