#!/usr/bin/env python3
"""elmon serve scraped by a real Prometheus (Debian's package).

usage: serve_prometheus.py ELMON LIBELMON SOURCE_ROOT WORKDIR

Parts, each printed as it runs:
  prometheus   a Python asyncio app under libelmon (ELMON_METRIC_PREFIX=
               asyncio.eventloop) blocks 120 ms every 250 ms; elmon serve;
               Prometheus with a 1 s scrape and evaluation interval and the
               shipped rules (deploy/prometheus/elmon-rules.yml).  The seed's
               three queries, through Prometheus's HTTP API, answer what the
               app did: lag 0.12 s, p99 in the (0.1, 0.25] bucket, the
               blocking rate the app's own count gives; the lag and blocking
               alerts go pending or firing, the critical one does not.
  unscraped    before anyone scrapes, the host's figures are never refreshed.
  forked       a prefork server (3 workers, the parent runs no loop): one
               series set per worker; a worker stopped by SIGTERM (its file
               removed) and one killed by SIGKILL (its file left) both
               vanish from the next scrape.
  hostile      huge headers get 431, garbage 400, POST 405, other paths 404;
               200 connections trickling a byte a second (slowloris) and
               a silent one do not stop scrapes; the silent one is closed.
  users        --all-users as root shows another user's process, without
               it that process is not shown; as another user --all-users
               is refused (exit 1).
  options      exit statuses: bad --listen 2, an extra argument 2, a port in
               use 1, SIGTERM 0; promtool check metrics passes on a scrape.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request

ELMON, LIB, SRC, WORK = sys.argv[1:5]
RULES = os.path.join(SRC, "deploy", "prometheus", "elmon-rules.yml")
APP = os.path.join(SRC, "tests", "fixtures", "serve_app.py")
BLOCK_MS, PERIOD_MS = 120, 250
procs = []
# The sanitizer stages (scripts/test-sanitizers): their runtime goes in front
# of libelmon.so in a host's LD_PRELOAD, and an uninstrumented host (python3)
# gets the host options, as tests/support/support.c does for the suites.
PRELOAD = ":".join(p for p in (os.environ.get("ELMON_TEST_PRELOAD_PREFIX"), LIB) if p)
HOST_ASAN = {"ASAN_OPTIONS": os.environ["ELMON_TEST_HOST_ASAN_OPTIONS"]} if os.environ.get(
    "ELMON_TEST_PRELOAD_PREFIX") and os.environ.get("ELMON_TEST_HOST_ASAN_OPTIONS") else {}
workers_seen = []   # forked workers: not children of this script, killed by pid


def fail(msg):
    print("FAIL:", msg, flush=True)
    cleanup()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("  ok:", msg, flush=True)


def cleanup():
    for pid in workers_seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, headers=None, method="GET", timeout=10):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def start_serve(env, *args):
    p = subprocess.Popen([ELMON, "serve", "--listen", "127.0.0.1:0", *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    procs.append(p)
    line = p.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
    if not m:
        fail("elmon serve did not say where it listens: %r %s" % (line, p.stderr.read() if p.poll() is not None else ""))
    return p, int(m.group(1))


def start_app(env, count_file, workers=0, user=None, app=APP):
    cmd = [sys.executable if not user else "/usr/bin/python3", app, count_file, str(BLOCK_MS), str(PERIOD_MS)]
    if workers:
        cmd.append(str(workers))
    if user:
        cmd = ["runuser", "-u", user, "--"] + ["env"] + ["%s=%s" % kv for kv in env.items()] + cmd
        env = None
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    procs.append(p)
    pids = []
    for _ in range(max(workers, 1)):
        line = p.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        if not m:
            fail("the app did not start: %r" % line)
        pids.append(int(m.group(1)))
    if workers:
        workers_seen.extend(pids)
    return p, pids


def series(text, name):
    """{labels-string: value} for the samples of name."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("}")[0])) if "{" in line else {}
            out.append((labels, float(line.rsplit(" ", 1)[1])))
    return out


def query(prom, q):
    st, _, body = http("http://127.0.0.1:%d/api/v1/query?query=%s" % (prom, urllib.parse.quote(q)))
    d = json.loads(body)
    if st != 200 or d.get("status") != "success":
        fail("query %s: %s %s" % (q, st, body[:300]))
    return d["data"]["result"]


def stats_updated(path):
    """updated_mono_ns of a stats file (common/statsfile.h: offset 192)."""
    with open(path, "rb") as f:
        f.seek(192)
        return int.from_bytes(f.read(8), "little")


def main():
    for prog in ("prometheus", "promtool"):
        if not shutil.which(prog):
            fail("%s is not installed (scripts/install-deps installs Debian's prometheus)" % prog)
    if not os.path.exists(RULES):
        fail("no rules file %s" % RULES)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    stats = os.path.join(WORK, "stats")
    base = dict(os.environ, ELMON_STATS_DIR=stats, ELMON_LOG="off")
    base.pop("ELMON_METRIC_PREFIX", None)
    app_env = dict(base, **HOST_ASAN, LD_PRELOAD=PRELOAD, ELMON_METRIC_PREFIX="asyncio.eventloop", OTEL_SERVICE_NAME="serve-test",
                   SERVICE_VERSION="1.2.3")

    print("unscraped", flush=True)
    app, (pid,) = start_app(app_env, os.path.join(WORK, "count"))
    time.sleep(1.5)
    sfile = os.path.join(stats, "%d.stats" % pid)
    check(os.path.exists(sfile), "the app has its stats file")
    check(stats_updated(sfile) == 0, "before any scrape the host never refreshed its figures")
    serve, port = start_serve(base)
    time.sleep(2)
    check(stats_updated(sfile) == 0, "nor with elmon serve running but not scraped")
    url = "http://127.0.0.1:%d/metrics" % port

    print("prometheus", flush=True)
    prom = free_port()
    cfg = os.path.join(WORK, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %s\n"
                "scrape_configs:\n  - job_name: elmon\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % (RULES, port))
    pl = open(os.path.join(WORK, "prometheus.log"), "w")
    pr = subprocess.Popen(["prometheus", "--config.file", cfg, "--storage.tsdb.path", os.path.join(WORK, "tsdb"),
                           "--web.listen-address", "127.0.0.1:%d" % prom], stdout=pl, stderr=pl)
    procs.append(pr)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if http("http://127.0.0.1:%d/-/ready" % prom, timeout=2)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        fail("Prometheus did not get ready; its log: %s" % open(pl.name).read()[-2000:])
    # Wait until a series has been scraped for a while: 15 s of samples.
    deadline = time.time() + 90
    while time.time() < deadline:
        r = query(prom, 'count_over_time(asyncio_eventloop_lag{pid="%d"}[1m])' % pid)
        if r and float(r[0]["value"][1]) >= 15:
            break
        time.sleep(1)
    else:
        fail("Prometheus has no 15 samples of asyncio_eventloop_lag; targets: %s" %
             http("http://127.0.0.1:%d/api/v1/targets" % prom)[2][:1500])
    check(stats_updated(sfile) != 0, "scraped, the host refreshes its figures")
    up = query(prom, 'up{job="elmon"}')
    check(up and up[0]["value"][1] == "1", "the target is up")
    st, hdr, _ = http(url, {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    check("openmetrics" in hdr.get("Content-Type", ""), "a scraper asking for OpenMetrics gets it (%s)" %
          hdr.get("Content-Type"))

    r = query(prom, 'asyncio_eventloop_lag{pid="%d"}' % pid)
    check(len(r) == 1, "one lag series for the app's loop thread")
    lab = r[0]["metric"]
    check(lab.get("process") == "python3" or lab.get("process", "").startswith("python"), "label process is the "
          "program's name (%s)" % lab.get("process"))
    check(lab.get("thread_id") == str(pid) and lab.get("poller") == "epoll_wait" and
          lab.get("service_name") == "serve-test" and lab.get("service_version") == "1.2.3",
          "labels thread_id, poller, service_name, service_version: %s" % lab)
    check(not any(APP in v for v in lab.values()), "no label carries the command line")
    mx = float(query(prom, 'max_over_time(asyncio_eventloop_lag{pid="%d"}[1m])' % pid)[0]["value"][1])
    check(BLOCK_MS / 1000 <= mx < 0.25, "max_over_time(lag[1m]) %.4f s: the app's %d ms blocks" % (mx, BLOCK_MS))
    avg = float(query(prom, 'avg_over_time(asyncio_eventloop_lag{pid="%d"}[5m])' % pid)[0]["value"][1])
    # Nearly three blocks a second, scraped once a second: nearly every scrape's
    # window holds one; the first sample may come before any.
    check(0.08 <= avg < 0.25, "seed query avg_over_time(asyncio_eventloop_lag[5m]) = %.4f s" % avg)
    q = float(query(prom, 'histogram_quantile(0.99, rate(asyncio_eventloop_lag_distribution_bucket{pid="%d"}[5m]))'
                    % pid)[0]["value"][1])
    # About 3 of every 50 turns are the 120 ms blocks: the 99th percentile
    # lies in their bucket, (0.1, 0.25].
    check(0.1 < q <= 0.25, "seed query histogram_quantile(0.99, rate(..._bucket[5m])) = %.4f s, in (0.1, 0.25]" % q)
    with open(os.path.join(WORK, "count")) as f:
        n0 = int(f.read())
    t0 = time.time()
    time.sleep(10)
    with open(os.path.join(WORK, "count")) as f:
        n1 = int(f.read())
    true_rate = (n1 - n0) / (time.time() - t0)
    # The span of samples Prometheus holds for the warning counter: its
    # rate over that span is the app's own.
    r = query(prom, 'asyncio_eventloop_blocking_events_total{pid="%d",severity="warning"}[5m]' % pid)
    vals = [(float(t), float(v)) for t, v in r[0]["values"]]
    (t_a, v_a), (t_b, v_b) = vals[0], vals[-1]
    span_rate = (v_b - v_a) / (t_b - t_a)
    check(abs(span_rate - true_rate) <= 0.25 * true_rate, "blocking_events_total grew %.3f/s over the %.0f s "
          "scraped, the app blocked %.3f/s" % (span_rate, t_b - t_a, true_rate))
    # The seed's rate(...[5m]) on less than 5 minutes of samples is the
    # increase seen divided by 300 s (Prometheus extrapolates at most about
    # one scrape interval past the samples): so it must be here.
    seed = sum(float(x["value"][1]) for x in query(prom, 'rate(asyncio_eventloop_blocking_events_total{pid="%d"}[5m])'
                                                    % pid))
    want = (v_b - v_a) / 300
    check(0.9 * want <= seed <= 1.2 * want + 3 * span_rate / 300, "seed query rate(asyncio_eventloop_blocking_events_"
          "total[5m]) = %.4f/s: the %d spans seen over 300 s (%.4f/s)" % (seed, v_b - v_a, want))
    cnt = sum(float(x["value"][1]) for x in query(prom, 'asyncio_eventloop_blocking_events_total{pid="%d",'
                                                   'severity="warning"}' % pid))
    with open(os.path.join(WORK, "count")) as f:
        n2 = int(f.read())
    # Behind the app by at most: Prometheus's last scrape (1 s), the host's
    # refresh (1 s) and serve's look (0.5 s).
    behind = int(3 * true_rate) + 1
    check(n2 - behind <= cnt <= n2, "blocking_events_total{severity=warning} %d, the app's own count %d (at most %d "
          "behind)" % (cnt, n2, behind))
    crit = query(prom, 'asyncio_eventloop_blocking_events_total{pid="%d",severity="critical"}' % pid)
    check(crit and float(crit[0]["value"][1]) == 0, "no critical spans counted")
    names = re.findall(r"^\s*-\s*alert:\s*(\S+)", open(RULES).read(), re.M)
    check(len(names) >= 3, "the rules file has the seed's alerts: %s" % names)
    deadline = time.time() + 30
    while time.time() < deadline:
        al = json.loads(http("http://127.0.0.1:%d/api/v1/alerts" % prom)[2])["data"]["alerts"]
        active = {a["labels"]["alertname"]: a["state"] for a in al if a["labels"].get("pid") in (str(pid), None)}
        if len([n for n in active if active[n] in ("pending", "firing")]) >= 2:
            break
        time.sleep(1)
    print("  alerts:", active, flush=True)
    sev = {}
    for block in re.split(r"^\s*-\s*alert:", open(RULES).read(), flags=re.M)[1:]:
        name = block.split()[0]
        m = re.search(r"severity:\s*['\"]?(\w+)", block)
        sev[name] = m.group(1) if m else ""
    lag_alerts = [n for n in names if sev.get(n) == "warning" and re.search(r"lag|degraded", n, re.I)]
    blk_alerts = [n for n in names if re.search(r"block", n, re.I)]
    crit_alerts = [n for n in names if sev.get(n) == "critical"]
    check(lag_alerts and all(active.get(n) in ("pending", "firing") for n in lag_alerts),
          "the lag warning alert %s is pending or firing" % lag_alerts)
    check(blk_alerts and all(active.get(n) in ("pending", "firing") for n in blk_alerts),
          "the frequent-blocking alert %s is pending or firing" % blk_alerts)
    check(crit_alerts and not any(n in active for n in crit_alerts), "the critical alert %s is not" % crit_alerts)
    pr.terminate()
    pr.wait()

    print("forked", flush=True)
    fenv = dict(base, **HOST_ASAN, LD_PRELOAD=PRELOAD)
    farm, wpids = start_app(fenv, os.path.join(WORK, "fcount"), workers=3)
    time.sleep(2.5)
    http(url)
    time.sleep(2)
    st, _, text = http(url)
    got = {int(l["pid"]) for l, _ in series(text, "eventloop_turns_total")}
    check(got == set(wpids), "one series set per worker: pids %s, workers %s (parent %d runs no loop)" %
          (sorted(got), sorted(wpids), farm.pid))
    check(len(series(text, "eventloop_lag_distribution_count")) == 3, "each worker its histogram")
    check(any(l.get("pid") == str(pid) for l, _ in series(text, "asyncio_eventloop_turns_total")),
          "the first app, another prefix, is served beside them")
    os.kill(wpids[0], signal.SIGTERM)
    os.kill(wpids[1], signal.SIGKILL)
    time.sleep(1.5)
    st, _, text = http(url)
    got = {int(l["pid"]) for l, _ in series(text, "eventloop_turns_total")}
    check(got == {wpids[2]}, "a worker that exited (SIGTERM) and one killed (SIGKILL) vanish: %s" % sorted(got))
    check(not os.path.exists(os.path.join(stats, "%d.stats" % wpids[1])), "the killed worker's leftover file is "
          "removed")

    print("hostile", flush=True)

    def raw(data, read=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(data)
        out = s.recv(200) if read else b""
        s.close()
        return out
    check(raw(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431"),
          "a 20 KB header: 431")
    check(raw(b"\x16\x03\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400"), "garbage: 400")
    check(raw(b"GET /metrics SPDY/3\r\n\r\n").startswith(b"HTTP/1.1 400"), "not HTTP/1.x: 400")
    check(http(url, method="POST")[0] == 405, "POST: 405")
    check(http(url.replace("/metrics", "/etc/passwd"))[0] == 404, "another path: 404")
    check(http(url + "?x=1", method="HEAD")[0] == 200, "HEAD /metrics?query: 200")
    slow = []
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        slow.append(s)
    worst = 0
    for i in range(10):
        for s in slow:
            try:
                s.send(b"X")
            except OSError:
                pass
        t = time.time()
        try:
            st, _, text = http(url, timeout=5)
        except OSError as e:   # refused or reset: what a full table did before eviction
            st, text = str(e), ""
        worst = max(worst, time.time() - t)
        check(st == 200 and "eventloop_turns_total" in text, "scrape %d beside 200 slowloris connections (%s)" % (i, st))
        time.sleep(0.3)
    check(worst < 2, "slowest of those scrapes %.3f s" % worst)
    for s in slow:
        s.close()
    silent = socket.create_connection(("127.0.0.1", port))
    silent.settimeout(20)
    t = time.time()
    try:
        closed = silent.recv(10) == b""
    except socket.timeout:
        closed = False
    took = time.time() - t
    check(closed and 9 <= took < 15, "a connection that sends nothing is closed at its 10 s deadline (after %.1f s)"
          % took)
    silent.close()

    print("users", flush=True)
    if os.geteuid() != 0 or not shutil.which("runuser"):
        fail("the users part needs root and runuser (the test machine has both)")
    shared = tempfile.mkdtemp(prefix="elmon-serve-")
    os.chmod(shared, 0o755)
    for f in (ELMON, LIB, APP):
        shutil.copy(f, shared)
    olib = os.path.join(shared, os.path.basename(LIB))
    oapp_env = dict(HOST_ASAN, LD_PRELOAD=":".join(p for p in (os.environ.get("ELMON_TEST_PRELOAD_PREFIX"), olib) if p),
                    ELMON_LOG="off", PATH="/usr/bin:/bin", HOME="/")
    other_dir = "/tmp/elmon-65534"
    ocount = os.path.join(shared, "ocount")
    open(ocount, "w").close()
    os.chmod(shared, 0o777)
    other, (opid,) = start_app(oapp_env, ocount, user="nobody", app=os.path.join(shared, "serve_app.py"))
    time.sleep(1.5)
    check(os.path.exists(os.path.join(other_dir, "%d.stats" % opid)), "nobody's app has its file in %s" % other_dir)
    st, _, text = http(url)
    check(str(opid) not in {l.get("pid") for l, _ in series(text, "eventloop_turns_total")},
          "without --all-users another user's process is not shown")
    allu, aport = start_serve(base, "--all-users")
    aurl = "http://127.0.0.1:%d/metrics" % aport
    http(aurl)
    time.sleep(2)
    st, _, text = http(aurl)
    check(str(opid) in {l.get("pid") for l, _ in series(text, "eventloop_turns_total")},
          "with --all-users as root it is")
    r = subprocess.run(["runuser", "-u", "nobody", "--", os.path.join(shared, "elmon"), "serve", "--all-users",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "root" in r.stderr, "as nobody --all-users is refused, exit 1: %d %s" %
          (r.returncode, r.stderr.strip()))
    allu.terminate()
    allu.wait()
    other.terminate()
    other.wait()
    shutil.rmtree(shared, ignore_errors=True)

    print("options", flush=True)
    r = subprocess.run(["promtool", "check", "metrics"], input=http(url)[2], capture_output=True, text=True)
    check(r.returncode == 0, "promtool check metrics on a scrape: %s" % (r.stdout + r.stderr).strip()[:500])

    # docs/EXPORT.md's table (its elmon serve column) and a scrape name the
    # same series families.
    doc = open(os.path.join(SRC, "docs", "EXPORT.md")).read()
    table = doc[doc.index("| OTLP instrument (prefix `asyncio.eventloop`) |"):]
    table = table[:table.index("\n\n")]
    documented = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[2]
        names = re.findall(r"`([a-z_]+)`", cell)
        first = names[0]
        documented.add(first)
        documented.update(first.rsplit("_", 1)[0] + n if n.startswith("_") else n for n in re.findall(r"`(_[a-z]+)`", cell))
    scraped = {line.split("{")[0].split(" ")[0] for line in http(url)[2].splitlines() if line and line[0] != "#"}
    scraped = {n for n in scraped if n.startswith("asyncio_eventloop_") or n.startswith("elmon_serve_")}
    check(documented == scraped, "docs/EXPORT.md's elmon serve names are what a scrape has: only in the doc %s, only "
          "scraped %s" % (sorted(documented - scraped), sorted(scraped - documented)))

    def status(*args):
        return subprocess.run([ELMON, "serve", *args], capture_output=True, text=True, env=base, timeout=10)
    r = status("--listen", "nonsense")
    check(r.returncode == 2 and "--listen" in r.stderr, "--listen nonsense: exit 2 (%s)" % r.stderr.strip())
    r = status("--listen", "127.0.0.1:99999")
    check(r.returncode == 2, "--listen with port 99999: exit 2")
    r = status("extra")
    check(r.returncode == 2, "an extra argument: exit 2")
    r = status("--listen", "127.0.0.1:%d" % port)
    check(r.returncode == 1 and "cannot listen" in r.stderr, "a port in use: exit 1 (%s)" % r.stderr.strip())
    r = status("--help")
    check(r.returncode == 0 and "Usage: elmon serve" in r.stdout, "--help: exit 0")
    serve.send_signal(signal.SIGTERM)
    check(serve.wait(timeout=10) == 0, "SIGTERM: exit 0")
    app.send_signal(signal.SIGTERM)
    check(app.wait(timeout=10) == 0, "the app's own exit status is 0 (served throughout)")
    farm.send_signal(signal.SIGTERM)
    farm.wait(timeout=10)
    cleanup()
    print("serve_prometheus: all parts passed", flush=True)


try:
    main()
except SystemExit:
    raise
except BaseException as e:
    import traceback
    traceback.print_exc()
    cleanup()
    sys.exit(1)
