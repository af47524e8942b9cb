#!/usr/bin/env bash
# `elmon top` in a real terminal: tmux (a private server, -L) runs it while
# two Python asyncio programs run under libelmon; the screen is captured
# before, during and after one of them blocks for 3 s, and q must quit.
# Usage: cli_top.sh ELMON LIBELMON ASYNCIO_PY
set -euo pipefail
elmon=$1 lib=$2 fixture=$3
tmp=$(mktemp -d /tmp/elmon-cli-top-XXXXXX)
sock=elmon-cli-top-$$
export ELMON_STATS_DIR=$tmp/stats
mkdir -m 700 "$ELMON_STATS_DIR"
pids=()
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- screen:"; cat "$tmp/screen" 2>/dev/null || true; exit 1; }

LD_PRELOAD=$lib ELMON_LOG=off /usr/bin/python3 "$fixture" 3 >"$tmp/a.out" 2>&1 & pids+=($!); a=$!
LD_PRELOAD=$lib ELMON_LOG=off /usr/bin/python3 "$fixture" 3 >"$tmp/b.out" 2>&1 & pids+=($!); b=$!
for _ in $(seq 100); do
    [ -e "$ELMON_STATS_DIR/$a.stats" ] && [ -e "$ELMON_STATS_DIR/$b.stats" ] && break
    sleep 0.1
done
[ -e "$ELMON_STATS_DIR/$a.stats" ] && [ -e "$ELMON_STATS_DIR/$b.stats" ] || fail "no stats files"

tmux -L "$sock" -f /dev/null new-session -d -x 200 -y 30 \
    "env ELMON_STATS_DIR='$ELMON_STATS_DIR' '$elmon' top -d 0.5; sleep 30"
screen() { tmux -L "$sock" capture-pane -p >"$tmp/screen"; }
row() { grep -E "^ *$1 " "$tmp/screen" || true; }
# The first data row (after the title and the header).
first_pid() { awk '/^ *PID /{getline; print $1; exit}' "$tmp/screen"; }

# Before: both listed and not blocked (a loaded machine may make a turn
# lag tens of ms: anything below critical).
ok=
for _ in $(seq 40); do
    sleep 0.25; screen
    if row "$a" | grep -qE 'healthy|ok |degraded' && row "$b" | grep -qE 'healthy|ok |degraded'; then ok=1; break; fi
done
[ -n "$ok" ] || fail "before: both processes listed, not blocked"
grep -q "elmon top - .* 2 processes, 2 loop threads" "$tmp/screen" || fail "title"

# During: b blocks; its row says critical and comes first (sorted by lag).
kill -USR1 "$b"
ok=
for _ in $(seq 20); do
    sleep 0.25; screen
    if row "$b" | grep -q critical && [ "$(first_pid)" = "$b" ]; then ok=1; break; fi
done
[ -n "$ok" ] || fail "during: $b critical and first"
row "$a" | grep -qE 'healthy|ok |degraded' || fail "during: $a not blocked"

# After: one span counted, max lag about 3 s, then below critical again.
# The span ends 3 s after it began; a loaded machine may take longer to
# show it, so poll for up to 10 s more.
ok=
for _ in $(seq 40); do
    sleep 0.25; screen
    if row "$b" | awk '{ if ($7 + 0 < 2900 || $10 != 1) exit 1 }'; then ok=1; break; fi
done
[ -n "$ok" ] || fail "after: max lag >= 2900 ms and 1 span"
ok=
for _ in $(seq 60); do
    sleep 0.5; screen
    if row "$b" | grep -qE 'healthy|ok |degraded'; then ok=1; break; fi
done
[ -n "$ok" ] || fail "after: $b below critical again"

# q quits top (the shell then sleeps: the pane shows the prompt-less end).
tmux -L "$sock" send-keys q
ok=
for _ in $(seq 20); do
    sleep 0.25
    if ! tmux -L "$sock" list-panes -F '#{pane_current_command}' | grep -q elmon; then ok=1; break; fi
done
[ -n "$ok" ] || fail "q did not quit"
echo "cli_top: ok"
