"""Drives the demo: starts demo/app.py under libelmon, fires the seed's good
and bad endpoints one at a time, and prints what the seed expects next to
what the seed's sleep probe saw and what libelmon measured for each."""
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = [
    # endpoint, the seed's expected lag, the seed's expected status
    ("/async-io", "< 10ms", "healthy"),
    ("/proper-cpu?iterations=5000000", "< 10ms", "healthy"),
    ("/concurrent-tasks?count=50", "< 10ms", "healthy"),
    ("/blocking-io?seconds=1", "~1000ms", "critical"),
    ("/cpu-bound?iterations=10000000", "500-2000ms", "critical"),
    ("/blocking-hash?size=67108864", "-", "degraded/critical"),
    ("/stress-test?requests=20&concurrent=5&blocking=true", "-", "degraded"),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, timeout=60):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.loads(r.read())


def records(pattern):
    out = []
    for path in glob.glob(pattern):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def status(lag_ms):
    if lag_ms < 10:
        return "healthy"
    if lag_ms < 50:
        return "ok"
    if lag_ms < 500:
        return "degraded"
    return "critical"


def main():
    lib = sys.argv[1]
    workdir = sys.argv[2]
    port = free_port()
    events = os.path.join(workdir, "events.%p.jsonl")
    env = dict(os.environ, LD_PRELOAD=lib, ELMON_EVENTS=events, ELMON_LOG=os.path.join(workdir, "elmon.log"),
               PORT=str(port), HOST="127.0.0.1")
    app = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "demo", "app.py")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                get(port, "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        pattern = os.path.join(workdir, "events.*.jsonl")
        rows = []
        for path, expected_lag, expected_status in CASES:
            time.sleep(0.3)
            get(port, "/metrics/reset")
            seen = len(records(pattern))
            get(port, path)
            time.sleep(0.25)  # let the probe wake and the watchdog write
            probe = get(port, "/metrics")
            new = [r for r in records(pattern)[seen:] if r.get("type") == "block"]
            worst = max((r["duration_ms"] for r in new), default=0.0)
            culprit = next((r.get("culprit") for r in sorted(new, key=lambda r: -r["duration_ms"])
                            if r.get("culprit")), None)
            cause = next((r.get("cause", {}) or {} for r in sorted(new, key=lambda r: -r["duration_ms"])), {})
            rows.append((path, expected_lag, expected_status, probe["probe_max_lag_s"] * 1e3,
                         probe["probe_blocking_events"], len(new), worst, status(worst), culprit,
                         cause.get("class") if isinstance(cause, dict) else None))
    finally:
        app.terminate()
        app.wait(timeout=10)
    print()
    print("| endpoint | seed: expected lag | seed: status | sleep probe: max lag | probe: blocking events "
          "| libelmon: spans | libelmon: longest span | libelmon: status | culprit | cause |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]:.0f} ms | {r[4]} | {r[5]} | {r[6]:.1f} ms | {r[7]} "
              f"| {r[8] or '-'} | {r[9] or '-'} |")
    print()
    print(f"events files: {pattern}   human log: {os.path.join(workdir, 'elmon.log')}")


if __name__ == "__main__":
    main()
