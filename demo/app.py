"""The seed's event-loop demo server, re-created with aiohttp.

Endpoints as in the seed (asyncio-event-loop-diagnostics): good patterns that
keep the loop responsive and bad ones that block it.  It also keeps the
seed's own measurement, a 100 ms sleep probe, so /metrics shows what the
probe saw next to what libelmon measured for every turn.

    PORT=8000 HOST=127.0.0.1 python3 demo/app.py
"""
import asyncio
import hashlib
import json
import os
import time

from aiohttp import ClientSession, web


class SleepProbe:
    """The seed's technique: sleep 100 ms, call the excess lag."""

    def __init__(self, interval=0.1, blocking_threshold=0.05):
        self.interval = interval
        self.threshold = blocking_threshold
        self.reset()

    def reset(self):
        self.lag = 0.0
        self.max_lag = 0.0
        self.blocking_events = 0
        self.samples = 0

    async def run(self):
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - start - self.interval)
            self.lag = lag
            self.max_lag = max(self.max_lag, lag)
            self.samples += 1
            if lag >= self.threshold:
                self.blocking_events += 1

    def status(self):
        if self.lag < 0.010:
            return "healthy"
        if self.lag < 0.050:
            return "ok"
        if self.lag < 0.500:
            return "degraded"
        return "critical"


probe = SleepProbe()
routes = web.RouteTableDef()


def cpu_work(iterations):
    total = 0
    for i in range(iterations):
        total += i * i
    return total


@routes.get("/")
async def index(request):
    return web.json_response({"endpoints": sorted(r.resource.canonical for r in request.app.router.routes())})


@routes.get("/health")
async def health(request):
    return web.json_response({"status": probe.status(), "lag_ms": round(probe.lag * 1e3, 3)})


@routes.get("/metrics")
async def metrics(request):
    return web.json_response({
        "probe_lag_s": probe.lag,
        "probe_max_lag_s": probe.max_lag,
        "probe_blocking_events": probe.blocking_events,
        "probe_samples": probe.samples,
        "active_tasks": len(asyncio.all_tasks()),
    })


@routes.get("/metrics/reset")
async def metrics_reset(request):
    probe.reset()
    return web.json_response({"reset": True})


@routes.get("/async-io")
async def async_io(request):
    await asyncio.sleep(0.1)
    return web.json_response({"pattern": "async-io", "slept_s": 0.1})


@routes.get("/proper-cpu")
async def proper_cpu(request):
    n = int(request.query.get("iterations", "5000000"))
    result = await asyncio.get_running_loop().run_in_executor(None, cpu_work, n)
    return web.json_response({"pattern": "proper-cpu", "iterations": n, "result": result % 1000})


@routes.get("/concurrent-tasks")
async def concurrent_tasks(request):
    n = int(request.query.get("count", "10"))
    await asyncio.gather(*(asyncio.sleep(0.05) for _ in range(n)))
    return web.json_response({"pattern": "concurrent-tasks", "count": n})


@routes.get("/blocking-io")
async def blocking_io(request):
    seconds = float(request.query.get("seconds", "1"))
    time.sleep(seconds)  # BAD: blocks the event loop
    return web.json_response({"pattern": "blocking-io", "seconds": seconds})


@routes.get("/cpu-bound")
async def cpu_bound(request):
    n = int(request.query.get("iterations", "5000000"))
    result = cpu_work(n)  # BAD: CPU work on the loop thread
    return web.json_response({"pattern": "cpu-bound", "iterations": n, "result": result % 1000})


@routes.get("/blocking-hash")
async def blocking_hash(request):
    size = int(request.query.get("size", str(64 * 1024 * 1024)))
    data = b"x" * size
    digest = data
    for _ in range(4):  # BAD: hashing a large buffer on the loop thread
        digest = hashlib.sha256(digest + data).digest()
    return web.json_response({"pattern": "blocking-hash", "size": size, "digest": digest.hex()[:16]})


@routes.get("/stress-test")
async def stress_test(request):
    n = int(request.query.get("requests", "20"))
    concurrent = int(request.query.get("concurrent", "5"))
    blocking = request.query.get("blocking", "false") == "true"
    path = "/blocking-io?seconds=0.05" if blocking else "/async-io"
    base = f"http://{request.host}"
    sem = asyncio.Semaphore(concurrent)
    t0 = time.monotonic()

    async def one(session):
        async with sem:
            async with session.get(base + path) as resp:
                await resp.read()

    async with ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(n)))
    return web.json_response({"requests": n, "concurrent": concurrent, "blocking": blocking,
                              "elapsed_s": round(time.monotonic() - t0, 3)})


async def start_probe(app):
    app["probe"] = asyncio.get_running_loop().create_task(probe.run())


async def stop_probe(app):
    app["probe"].cancel()


def main():
    app = web.Application()
    app.add_routes(routes)
    app.on_startup.append(start_probe)
    app.on_cleanup.append(stop_probe)
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")),
                print=lambda *a: print(*a, flush=True))


if __name__ == "__main__":
    main()
