# bench.py — the Python benchmark of BENCH.md: a ctx timeout scope against
# asyncio/trio/anyio/stopit/threading peers, core ops and interrupt latency.
import asyncio
import json
import os
import statistics
import sys
import threading
import time

import ctx

REPS = 5


def best_of(fn, n):
    """Median over REPS runs of fn(n), in ns per op."""
    out = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        fn(n)
        out.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(out)


def interleaved(cases):
    """Like best_of for several workloads, run in turns so that a noisy
    neighbour weighs on each of them alike: {name: median ns/op}."""
    runs = {name: [] for name, _, _ in cases}
    for _ in range(REPS):
        for name, fn, n in cases:
            try:
                t0 = time.perf_counter_ns()
                fn(n)
                runs[name].append((time.perf_counter_ns() - t0) / n)
            except ImportError:
                runs[name] = None
                continue
    return {k: (statistics.median(v) if v else None) for k, v in runs.items()}


def ctx_scope(n):
    timeout = ctx.timeout
    for _ in range(n):
        with timeout(3600):
            pass


def ctx_scope_async(n):
    async def main():
        timeout = ctx.timeout
        for _ in range(n):
            async with timeout(3600):
                pass
    asyncio.run(main())


def asyncio_timeout(n):
    async def main():
        timeout = asyncio.timeout
        for _ in range(n):
            async with timeout(3600):
                pass
    asyncio.run(main())


def trio_move_on(n):
    import trio

    async def main():
        for _ in range(n):
            with trio.move_on_after(3600):
                pass
    trio.run(main)


def anyio_move_on(n):
    import anyio

    async def main():
        for _ in range(n):
            with anyio.move_on_after(3600):
                pass
    anyio.run(main)


def stopit_timeout(n):
    import stopit
    for _ in range(n):
        with stopit.ThreadingTimeout(3600):
            pass


def timer_event(n):
    for _ in range(n):
        ev = threading.Event()
        t = threading.Timer(3600, ev.set)
        t.start()
        t.cancel()
        t.join()


def with_timeout_cancel(n):
    bg, wt = ctx.background(), ctx.with_timeout
    for _ in range(n):
        c, cancel = wt(bg, 3600)
        cancel()


def done_check(n):
    c, cancel = ctx.with_cancel(ctx.background())
    done = c.done
    for _ in range(n):
        done()
    cancel()


def value_depth10(n):
    c = ctx.with_value(ctx.background(), "k", 1)
    for i in range(9):
        c = ctx.with_value(c, i, i)
    value = c.value
    for _ in range(n):
        value("k")


def interrupt_latency(samples=200):
    lat = []
    for _ in range(samples):
        dl = time.time() + 0.005
        try:
            with ctx.deadline(dl, interrupt=True):
                while True:
                    pass
        except ctx.DeadlineExceeded:
            lat.append(time.time() - dl)
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99) - 1] * 1e6


def setitimer_latency(samples=200):
    """The floor on this machine: a plain SIGALRM raising in the same loop."""
    import signal

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm()

    old = signal.signal(signal.SIGALRM, handler)
    lat = []
    try:
        for _ in range(samples):
            dl = time.time() + 0.005
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            try:
                while True:
                    pass
            except Alarm:
                lat.append(time.time() - dl)
    finally:
        signal.signal(signal.SIGALRM, old)
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99) - 1] * 1e6


def _swallow_busy():
    while True:
        try:
            while True:
                pass
        except Exception:
            pass


def _swallow_sleep():
    other, _ = ctx.with_cancel(ctx.background())
    while True:
        try:
            ctx.sleep(10, other)
        except Exception:
            pass


def swallowed_stop(body, samples=40):
    """The level-triggered stop against a loop that swallows it: how long
    after the deadline the block is left (ms, p50/p99), and how often the
    loop caught the stop before that (median)."""
    out, catches = [], []
    for _ in range(samples):
        n = [0]
        dl = time.time() + 0.005
        try:
            with ctx.deadline(dl, interrupt=True):
                while True:
                    try:
                        body()
                    except Exception:
                        n[0] += 1
        except ctx.DeadlineExceeded:
            out.append(time.time() - dl)
            catches.append(n[0])
    out.sort()
    return (out[len(out) // 2] * 1e3, out[int(len(out) * 0.99) - 1] * 1e3,
            statistics.median(catches))


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cycle_requests(n):
    """Requests whose context is in reference cycles: a value that refers to
    its own context, a cause whose traceback holds the context's frame."""
    for i in range(n):
        c, cancel = ctx.with_cancel_cause(ctx.background())
        holder = {"payload": bytearray(512)}
        c = ctx.with_value(c, "holder", holder)
        holder["ctx"] = c
        try:
            raise ValueError("request %d failed" % i)
        except Exception as e:
            cancel(e)


def cycle_rss_growth_mb(n=50_000):
    """Resident memory gained over n cycle_requests, after a warm-up."""
    import gc
    cycle_requests(5_000)
    gc.collect()
    before = _rss_mb()
    cycle_requests(n)
    gc.collect()
    return _rss_mb() - before


def run_process_kill_latency(samples=20):
    lat = []
    for _ in range(samples):
        with ctx.timeout(0.05) as c:
            try:
                ctx.run_process(["sleep", "10"])
            except ctx.DeadlineExceeded:
                lat.append(time.time() - c.deadline())
    lat.sort()
    return lat[len(lat) // 2] * 1e6


def main():
    rows = {}
    peers = {}
    got = interleaved([
        ("ctx_timeout_scope_ns", ctx_scope, 100_000),
        ("ctx_timeout_scope_async_ns", ctx_scope_async, 50_000),
        ("asyncio.timeout", asyncio_timeout, 50_000),
        ("trio.move_on_after", trio_move_on, 30_000),
        ("anyio.move_on_after", anyio_move_on, 30_000),
        ("stopit.ThreadingTimeout", stopit_timeout, 1_000),
        ("threading.Timer+Event", timer_event, 1_000)])
    rows["ctx_timeout_scope_ns"] = got.pop("ctx_timeout_scope_ns")
    rows["ctx_timeout_scope_async_ns"] = got.pop("ctx_timeout_scope_async_ns")
    peers.update(got)
    rows["with_timeout_cancel_ns"] = best_of(with_timeout_cancel, 200_000)
    rows["done_check_ns"] = best_of(done_check, 1_000_000)
    rows["value_depth10_ns"] = best_of(value_depth10, 1_000_000)
    if hasattr(ctx, "run_process"):
        p50, p99 = interrupt_latency()
        rows["interrupt_latency_p50_us"] = p50
        rows["interrupt_latency_p99_us"] = p99
        b50, b99 = setitimer_latency()
        rows["baseline_sigalrm_latency_p50_us"] = b50
        rows["baseline_sigalrm_latency_p99_us"] = b99
        rows["run_process_kill_latency_p50_us"] = run_process_kill_latency()
        for name, body in (("busy", _swallow_busy), ("sleep", _swallow_sleep)):
            p50, p99, caught = swallowed_stop(body)
            rows["swallowed_%s_exit_p50_ms" % name] = p50
            rows["swallowed_%s_exit_p99_ms" % name] = p99
            rows["swallowed_%s_catches" % name] = caught
    if os.path.exists("/proc/self/statm"):
        rows["cycle_rss_growth_50k_mb"] = cycle_rss_growth_mb()

    scope = rows["ctx_timeout_scope_ns"]
    print("\nPython binding: one timeout scope that never fires (ns/op, median of %d)" % REPS)
    print("%-28s %12s %12s" % ("peer", "ns/op", "ctx/peer"))
    print("%-28s %12.0f %12s" % ("ctx.timeout (with)", scope, "-"))
    print("%-28s %12.0f %12s" % ("ctx.timeout (async with)", rows["ctx_timeout_scope_async_ns"], "-"))
    for name, v in peers.items():
        print("%-28s %12s %12s" % (name, "n/a" if v is None else "%.0f" % v,
                                   "n/a" if v is None else "%.3f" % (scope / v)))
    print("\n%-34s %12s" % ("ctx operation", "value"))
    for k, v in rows.items():
        if k.startswith("ctx_timeout_scope"):
            continue
        print("%-34s %12.1f" % (k, v))
    checks = [("scope <= 0.1x asyncio.timeout", scope <= 0.1 * peers["asyncio.timeout"])]
    if peers.get("trio.move_on_after"):
        checks.append(("scope <= 0.1x trio.move_on_after", scope <= 0.1 * peers["trio.move_on_after"]))
    if "interrupt_latency_p99_us" in rows:
        checks.append(("interrupt latency p99 <= 10 ms", rows["interrupt_latency_p99_us"] <= 10_000))
    print()
    for name, ok in checks:
        print("target %-36s %s" % (name, "met" if ok else "MISSED"))
    out = os.path.join(os.path.dirname(__file__), "..", "..", "build", "bench-python.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"python": rows, "peers": peers}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
