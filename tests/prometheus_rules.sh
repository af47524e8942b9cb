#!/usr/bin/env bash
# deploy/prometheus/: the rules load (promtool check rules), their unit tests
# pass (promtool test rules), every alert has a test where it fires and one
# where it does not and every record has a value test, and README.md's sed
# line for libelmon's default prefix gives rules whose (rewritten) tests
# pass too.  Then, so that none of this can pass by testing nothing, wrong
# thresholds, durations and expressions are planted in copies of the rules:
# each copy still loads, and the unit tests must fail on it.
#
# promtool is Debian's package prometheus (scripts/install-deps); without
# it this test fails, it does not skip.  PROMTOOL overrides the command.
#
# usage: prometheus_rules.sh SOURCE_ROOT
set -uo pipefail
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
dir=$top/deploy/prometheus
promtool=${PROMTOOL:-promtool}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! command -v "$promtool" >/dev/null 2>&1; then
    echo "FAIL: $promtool not found: it comes with Debian's package prometheus;"
    echo "      run scripts/install-deps (or apt-get install prometheus)"
    exit 1
fi
"$promtool" --version 2>&1 | head -1

work=$(mktemp -d "${TMPDIR:-/tmp}/prometheus_rules.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# ---- the rules as shipped
"$promtool" check rules "$dir/elmon-rules.yml" || bad "promtool check rules elmon-rules.yml"
"$promtool" test rules "$dir/elmon-rules.test.yml" || bad "promtool test rules elmon-rules.test.yml"

# ---- every alert tested firing and not firing, every record's value tested
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\) *$/\1/p' "$dir/elmon-rules.yml")
records=$(sed -n 's/^ *- record: *\([A-Za-z0-9_:]*\) *$/\1/p' "$dir/elmon-rules.yml")
[ "$(echo "$alerts" | wc -w)" = 3 ] || bad "expected the seed's 3 alerts, found: $alerts"
[ "$(echo "$records" | wc -w)" = 3 ] || bad "expected the seed's 3 recording rules, found: $records"
for a in $alerts; do
    # For each alert_rule_test of this alert: is its exp_alerts empty or not?
    kinds=$(awk -v a="$a" '
        /^ *alertname:/ { cur = $2 }
        /^ *exp_alerts: *\[\] *$/ { if (cur == a) print "quiet"; cur = "" }
        /^ *exp_alerts: *$/ { if (cur == a) print "fires"; cur = "" }
    ' "$dir/elmon-rules.test.yml" | sort -u | tr '\n' ' ')
    [ "$kinds" = "fires quiet " ] || bad "alert $a: want tests where it fires and where it does not, have: ${kinds:-none}"
done
for r in $records; do
    grep -qE "^ *- expr: *(count\()?$r([{ )]|$)" "$dir/elmon-rules.test.yml" || bad "record $r: no promql_expr_test of its value"
done
echo "coverage: alerts $(echo $alerts), records $(echo $records)"

# ---- the default prefix: README.md's own sed line on copies
sedline="sed -i 's/asyncio_eventloop_/eventloop_/g' elmon-rules.yml elmon-rules.test.yml"
grep -qxF "    $sedline" "$dir/README.md" || bad "README.md no longer has the tested line: $sedline"
mkdir "$work/default"
cp "$dir/elmon-rules.yml" "$dir/elmon-rules.test.yml" "$work/default/"
(cd "$work/default" && eval "$sedline") || bad "the sed line failed"
if grep -n 'asyncio_eventloop' "$work/default/elmon-rules.yml" "$work/default/elmon-rules.test.yml"; then
    bad "asyncio_eventloop left after the default-prefix rewrite (above)"
fi
for m in eventloop_lag eventloop_lag_distribution_bucket eventloop_blocking_events_total; do
    grep -qE "expr: .*\b$m\b" "$work/default/elmon-rules.yml" || bad "rewritten rules have no expression on $m"
done
"$promtool" check rules "$work/default/elmon-rules.yml" || bad "default prefix: promtool check rules"
"$promtool" test rules "$work/default/elmon-rules.test.yml" || bad "default prefix: promtool test rules"

# ---- planted errors: each must load and fail the unit tests
# description | perl substitution applied to a copy of elmon-rules.yml
plants=(
    'degraded threshold 48 ms|s/(asyncio_eventloop_lag) > 0\.05$/$1 > 0.048/'
    'degraded at 50 ms inclusive (>=)|s/(asyncio_eventloop_lag) > 0\.05$/$1 >= 0.05/'
    'degraded for 1m45s|s/^(\s+for:) 2m$/$1 1m45s/'
    'critical threshold 498 ms|s/(asyncio_eventloop_lag) > 0\.5$/$1 > 0.498/'
    'critical for 45s|s/^(\s+for:) 1m$/$1 45s/'
    'blocking threshold 8.9/min|s{(/ 5) > 10$}{$1 > 8.9}'
    'blocking threshold 11.1/min|s{(/ 5) > 10$}{$1 > 11.1}'
    'blocking per severity, not summed|s/sum without \(severity\) \((increase\(asyncio_eventloop_blocking_events_total\[5m\]\))\)/$1/'
    'blocking as rate()*60 (exactly 10/min fires)|s{sum without \(severity\) \(increase\((asyncio_eventloop_blocking_events_total\[5m\])\)\) / 5}{sum without (severity) (rate($1)) * 60}'
    'average lag recorded as max_over_time|s/avg_over_time\(asyncio_eventloop_lag/max_over_time(asyncio_eventloop_lag/'
    'p99 recorded as p90|s/histogram_quantile\(0\.99,/histogram_quantile(0.9,/'
    'blocking rate recorded as increase|s/^(\s+expr:) rate\(asyncio_eventloop_blocking_events_total/$1 increase(asyncio_eventloop_blocking_events_total/'
    'summary without the pid|s/^(\s+summary: "Event loop degraded: \{\{ \$labels.process \}\}) \(pid \{\{ \$labels.pid \}\}\)/$1/'
)
n=0
for p in "${plants[@]}"; do
    what=${p%%|*} subst=${p#*|}
    n=$((n + 1))
    mkdir "$work/plant$n"
    cp "$dir/elmon-rules.test.yml" "$work/plant$n/"
    perl -pe "$subst" "$dir/elmon-rules.yml" > "$work/plant$n/elmon-rules.yml"
    if cmp -s "$dir/elmon-rules.yml" "$work/plant$n/elmon-rules.yml"; then
        bad "plant '$what': the substitution changed nothing (rules rewritten?)"
        continue
    fi
    if ! "$promtool" check rules "$work/plant$n/elmon-rules.yml" >/dev/null 2>&1; then
        bad "plant '$what': the planted copy does not load, so it proves nothing"
        continue
    fi
    out=$("$promtool" test rules "$work/plant$n/elmon-rules.test.yml" 2>&1)
    rc=$?
    if [ $rc = 0 ]; then
        bad "plant '$what': promtool test rules passed on it"
    elif ! grep -q 'FAILED:' <<<"$out"; then
        bad "plant '$what': promtool test rules failed ($rc) without a FAILED test:"
        echo "$out"
    else
        echo "plant '$what': caught ($(grep -c '^ *\(expr\|alertname\):\|alertname: ' <<<"$out") failed checks)"
    fi
done

if [ $fail = 0 ]; then
    echo "prometheus_rules: rules, unit tests, default-prefix rewrite and $n planted errors all as expected"
fi
exit $fail
