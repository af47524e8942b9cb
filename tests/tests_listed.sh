#!/usr/bin/env bash
# tests/README.md is the one list of the tests, and says which suites test
# each module.  This fails when:
#   - a ctest test has no row in the tests table (a suite added without one);
#   - a .c file of common/, preload/*/, exporter/ or cli/ has no row in the
#     table under "## Which suites test each module", a row there names a
#     file that does not exist, or names a suite `ctest -N` does not list
#     (a row for a module deleted, a suite renamed).
# So that the module check cannot pass by looking at nothing, a row is
# removed from, and an unknown suite planted in, copies of the README, and
# each must be reported.
#
# usage: tests_listed.sh SOURCE_ROOT BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd) build=$2
readme=$src/tests/README.md
names=$(cd "$build" && ctest -N | sed -n 's/^ *Test *#[0-9]*: *//p' | sort -u)
[ -n "$names" ] || { echo "ctest -N listed no tests"; exit 1; }
heading='## Which suites test each module'
rc=0

# ---- every ctest test has its row in the tests table (the part of the
# README before the module table, where a row starts with the test's name) ----
tests_part=$(awk -v h="$heading" '$0 == h { exit } { print }' "$readme")
missing=0
for t in $names; do
  if ! awk -v row="| \`$t\`" 'index($0, row) == 1 { found = 1 } END { exit !found }' <<<"$tests_part"; then
    echo "tests/README.md has no row for $t"
    missing=1
  fi
done
if [ $missing = 0 ]; then
  echo "tests/README.md lists all $(echo "$names" | wc -l) tests"
else
  rc=1
fi

# ---- every module has its row, naming only suites ctest lists ----
# check_modules README: prints one line per fault, and a count; exit 1 on any.
check_modules() {
  NAMES="$names" HEADING="$heading" python3 - "$src" "$1" <<'PY'
import glob, os, re, sys
src, readme = sys.argv[1], sys.argv[2]
suites = set(os.environ["NAMES"].split())
heading = os.environ["HEADING"]
faults = []
lines = open(readme, encoding="utf-8").read().split("\n")
try:
    start = lines.index(heading)
except ValueError:
    print(f"tests/README.md: no section '{heading}'")
    sys.exit(1)
rows = {}
for i in range(start + 1, len(lines)):
    ln = lines[i]
    if ln.startswith("## "):
        break
    m = re.match(r"^\| `([^`]+)` \|(.*)\|\s*$", ln)
    if not m:
        continue
    mod, rest = m.group(1), m.group(2)
    if mod in rows:
        faults.append(f"tests/README.md:{i + 1}: a second row for {mod}")
    named = re.findall(r"`([^`]+)`", rest)
    rows[mod] = named
    if not named:
        faults.append(f"tests/README.md:{i + 1}: the row for {mod} names no suite")
    for t in named:
        if t not in suites:
            faults.append(f"tests/README.md:{i + 1}: the row for {mod} names {t}, which ctest -N does not list")
    if not os.path.isfile(os.path.join(src, mod)):
        faults.append(f"tests/README.md:{i + 1}: a row for {mod}, which does not exist")
files = []
for pat in ("common/*.c", "preload/*/*.c", "exporter/*.c", "cli/*.c"):
    files += sorted(os.path.relpath(p, src) for p in glob.glob(os.path.join(src, pat)))
if not files:
    faults.append("no .c file found in common/, preload/*/, exporter/, cli/")
for f in files:
    if f not in rows:
        faults.append(f"tests/README.md has no row for module {f} under '{heading}'")
for x in faults:
    print(x)
print(f"module table: {len(files)} modules, {len(rows)} rows, {len(faults)} fault(s)")
sys.exit(1 if faults else 0)
PY
}

if ! check_modules "$readme"; then
  rc=1
fi

# ---- the module check must catch what is planted ----
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# planted NAME FILE EXPECTED: the check of FILE fails with a line holding EXPECTED.
planted() {
  local name=$1 file=$2 want=$3 out status=0
  out=$(check_modules "$file") || status=$?
  if [ $status -ne 0 ] && grep -qF -- "$want" <<<"$out"; then
    echo "plant '$name' caught: $(grep -F -- "$want" <<<"$out" | head -n1)"
  else
    echo "FAIL: plant '$name' not caught; wanted a line holding"
    echo "  $want"
    echo "check said (exit $status):"; sed 's/^/  /' <<<"$out"
    rc=1
  fi
}
# The first row of the module table, and the module it is for.
row=$(awk -v h="$heading" '$0 == h { on = 1; next } on && /^## / { exit } on && /^\| `[^`]+` \|/ { print; exit }' "$readme")
mod=$(sed -n 's/^| `\([^`]*\)` |.*/\1/p' <<<"$row")
if [ -z "$mod" ]; then
  echo "FAIL: no row in the module table to plant with"
  rc=1
else
  grep -vxF -- "$row" "$readme" >"$tmp/no-row.md"
  planted "row for $mod removed" "$tmp/no-row.md" "has no row for module $mod"
  awk -v r="$row" '$0 == r { sub(/ \|$/, ", `test_no_such_suite` |") } { print }' "$readme" >"$tmp/bad-suite.md"
  planted "unknown suite in the row for $mod" "$tmp/bad-suite.md" \
    "the row for $mod names test_no_such_suite, which ctest -N does not list"
fi
exit $rc
