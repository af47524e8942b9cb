#!/usr/bin/env bash
# The HTML report and the speedscope file, checked in a real browser and
# against the published schema (tests/report-browser/check.js):
#   - a real run: tests/fixtures/report_two_culprits.py under `elmon run
#     --html --speedscope`, both culprits in the flame graph, timeline,
#     zoom, search, table, no console error, no request, a screenshot;
#   - an empty run (`elmon run -- true`);
#   - a thousand loop threads and names with <script>, quotes and
#     non-ASCII text, from generated events files through `elmon report`.
# Usage: report_browser.sh ELMON_CLI WORKDIR [SCREENSHOT_PNG]
# Needs Debian's chromium and the npm packages of tests/report-browser
# (scripts/install-deps installs both); without them it fails, saying so.
set -euo pipefail
elmon=$1
work=$2
shot=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
check="node $here/report-browser/check.js"
schema=$here/fixtures/speedscope-file-format-schema.json

if [ ! -x "${ELMON_CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "report_browser: no chromium at ${ELMON_CHROMIUM:-/usr/bin/chromium} (scripts/install-deps installs it)"
    exit 1
fi
if [ ! -d "$here/report-browser/node_modules/playwright-core" ]; then
    echo "report_browser: tests/report-browser/node_modules missing (scripts/install-deps installs it)"
    exit 1
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work"

echo "== a real run with two culprits"
"$elmon" run --quiet --log off --out run-events --html run.html --speedscope run.speedscope.json \
    -- python3 "$here/fixtures/report_two_culprits.py"
$check run run.html --culprit render_page --culprit parse_payload ${shot:+--screenshot "$shot"}
$check speedscope run.speedscope.json "$schema" render_page parse_payload
# The report of the same files gives the same data as the run's page,
# apart from the run's own members (command, budget, thresholds).
"$elmon" report --html report.html run-events >/dev/null
$check run report.html --culprit render_page --culprit parse_payload

echo "== an empty run"
"$elmon" run --quiet --out empty-events --html empty.html --speedscope empty.speedscope.json -- true
$check empty empty.html
python3 - empty.speedscope.json "$schema" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["profiles"] == [] and d["shared"]["frames"] == [], d
print("  ok   the empty run's speedscope file has no profile")
EOF

echo "== a thousand loop threads"
python3 - many.jsonl <<'EOF'
import json, sys
t0 = 1_700_000_000_000_000_000
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        tid = 2000 + i
        common = {"v": 2, "pid": 1000, "tid": tid, "thread": "worker-%d" % i, "process": "many", "poller": "epoll_wait"}
        for k in range(3):
            dur = 50 + (i * 7 + k * 13) % 400
            f.write(json.dumps(dict(common, type="block", turn=k, start_unix_ns=t0 + (i * 3 + k) * 10_000_000,
                                    duration_ms=dur, lag_ms=dur, severity="warning", end="wait",
                                    cause={"class": "cpu"}, stack=[], python=[
                                        {"file": "w%d.py" % (i % 50), "line": 3, "function": "job_%d" % (i % 50)}],
                                    task=None, culprit="job_%d (w%d.py:3)" % (i % 50, i % 50))) + "\n")
        f.write(json.dumps(dict(common, type="summary", start_unix_ns=t0, end_unix_ns=t0 + 40_000_000_000,
                                exited=False, loops=1, turns=500, busy_s=1, idle_s=39, utilization=0.025,
                                lag_p50_ms=0.2, lag_p90_ms=1, lag_p99_ms=60, lag_max_ms=450, blocks_warning=3,
                                blocks_critical=0, spans_dropped=0, reports_left_out=0, events=500, fds=3,
                                status="ok", block_ms=50, critical_ms=500,
                                lag_hist=[[100000, 400], [1000000, 97], [50331648, 3]])) + "\n")
EOF
"$elmon" report --html many.html many.jsonl >/dev/null
$check many many.html 1000

echo "== hostile names"
python3 - hostile.jsonl names.json <<'EOF'
import json, sys
t0 = 1_700_000_000_000_000_000
names = {
    "process": "<script>window.__elmon_pwned=1</script>",
    "thread": "\"quoted\" 'name' & <b>bold</b>",
    "fn": "<img src=x onerror=\"window.__elmon_pwned=2\">",
    "fn2": "渲染_página_ñ_🙂",
    "file": "</script><script>window.__elmon_pwned=3</script>.py",
}
with open(sys.argv[1], "w") as f:
    common = {"v": 2, "pid": 77, "tid": 78, "thread": names["thread"], "process": names["process"], "poller": "epoll_wait"}
    for k, fn in enumerate([names["fn"], names["fn2"]]):
        f.write(json.dumps(dict(common, type="block", turn=k, start_unix_ns=t0 + k * 200_000_000, duration_ms=120 + k,
                                lag_ms=121 + k, severity="warning", end="wait", cause={"class": "<cpu>"}, stack=[],
                                python=[{"file": names["file"], "line": 9, "function": fn}], task=None,
                                culprit=None)) + "\n")
    f.write(json.dumps(dict(common, type="summary", start_unix_ns=t0, end_unix_ns=t0 + 10**9, exited=False, loops=1,
                            turns=10, busy_s=0.3, idle_s=0.7, utilization=0.3, lag_p50_ms=1, lag_p90_ms=2,
                            lag_p99_ms=121, lag_max_ms=121, blocks_warning=2, blocks_critical=0, spans_dropped=0,
                            reports_left_out=0, events=10, fds=1, status="<degraded>", block_ms=50,
                            critical_ms=500, lag_hist=[])) + "\n")
# What the page must show as text: the names, and the flame graph frames
# ("fn:" + the frame's leading text).
json.dump([names["process"], names["thread"], "fn:" + names["fn"], "fn:" + names["fn2"]],
          open(sys.argv[2], "w"))
EOF
"$elmon" report --html hostile.html --speedscope hostile.speedscope.json hostile.jsonl >/dev/null
$check hostile hostile.html names.json
$check speedscope hostile.speedscope.json "$schema" "<img src=x" "渲染_página"
echo "report_browser: all pages hold"
