#!/usr/bin/env bash
# elmon attach (cli/attach.c, preload/process/attach.c, preload/core/got.c)
# on programs started without libelmon: a C epoll loop (tests/fixtures/
# attach_fix.c) and Debian's CPython asyncio (fixtures/attach_asyncio.py).
# Each case is a function named in docs/CLI.md's option table.
#   attach_c_epoll    blocks reported with the fixture's culprit, --out,
#                     --block-ms, --critical-ms and --log obeyed, no wait of
#                     the host ended with EINTR or a wrong result, nothing
#                     left traced, the settings file gone
#   attach_relro      the same on a full-RELRO build (-z now): its read-only
#                     GOT rewritten, its pages' protection as before
#   attach_twice      a second attach says libelmon is already active, 0
#   attach_asyncio    the blocking handler named; the default events
#                     directory (./elmon-DATE-TIME) and log (the host's stderr)
#   attach_busy_main  the main thread never waits: a loop on another thread
#                     is borrowed instead, and its blocks reported
#   attach_pyserver, attach_node, attach_redis  a server (an asyncio one,
#                     Node's net, redis-server) answers a client before,
#                     during and after the attach, every reply as without
#                     libelmon; a 300 ms block (slow_handler, spinHandler,
#                     DEBUG SLEEP) is reported once with its culprit; SIGTERM
#                     ends it with its own status (skipped, said so, where
#                     node or redis-server is missing)
#   attach_late_dlopen  a library the host loads with dlopen after the
#                     attach (fixtures/attach_late.c, lazily bound) runs a
#                     poll loop on a thread of its own: its blocks reported
#   detach_c_epoll    elmon detach: calls put back, summary written, no
#                     block after it, twice is fine, no attach after it
#   attach_other_user_as_root  root attaches to nobody's process: the files
#                     are nobody's; a planted settings directory is refused
#   refuse_detach     detach of a process without libelmon, or preloaded (1)
#   refuse_*          no such process (3), another user's process or a
#                     seccomp-confined one (4),
#                     already traced (5), a static binary (6), libelmon
#                     disabled in the host (8, unloaded again), each with
#                     one line on stderr and the target untouched
# Usage: cli_attach.sh ELMON LIBELMON ATTACH_FIX ATTACH_FIX_STATIC ASYNCIO_PY ATTACH_FIX_NOW
#          CLIENT_PY PYSERVER_PY NODE_JS ATTACH_LATE_SO
set -euo pipefail
elmon=${1:?usage}
lib=${2:?usage}
fix=${3:?usage}
static_fix=${4:?usage}
pyfix=${5:?usage}
now_fix=${6:?usage}
client=${7:?usage}
pyserver=${8:?usage}
nodefix=${9:?usage}
late_lib=${10:?usage}
python=/usr/bin/python3
tmp=$(mktemp -d /tmp/elmon-cli-attach-XXXXXX)
chmod 755 "$tmp"
started=()
cleanup() {
    for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
case_fails=0
fail() {
    echo "FAIL $case: $*" >&2
    fails=$((fails + 1))
}
begin() {
    case=$1
    case_fails=$fails
}
# report [DETAIL]: the end of a case, ok only when it added no failure.
report() {
    if [ "$fails" = "$case_fails" ]; then echo "ok $case${1:+: $1}"; else echo "not ok $case"; fi
}
export ELMON_LIBRARY=$lib

# The ASan stage (scripts/test-sanitizers): elmon and libelmon.so are built
# with the shared ASan runtime, which must be loaded before libc in any
# process that later dlopens libelmon.so.  A target there starts with the
# runtime alone preloaded (still without libelmon) and the host options
# (no leak check of python3), as tests/support/support.c does.
san_pre=${ELMON_TEST_PRELOAD_PREFIX:-}
host_env=()
if [ -n "$san_pre" ]; then
    host_env=(LD_PRELOAD="$san_pre")
    [ -n "${ELMON_TEST_HOST_ASAN_OPTIONS:-}" ] && host_env+=(ASAN_OPTIONS="$ELMON_TEST_HOST_ASAN_OPTIONS")
fi

# start OUT CMD...: runs CMD in the background (no libelmon preloaded),
# waits for its "ready PID" line; sets $pid.
start() {
    local out=$1
    shift
    env -u LD_PRELOAD "${host_env[@]}" "$@" >"$out" 2>"$out.err" &
    pid=$!
    started+=("$pid")
    for _ in $(seq 100); do
        grep -q '^ready' "$out" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "$* never got ready"
    return 1
}

tracer() { awk '/^TracerPid:/ {print $2}' "/proc/$1/status"; }

# Every thread of $1 untraced.
untraced() {
    local t
    for t in /proc/"$1"/task/*; do
        [ "$(awk '/^TracerPid:/ {print $2}' "$t/status")" = 0 ] || return 1
    done
}

# blocks FILE: "DURATION_MS SEVERITY CULPRIT" per block record.
blocks() {
    $python - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "block":
        print(round(r["duration_ms"]), r["severity"], r["culprit"])
EOF
}

attach_c_epoll() {
    begin attach_c_epoll
    start "$tmp/c.out" "$fix" 4 300 || return
    if ! "$elmon" attach --out "$tmp/c" --block-ms 60 --critical-ms 100 --log "$tmp/c.log" "$pid" 2>"$tmp/c.attach"; then
        fail "attach exited $? ($(cat "$tmp/c.attach"))"
        return
    fi
    grep -q "attached to $pid" "$tmp/c.attach" || fail "no 'attached' line: $(cat "$tmp/c.attach")"
    untraced "$pid" || fail "a thread of $pid is still traced"
    grep -q libelmon.so "/proc/$pid/maps" || fail "libelmon.so not mapped in $pid"
    # elmon stat sees it as any monitored process (its live stats file).
    sleep 1
    "$elmon" stat "$pid" >"$tmp/c.stat" 2>&1 || fail "elmon stat exited $?: $(cat "$tmp/c.stat")"
    grep -q "epoll_wait" "$tmp/c.stat" || fail "elmon stat shows no epoll_wait loop: $(cat "$tmp/c.stat")"
    # The settings file was read and removed; its directory is private.
    local sdir=/tmp/elmon-attach-$(id -u)
    [ ! -e "$sdir/$pid.settings" ] || fail "the settings file $sdir/$pid.settings was left"
    [ "$(stat -c '%a %u' "$sdir")" = "700 $(id -u)" ] || fail "$sdir is $(stat -c '%a %u' "$sdir")"
    wait "$pid" && rc=0 || rc=$?
    [ "$rc" = 0 ] || fail "the fixture exited $rc: $(cat "$tmp/c.out" "$tmp/c.out.err")"
    grep -q ' eintr=0$' "$tmp/c.out" || fail "a wait ended with EINTR: $(cat "$tmp/c.out")"
    local ev="$tmp/c/events.$pid.jsonl"
    [ -s "$ev" ] || { fail "no events file $ev"; return; }
    blocks "$ev" >"$tmp/c.blocks"
    local n
    n=$(wc -l <"$tmp/c.blocks")
    # 4 s, a 120 ms block every 300 ms after the attach: about 9.
    [ "$n" -ge 5 ] || fail "$n blocks reported, expected at least 5: $(cat "$tmp/c.blocks")"
    # --critical-ms 100: a 120 ms block is critical; culprit the block function.
    if grep -v -E '^1[12][0-9] critical attach_fix_block \(attach_fix\.c:[0-9]+\)$' "$tmp/c.blocks"; then
        fail "a block is not ~120 ms, critical, in attach_fix_block"
    fi
    grep -q '"block_ms":60,"critical_ms":100' "$ev" || fail "the summary lacks block_ms 60, critical_ms 100"
    grep -q "loop blocked 1[12][0-9]" "$tmp/c.log" || fail "--log $tmp/c.log has no span line"
    if grep -q "loop blocked" "$tmp/c.out.err"; then fail "span lines reached the host's stderr despite --log"; fi
    report "$n blocks, eintr=0, untraced"
}

attach_relro() {
    begin attach_relro
    start "$tmp/rr.out" "$now_fix" 3 300 || return
    local before after rc=0
    before=$(grep -F "$now_fix" "/proc/$pid/maps" | awk '{print $1, $2}')
    # A relative --log is elmon's working directory's ($tmp), not the host's.
    "$elmon" attach --out "$tmp/rr" --log rr.log "$pid" 2>"$tmp/rr.attach" || rc=$?
    [ "$rc" = 0 ] || { fail "attach exited $rc: $(cat "$tmp/rr.attach")"; return; }
    after=$(grep -F "$now_fix" "/proc/$pid/maps" | awk '{print $1, $2}')
    # The GOT's page was made writable for the stores and read-only again.
    [ "$before" = "$after" ] || fail "the fixture's mappings changed: $before / $after"
    wait "$pid" && rc=0 || rc=$?
    [ "$rc" = 0 ] || fail "the fixture exited $rc: $(cat "$tmp/rr.out" "$tmp/rr.out.err")"
    local n
    n=$(blocks "$tmp/rr/events.$pid.jsonl" 2>/dev/null | grep -c attach_fix_block || true)
    [ "$n" -ge 3 ] || fail "$n blocks in attach_fix_block, expected at least 3"
    grep -q "loop blocked" "$tmp/rr.log" || fail "--log rr.log: no span line in $tmp/rr.log"
    report "$n blocks"
}

attach_twice() {
    begin attach_twice
    start "$tmp/t.out" "$fix" 3 300 || return
    "$elmon" attach --out "$tmp/t" --log off "$pid" 2>"$tmp/t.1" || fail "first attach: $(cat "$tmp/t.1")"
    local rc=0
    "$elmon" attach --out "$tmp/t" --log off "$pid" 2>"$tmp/t.2" || rc=$?
    [ "$rc" = 0 ] || fail "second attach exited $rc"
    grep -q "already active in $pid" "$tmp/t.2" || fail "second attach said: $(cat "$tmp/t.2")"
    [ "$(grep -c 'libelmon.so' "/proc/$pid/maps" | head -1)" -ge 1 ] || fail "libelmon gone"
    [ "$(tracer "$pid")" = 0 ] || fail "left traced"
    wait "$pid" && rc=0 || rc=$?
    [ "$rc" = 0 ] || fail "the fixture exited $rc: $(cat "$tmp/t.out")"
    report
}

attach_asyncio() {
    begin attach_asyncio
    mkdir -p "$tmp/pycwd"
    cd "$tmp/pycwd"
    start "$tmp/py.out" "$python" "$pyfix" 4 || { cd "$tmp"; return; }
    sleep 0.3
    local rc=0
    "$elmon" attach "$pid" 2>"$tmp/py.attach" || rc=$?
    cd "$tmp"
    [ "$rc" = 0 ] || { fail "attach exited $rc: $(cat "$tmp/py.attach")"; return; }
    untraced "$pid" || fail "left traced"
    for _ in $(seq 100); do
        grep -q '^done' "$tmp/py.out" && break
        sleep 0.1
    done
    grep -q '^done' "$tmp/py.out" || fail "the program did not finish: $(cat "$tmp/py.out.err")"
    wait "$pid" || fail "the program exited $?"
    local ev
    ev=$(ls "$tmp"/pycwd/elmon-*/events."$pid".jsonl 2>/dev/null | head -1 || true)
    [ -n "$ev" ] || { fail "no events file under the default ./elmon-DATE-TIME"; return; }
    blocks "$ev" >"$tmp/py.blocks"
    grep -q 'blocking_handler' "$tmp/py.blocks" || fail "no block names blocking_handler: $(cat "$tmp/py.blocks")"
    grep -q "loop blocked" "$tmp/py.out.err" || fail "no span line on the host's stderr (the default log)"
    if grep -q Traceback "$tmp/py.out.err"; then fail "the program raised: $(cat "$tmp/py.out.err")"; fi
    report "$(wc -l <"$tmp/py.blocks") blocks"
}

attach_busy_main() {
    begin attach_busy_main
    start "$tmp/bm.out" "$python" "$pyfix" 4 thread || return
    sleep 0.3
    local rc=0
    "$elmon" attach --out "$tmp/bm" --log off "$pid" 2>"$tmp/bm.attach" || rc=$?
    [ "$rc" = 0 ] || { fail "attach exited $rc: $(cat "$tmp/bm.attach")"; return; }
    # The main thread never waits: the loop thread is the one borrowed.
    if grep -q "attached to $pid (thread $pid)" "$tmp/bm.attach"; then fail "the busy main thread was borrowed"; fi
    untraced "$pid" || fail "left traced"
    wait "$pid" || fail "the program exited $?: $(cat "$tmp/bm.out.err")"
    grep -q '^done' "$tmp/bm.out" || fail "the program did not finish"
    local ev="$tmp/bm/events.$pid.jsonl"
    [ -s "$ev" ] || { fail "no events file $ev"; return; }
    $python - "$ev" "$pid" <<'EOF' || fail "no block of the loop thread names blocking_handler"
import json, sys
pid = int(sys.argv[2])
blocks = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(r.get("type") == "block" and r["tid"] != pid and "blocking_handler" in r["culprit"] for r in blocks) else 1)
EOF
    report
}

detach_c_epoll() {
    begin detach_c_epoll
    start "$tmp/dt.out" "$fix" 5 300 || return
    "$elmon" attach --out "$tmp/dt" --log off "$pid" 2>"$tmp/dt.attach" || { fail "attach: $(cat "$tmp/dt.attach")"; return; }
    sleep 1.5
    local t rc=0
    t=$(date +%s%N)
    "$elmon" detach "$pid" 2>"$tmp/dt.detach" || rc=$?
    [ "$rc" = 0 ] || fail "detach exited $rc: $(cat "$tmp/dt.detach")"
    grep -q "detached from $pid" "$tmp/dt.detach" || fail "detach said: $(cat "$tmp/dt.detach")"
    untraced "$pid" || fail "left traced"
    rc=0
    "$elmon" detach "$pid" 2>"$tmp/dt.2" || rc=$?
    [ "$rc" = 0 ] && grep -q "already detached" "$tmp/dt.2" || fail "second detach: $rc $(cat "$tmp/dt.2")"
    expect_refusal 8 "cannot be attached again" "$elmon" attach --out "$tmp/dt" "$pid"
    wait "$pid" && rc=0 || rc=$?
    [ "$rc" = 0 ] || fail "the fixture exited $rc: $(cat "$tmp/dt.out" "$tmp/dt.out.err")"
    # Blocks before the detach only (5 s of blocks every 300 ms in all),
    # and the summary written by it.
    $python - "$tmp/dt/events.$pid.jsonl" "$t" <<'EOF' || fail "events after the detach, or none before, or no summary"
import json, sys
t = int(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[1])]
blocks = [r for r in recs if r["type"] == "block"]
late = [r for r in blocks if r["start_unix_ns"] > t]
summ = [r for r in recs if r["type"] == "summary"]
print(len(blocks), "blocks,", len(late), "after the detach,", len(summ), "summary", file=sys.stderr)
sys.exit(0 if blocks and not late and len(summ) == 1 else 1)
EOF
    report
}

# served_during_attach NAME KIND BLOCK CULPRIT STATUS CMD...: a server
# started bare (tests/fixtures/attach_pyserver.py, attach_node.js, redis)
# answers a client before, during and after the attach, every reply the
# one it gives without libelmon; then BLOCK (a command run with the port
# as its argument) blocks the loop ~300 ms, reported once and named
# CULPRIT (a regular expression); SIGTERM ends the server with its own
# STATUS.  Sets $pid.
served_during_attach() {
    local name=$1 kind=$2 block=$3 culprit=$4 status=$5
    shift 5
    local port rc=0
    if [ "$kind" = redis ]; then
        # redis prints no "ready": it is ready once it answers.
        port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        env -u LD_PRELOAD "${host_env[@]}" "$@" --port "$port" >"$tmp/$name.out" 2>"$tmp/$name.out.err" &
        pid=$!
        started+=("$pid")
        for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    else
        start "$tmp/$name.out" "$@" || return 1
        port=$(awk '/^ready/ {print $3}' "$tmp/$name.out")
    fi
    "$python" "$client" "$kind" "$port" 0.5 "$tmp/$name.nostop" >"$tmp/$name.before" 2>&1 || true
    grep -q 'bad=0$' "$tmp/$name.before" || fail "before the attach: $(cat "$tmp/$name.before")"
    "$python" "$client" "$kind" "$port" 15 "$tmp/$name.stop" >"$tmp/$name.during" 2>&1 &
    local cl=$!
    sleep 0.3
    "$elmon" attach --out "$tmp/$name" --block-ms 100 --log "$tmp/$name.log" "$pid" 2>"$tmp/$name.attach" || rc=$?
    [ "$rc" = 0 ] || { fail "attach exited $rc: $(cat "$tmp/$name.attach")"; touch "$tmp/$name.stop"; return 1; }
    untraced "$pid" || fail "a thread of $pid is still traced"
    sleep 0.5
    $block "$port" >/dev/null || fail "the blocking request failed"
    sleep 0.5
    touch "$tmp/$name.stop"
    wait "$cl" || true
    grep -q 'bad=0$' "$tmp/$name.during" || fail "around the attach: $(cat "$tmp/$name.during")"
    "$python" "$client" "$kind" "$port" 0.5 "$tmp/$name.nostop" >"$tmp/$name.after" 2>&1 || true
    grep -q 'bad=0$' "$tmp/$name.after" || fail "after the attach: $(cat "$tmp/$name.after")"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = "$status" ] || fail "exited $rc on SIGTERM, expected its own $status: $(tail -3 "$tmp/$name.out.err")"
    local ev="$tmp/$name/events.$pid.jsonl"
    [ -s "$ev" ] || { fail "no events file $ev"; return 1; }
    # One span of 250 ms or more: the block, named by its culprit.
    blocks "$ev" | awk '$1 >= 250' >"$tmp/$name.blocks"
    [ "$(wc -l <"$tmp/$name.blocks")" = 1 ] || fail "$(wc -l <"$tmp/$name.blocks") spans of 250 ms or more, expected 1: $(cat "$tmp/$name.blocks")"
    grep -q -E "$culprit" "$tmp/$name.blocks" || fail "the block is not named $culprit: $(cat "$tmp/$name.blocks")"
    grep -q "loop blocked" "$tmp/$name.log" || fail "no span line in --log"
    echo "  $name: $(cat "$tmp/$name.blocks"); $(sed 's/^/during: /' "$tmp/$name.during")"
}

py_block() { "$python" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); s.sendall(b"block\n"); print(s.makefile().readline())' "$1"; }
redis_block() { redis-cli -p "$1" DEBUG SLEEP 0.3; }

attach_pyserver() {
    begin attach_pyserver
    served_during_attach pys echo py_block '^[0-9]+ [a-z]+ slow_handler \(.*attach_pyserver\.py:[0-9]+\)$' 5 \
        "$python" "$pyserver" || true
    report
}

attach_node() {
    begin attach_node
    if ! command -v node >/dev/null; then
        echo "skip $case: no node on PATH"
        return
    fi
    # Named JavaScript frames need V8's perf map (STACKS.md).
    served_during_attach nd echo py_block '^[0-9]+ [a-z]+ spinHandler .*attach_node\.js:[0-9]+' 7 \
        node --perf-basic-prof --interpreted-frames-native-stack "$nodefix" || true
    rm -f /tmp/perf-"$pid".map
    report
}

attach_redis() {
    begin attach_redis
    if ! command -v redis-server >/dev/null; then
        echo "skip $case: no redis-server on PATH"
        return
    fi
    served_during_attach rd redis redis_block '^[0-9]+ [a-z]+ debugCommand ' 0 \
        redis-server --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes --logfile "" || true
    report
}

attach_late_dlopen() {
    begin attach_late_dlopen
    start "$tmp/la.out" "$fix" 4 300 "late=$late_lib" || return
    local rc=0
    "$elmon" attach --out "$tmp/la" --log off "$pid" 2>"$tmp/la.attach" || rc=$?
    [ "$rc" = 0 ] || { fail "attach exited $rc: $(cat "$tmp/la.attach")"; return; }
    # The fixture loads the library 1.5 s after its start.
    if grep -q attach_late "/proc/$pid/maps"; then fail "the library was loaded before the attach"; fi
    wait "$pid" && rc=0 || rc=$?
    [ "$rc" = 0 ] || fail "the fixture exited $rc: $(cat "$tmp/la.out" "$tmp/la.out.err")"
    grep -q ' eintr=0$' "$tmp/la.out" || fail "a wait ended with EINTR: $(cat "$tmp/la.out")"
    local n
    n=$($python - "$tmp/la/events.$pid.jsonl" "$pid" <<'EOF'
import json, sys
pid = int(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[1])]
print(sum(1 for r in recs if r["type"] == "block" and r["tid"] != pid and r["culprit"].startswith("attach_late_block (attach_late.c:")))
EOF
    ) || n=0
    # 2.5 s of the late loop, a 120 ms block every 300 ms: about 6.
    [ "$n" -ge 3 ] || fail "$n blocks of the late library's loop, expected at least 3"
    report "$n blocks in the library loaded after the attach"
}

refuse_detach() {
    begin refuse_detach
    start "$tmp/rd.out" "$fix" 2 300 || return
    expect_refusal 1 "not loaded" "$elmon" detach "$pid"
    wait "$pid" || fail "the fixture failed"
    # Preloaded from its start: nothing elmon attach did to undo.
    LD_PRELOAD=${san_pre:+$san_pre:}$lib ELMON_LOG=off "$fix" 2 300 >"$tmp/rd2.out" &
    pid=$!
    started+=("$pid")
    for _ in $(seq 100); do grep -q '^ready' "$tmp/rd2.out" && break; sleep 0.05; done
    expect_refusal 1 "not attached" "$elmon" detach "$pid"
    local p=4194000
    while [ -e /proc/$p ]; do p=$((p + 1)); done
    expect_refusal 3 "no such process" "$elmon" detach "$p"
    wait "$pid" || fail "the preloaded fixture failed"
    report
}

# expect_refusal STATUS PATTERN CMD...: CMD exits STATUS with PATTERN in
# exactly one line of stderr.
expect_refusal() {
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" 2>"$tmp/ref.err" >/dev/null || rc=$?
    [ "$rc" = "$want" ] || fail "exit $rc, expected $want: $(cat "$tmp/ref.err")"
    [ "$(wc -l <"$tmp/ref.err")" = 1 ] || fail "not one line: $(cat "$tmp/ref.err")"
    grep -q "$pat" "$tmp/ref.err" || fail "stderr lacks '$pat': $(cat "$tmp/ref.err")"
}

refuse_no_process() {
    begin refuse_no_process
    local p=4194000
    while [ -e /proc/$p ]; do p=$((p + 1)); done
    expect_refusal 3 "no such process" "$elmon" attach --out "$tmp/none" "$p"
    report
}

refuse_static() {
    begin refuse_static
    start "$tmp/s.out" "$static_fix" 3 300 || return
    expect_refusal 6 "no C library" "$elmon" attach --out "$tmp/s" "$pid"
    [ "$(tracer "$pid")" = 0 ] || fail "left traced"
    wait "$pid" || fail "the static fixture failed: $(cat "$tmp/s.out")"
    report
}

refuse_traced() {
    begin refuse_traced
    start "$tmp/tr.out" "$fix" 3 300 || return
    strace -f -qq -o /dev/null -p "$pid" &
    local st=$!
    started+=("$st")
    for _ in $(seq 100); do
        [ "$(tracer "$pid")" != 0 ] && break
        sleep 0.05
    done
    expect_refusal 5 "already traced by process $st" "$elmon" attach --out "$tmp/tr" "$pid"
    [ "$(tracer "$pid")" = "$st" ] || fail "strace lost its process"
    if grep -q libelmon.so "/proc/$pid/maps"; then fail "libelmon loaded anyway"; fi
    kill "$st"
    wait "$st" 2>/dev/null || true
    # strace's own seize and detach may end a wait with EINTR (status 1);
    # a wrong result (3) or a crash is elmon's.
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "the fixture exited $rc: $(cat "$tmp/tr.out")"
    report
}

refuse_other_user() {
    begin refuse_other_user
    [ "$(id -u)" = 0 ] || { echo "skip $case: not root"; return; }
    mkdir -p "$tmp/bin"
    cp "$elmon" "$lib" "$tmp/bin/"
    chmod 755 "$tmp/bin" "$tmp/bin/"*
    start "$tmp/u.out" "$fix" 3 300 || return
    local rc=0
    (cd "$tmp" && ELMON_LIBRARY="$tmp/bin/libelmon.so" runuser -u nobody -- "$tmp/bin/elmon" attach --out "$tmp/u" "$pid") \
        2>"$tmp/ref.err" || rc=$?
    [ "$rc" = 4 ] || fail "exit $rc, expected 4: $(cat "$tmp/ref.err")"
    [ "$(wc -l <"$tmp/ref.err")" = 1 ] || fail "not one line: $(cat "$tmp/ref.err")"
    grep -q "not permitted" "$tmp/ref.err" || fail "stderr: $(cat "$tmp/ref.err")"
    if grep -q libelmon.so "/proc/$pid/maps"; then fail "libelmon loaded anyway"; fi
    wait "$pid" || fail "the fixture failed: $(cat "$tmp/u.out")"
    report
}

refuse_seccomp() {
    begin refuse_seccomp
    start "$tmp/sc.out" "$fix" 3 300 seccomp || return
    expect_refusal 4 "confined by seccomp" "$elmon" attach --out "$tmp/sc" "$pid"
    if grep -q libelmon.so "/proc/$pid/maps"; then fail "libelmon loaded anyway"; fi
    [ "$(tracer "$pid")" = 0 ] || fail "left traced"
    wait "$pid" || fail "the fixture failed: $(cat "$tmp/sc.out")"
    report
}

# Root attaching to another user's process: the settings directory and
# file, and the events directory, are that user's; a settings directory
# planted by someone else (root's, world-writable) is refused.
attach_other_user_as_root() {
    begin attach_other_user_as_root
    [ "$(id -u)" = 0 ] || { echo "skip $case: not root"; return; }
    local nuid d saved=""
    nuid=$(id -u nobody)
    d=/tmp/elmon-attach-$nuid
    if [ -e "$d" ]; then saved=$d.saved.$$; mv "$d" "$saved"; fi
    mkdir -m 0777 "$d"
    chmod 0777 "$d"
    # nobody must reach the fixture and the library it loads: a checkout
    # under a private directory (mktemp -d) would hide them.
    mkdir -p "$tmp/bin"
    cp "$fix" "$lib" "$tmp/bin/"
    chmod 755 "$tmp/bin" "$tmp/bin/"*
    start "$tmp/ou.out" runuser -u nobody -- "$tmp/bin/$(basename "$fix")" 4 300 || { rm -rf "$d"; return; }
    local fpid
    fpid=$(awk '/^ready/ {print $2}' "$tmp/ou.out")
    expect_refusal 8 "settings file" "$elmon" attach --out "$tmp/ou-planted" "$fpid"
    if grep -q libelmon.so "/proc/$fpid/maps"; then fail "libelmon loaded through a planted directory"; fi
    rm -rf "$d"
    local rc=0
    ELMON_LIBRARY="$tmp/bin/$(basename "$lib")" "$elmon" attach --out "$tmp/ou" --log off "$fpid" 2>"$tmp/ou.attach" || rc=$?
    [ "$rc" = 0 ] || fail "attach exited $rc: $(cat "$tmp/ou.attach")"
    [ "$(stat -c '%a %u' "$d" 2>/dev/null)" = "700 $nuid" ] || fail "$d is $(stat -c '%a %u' "$d" 2>&1)"
    [ "$(stat -c %u "$tmp/ou")" = "$nuid" ] || fail "the events directory is not nobody's"
    wait "$pid" || fail "the fixture failed: $(cat "$tmp/ou.out")"
    grep -q ' eintr=0$' "$tmp/ou.out" || fail "EINTR: $(cat "$tmp/ou.out")"
    [ -n "$(blocks "$tmp/ou/events.$fpid.jsonl" 2>/dev/null | grep attach_fix_block)" ] || fail "no block as nobody"
    rm -rf "$d"
    if [ -n "$saved" ]; then mv "$saved" "$d"; fi
    report
}

refuse_disabled() {
    begin refuse_disabled
    start "$tmp/d.out" env ELMON_DISABLE=1 "$fix" 3 300 || return
    expect_refusal 8 "ELMON_DISABLE is set" "$elmon" attach --out "$tmp/d" "$pid"
    if grep -q libelmon.so "/proc/$pid/maps"; then fail "libelmon left loaded"; fi
    [ ! -e "$tmp/d" ] || fail "the events directory $tmp/d was left"
    [ "$(tracer "$pid")" = 0 ] || fail "left traced"
    wait "$pid" || fail "the fixture failed: $(cat "$tmp/d.out")"
    report
}

attach_help() {
    begin attach_help
    "$elmon" attach --help | grep -q '^Usage: elmon attach' || fail "no usage"
    local rc=0
    "$elmon" attach 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "no PID: exit $rc, expected 2"
    rc=0
    "$elmon" attach --block-ms x 1 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "bad --block-ms: exit $rc, expected 2"
    "$elmon" detach --help | grep -q '^Usage: elmon detach PID' || fail "no detach usage"
    "$elmon" detach -h | grep -q '^Usage: elmon detach PID' || fail "no detach usage for -h"
    rc=0
    "$elmon" detach 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "detach without PID: exit $rc, expected 2"
    report
}

cd "$tmp"
attach_help
attach_c_epoll
attach_relro
attach_twice
attach_asyncio
attach_busy_main
attach_pyserver
attach_node
attach_redis
attach_late_dlopen
refuse_no_process
refuse_static
refuse_traced
refuse_other_user
attach_other_user_as_root
refuse_disabled
refuse_seccomp
detach_c_epoll
refuse_detach
if [ "$fails" != 0 ]; then
    echo "cli_attach: $fails failure(s)" >&2
    exit 1
fi
echo "cli_attach: all passed"
