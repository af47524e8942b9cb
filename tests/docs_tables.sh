#!/usr/bin/env bash
# Keeps docs/VARIABLES.md and the code in agreement: every ELMON_* / OTEL_*
# name the code spells as a string literal has a row in the table, and every
# row names a variable the code reads.
set -euo pipefail
top=${1:-$(dirname "$0")/..}
cd "$top"
code=$(grep -rhoE '"(ELMON|OTEL)_[A-Z0-9_]+"' preload exporter cli 2>/dev/null | tr -d '"' | sort -u || true)
table=$(grep -oE '^\| `(ELMON|OTEL)_[A-Z0-9_]+`' docs/VARIABLES.md | grep -oE '(ELMON|OTEL)_[A-Z0-9_]+' | sort -u)
missing=$(comm -23 <(echo "$code") <(echo "$table"))
stale=$(comm -13 <(echo "$code") <(echo "$table"))
rc=0
if [ -n "$missing" ]; then echo "read by the code but not in docs/VARIABLES.md:"; echo "$missing"; rc=1; fi
if [ -n "$stale" ]; then echo "in docs/VARIABLES.md but read nowhere:"; echo "$stale"; rc=1; fi
[ $rc = 0 ] && echo "docs/VARIABLES.md: $(echo "$code" | wc -l) variables, table and code agree"
exit $rc
