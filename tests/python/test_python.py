# test_python.py — Python-specific behaviour: argument checking, times, scopes
# (threads, asyncio tasks, decorators), waits, signals, threads, memory, fork, exit.
import asyncio
import datetime
import gc
import math
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import ctx

BG = ctx.background()
HERE = os.path.dirname(os.path.abspath(__file__))
# where this run imported ctx from (the in-place build, or the portable one)
PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(ctx.__file__)))


def run_py(code, timeout=30, **kw):
    env = dict(os.environ, PYTHONPATH=PYPATH)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


# ---- bad input ----

BAD_PARENTS = [None, 1, "ctx", object(), ctx.with_cancel]


@pytest.mark.parametrize("bad", BAD_PARENTS)
def test_non_context_parent_raises_type_error(bad):
    calls = [
        lambda: ctx.with_cancel(bad), lambda: ctx.with_cancel_cause(bad),
        lambda: ctx.with_deadline(bad, time.time()), lambda: ctx.with_timeout(bad, 1),
        lambda: ctx.with_deadline_cause(bad, time.time(), ValueError()),
        lambda: ctx.with_timeout_cause(bad, 1, ValueError()),
        lambda: ctx.with_value(bad, "k", "v"), lambda: ctx.without_cancel(bad),
        lambda: ctx.after_func(bad, print), lambda: ctx.cause(bad),
        lambda: ctx.scope(bad), lambda: ctx.timeout(1, bad), lambda: ctx.deadline(1.0, bad),
    ]
    if bad is None:
        calls = calls[:-3]  # parent=None means current() for scopes
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_bad_arguments():
    with pytest.raises(TypeError):
        ctx.Context()
    with pytest.raises(TypeError):
        ctx.ScopeContext()
    with pytest.raises(TypeError):
        ctx.with_value(BG, None, 1)
    with pytest.raises(TypeError):
        ctx.with_value(BG, [1], 1)
    with pytest.raises(TypeError):
        ctx.with_value(BG, {}, 1)
    with pytest.raises(TypeError):
        ctx.with_timeout_cause(BG, 1, "not an exception")
    with pytest.raises(TypeError):
        ctx.with_deadline_cause(BG, time.time(), ValueError)  # a class, not an instance
    c, cancel = ctx.with_cancel_cause(BG)
    with pytest.raises(TypeError):
        cancel("nope")
    assert not c.done()
    with pytest.raises(TypeError):
        ctx.after_func(c, "not callable")
    with pytest.raises(ValueError):
        ctx.with_timeout(BG, float("nan"))
    with pytest.raises(ValueError):
        ctx.with_deadline(BG, math.nan)
    with pytest.raises(ValueError):
        ctx.timeout(float("nan"))
    with pytest.raises(TypeError):
        ctx.with_timeout(BG, "1")
    with pytest.raises(TypeError):
        ctx.with_deadline(BG, datetime.timedelta(1))
    with pytest.raises(TypeError):
        ctx.timeout(None)
    with pytest.raises(TypeError):
        ctx.with_cancel()
    with pytest.raises(TypeError):
        ctx.with_cancel(BG, BG)
    with pytest.raises(TypeError):
        ctx.timeout(1, nope=1)
    with pytest.raises(TypeError):
        c.value()
    with pytest.raises(TypeError):
        c.value([])
    with pytest.raises(TypeError):
        c.value(None)  # None is never a key (SPEC 2: a None key raises TypeError)
    cancel(None)
    with pytest.raises(TypeError):
        ctx.with_cancel(BG)[1](ValueError())  # plain cancel takes no cause


def test_fuzz_nothing_crashes():
    import random
    rnd = random.Random(1)
    junk = [None, 0, -1, 1.5, float("inf"), float("nan"), "", "x", b"x", [], {}, (),
            object(), BG, ValueError("e"), ValueError, print, datetime.timedelta(1),
            datetime.datetime.now(), 10 ** 30, True]
    fns = [ctx.with_cancel, ctx.with_cancel_cause, ctx.with_deadline, ctx.with_timeout,
           ctx.with_deadline_cause, ctx.with_timeout_cause, ctx.with_value,
           ctx.without_cancel, ctx.after_func, ctx.cause, ctx.scope, ctx.timeout,
           ctx.deadline, ctx.sleep, BG.value, BG.wait]
    for _ in range(3000):
        fn = rnd.choice(fns)
        args = [rnd.choice(junk) for _ in range(rnd.randint(0, 4))]
        if fn in (ctx.sleep, BG.wait):
            args = [0] + args[1:]  # never block on background
        try:
            r = fn(*args)
            if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], ctx.Context):
                r[1]()
        except (TypeError, ValueError, OverflowError, ctx.ContextError):
            pass


# ---- times ----

def test_times_accept_datetime_and_timedelta():
    c, cancel = ctx.with_timeout(BG, datetime.timedelta(seconds=100))
    assert 99 < c.remaining() <= 100
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=50)
    c, cancel = ctx.with_deadline(BG, when)
    assert abs(c.deadline() - when.timestamp()) < 1e-6
    naive = datetime.datetime.now() + datetime.timedelta(seconds=50)  # local time
    c, cancel = ctx.with_deadline(BG, naive)
    assert abs(c.deadline() - naive.timestamp()) < 1e-6
    c, cancel = ctx.with_timeout(BG, 10)  # int seconds
    assert 9 < c.remaining() <= 10
    with ctx.deadline(time.time() + 30) as s:
        assert 29 < s.remaining() <= 30
    with ctx.timeout(datetime.timedelta(minutes=1)) as s:
        assert 59 < s.remaining() <= 60


# ---- Context objects ----

def test_context_object_api():
    c, cancel = ctx.with_cancel(BG)
    assert weakref.ref(c)() is c
    assert c.wait(0) is False and c.wait(0.01) is False
    assert c.check() is None
    cancel()
    assert c.wait() is True and c.wait(0) is True
    e = c.err()
    assert e is c.err()
    for _ in range(3):
        with pytest.raises(ctx.Canceled) as info:
            c.check()
        assert info.value is e
    assert issubclass(ctx.Canceled, ctx.ContextError) and issubclass(ctx.ContextError, Exception)
    assert issubclass(ctx.DeadlineExceeded, TimeoutError)
    assert "WithCancel" in repr(c)
    assert str(ctx.Canceled()) == "context canceled"
    assert str(ctx.DeadlineExceeded()) == "context deadline exceeded"


def test_check_sets_cause():
    c, cancel = ctx.with_cancel_cause(BG)
    why = KeyError("why")
    cancel(why)
    with pytest.raises(ctx.Canceled) as info:
        c.check()
    assert info.value.__cause__ is why


def test_fileno_select():
    c, cancel = ctx.with_cancel(BG)
    fd = c.fileno()
    assert fd == c.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    threading.Timer(0.02, cancel).start()
    r, _, _ = select.select([fd], [], [], 5)
    assert r == [fd]
    assert select.select([fd], [], [], 0)[0] == [fd]  # stays readable
    v = ctx.with_value(c, "k", 1)
    assert select.select([v.fileno()], [], [], 0)[0]


def test_fileno_asyncio_reader_and_wait_async():
    async def main():
        c, cancel = ctx.with_timeout(BG, 0.03)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.add_reader(c.fileno(), lambda: fut.done() or fut.set_result(True))
        assert await asyncio.wait_for(fut, 5)
        loop.remove_reader(c.fileno())
        d, dcancel = ctx.with_cancel(BG)
        loop.call_later(0.02, dcancel)
        await asyncio.wait_for(d.wait_async(), 5)
        assert d.done()
        await d.wait_async()  # already done: returns at once
    asyncio.run(main())


def test_wait_releases_gil_and_wakes_fast():
    c, cancel = ctx.with_cancel(BG)
    lat = []

    def waiter():
        c.wait()
        lat.append(time.perf_counter())

    t = threading.Thread(target=waiter)
    t.start()
    n = 0
    t_end = time.perf_counter() + 0.05
    while time.perf_counter() < t_end:
        n += 1  # this thread runs: the waiter released the GIL
    t0 = time.perf_counter()
    cancel()
    t.join(5)
    assert lat and lat[0] - t0 < 0.02
    assert n > 1000


def test_wait_ctrl_c():
    r = run_py("""
        import ctx, os, signal, threading, time, sys
        c, cancel = ctx.with_cancel(ctx.background())
        def kick():
            time.sleep(0.3)
            global t0
            t0 = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=kick, daemon=True).start()
        try:
            c.wait()
        except KeyboardInterrupt:
            print("KI %.3f" % (time.monotonic() - t0))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("KI ")
    assert float(r.stdout.split()[1]) < 0.1


def test_after_func_exception_goes_to_unraisablehook():
    seen = []
    ev = threading.Event()
    old = sys.unraisablehook

    def hook(u):
        seen.append(u.exc_value)
        ev.set()

    sys.unraisablehook = hook
    try:
        c, cancel = ctx.with_cancel(BG)

        def bad():
            raise ZeroDivisionError("in callback")

        ctx.after_func(c, bad)
        cancel()
        assert ev.wait(5)
        assert isinstance(seen[0], ZeroDivisionError)
        ok = threading.Event()
        ctx.after_func(c, ok.set)  # the dispatcher survived
        assert ok.wait(5)
    finally:
        sys.unraisablehook = old


# ---- scopes ----

def test_scope_basics():
    assert ctx.current() is BG
    with ctx.scope() as s:
        assert ctx.current() is s
        assert isinstance(s, ctx.Context) and not s.done()
        with ctx.timeout(100) as t:
            assert ctx.current() is t and str(t).startswith("context.Background.WithCancel.WithDeadline(")
            inner, _ = ctx.with_cancel(ctx.current())
        assert t.done() and inner.done() and isinstance(t.err(), ctx.Canceled)
        assert ctx.current() is s
    assert s.done() and ctx.current() is BG
    p, pcancel = ctx.with_cancel(BG)
    with ctx.scope(parent=p) as s:
        assert str(s) == "context.Background.WithCancel.WithCancel"
        pcancel()
        assert s.done()


def test_scope_cancel_method_and_exceptions_pass():
    with pytest.raises(KeyError):
        with ctx.scope() as s:
            s.cancel(ValueError("mine"))
            assert s.done() and str(s.cause()) == "mine"
            raise KeyError("through")
    with pytest.raises(TypeError):
        with ctx.scope() as s:
            s.cancel("bad")
    sc = ctx.scope()
    with sc:
        with pytest.raises(RuntimeError):
            sc.__enter__()
    with sc:  # reusable once exited: a fresh context
        assert not ctx.current().done()


def test_timeout_scope_expires():
    with ctx.timeout(0.02) as s:
        with pytest.raises(ctx.DeadlineExceeded):
            ctx.sleep(5)
        assert s.done()
    with ctx.timeout(0) as s:
        assert s.done()


def test_scopes_per_thread():
    seen = {}
    with ctx.scope() as main_scope:
        def worker():
            seen["start"] = ctx.current()
            with ctx.timeout(10) as s:
                seen["inner"] = (ctx.current() is s)
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert ctx.current() is main_scope
    assert seen["start"] is BG and seen["inner"]


def test_scopes_per_task():
    async def task(name, out):
        with ctx.scope() as s:
            await asyncio.sleep(0.01)
            out[name] = ctx.current() is s

    async def main():
        out = {}
        await asyncio.gather(*(task(i, out) for i in range(5)))
        return out

    assert all(asyncio.run(main()).values())


def test_async_with_cancels_task():
    async def main():
        t0 = time.monotonic()
        with pytest.raises(ctx.DeadlineExceeded):
            async with ctx.timeout(0.03) as s:
                assert ctx.current() is s
                await asyncio.sleep(10)
        assert time.monotonic() - t0 < 1
        # canceled by hand, with a cause
        with pytest.raises(ctx.Canceled) as info:
            async with ctx.scope() as s:
                asyncio.get_running_loop().call_later(0.01, s.cancel, ValueError("stop"))
                await asyncio.sleep(10)
        assert str(info.value.__cause__) == "stop"
        # nothing fires after a normal exit, and outer cancellation still works
        async with ctx.timeout(0.01):
            pass
        await asyncio.sleep(0.03)
        task = asyncio.current_task()
        assert not task.cancelling()
        with pytest.raises(asyncio.CancelledError):
            inner = asyncio.ensure_future(asyncio.sleep(10))
            async def canceller():
                await asyncio.sleep(0.01)
                inner.cancel()
            asyncio.ensure_future(canceller())
            async with ctx.timeout(10):
                await inner
    asyncio.run(main())


def test_decorators():
    calls = []

    @ctx.timeout(0.05)
    def slow(n):
        calls.append(ctx.current())
        ctx.sleep(n)
        return n

    assert slow(0) == 0
    with pytest.raises(ctx.DeadlineExceeded):
        slow(5)
    assert calls[0] is not calls[1] and calls[0].done()
    assert slow.__name__ == "slow"

    @ctx.timeout(0.03)
    async def aslow():
        await asyncio.sleep(5)

    with pytest.raises(ctx.DeadlineExceeded):
        asyncio.run(aslow())

    @ctx.scope()
    def plain():
        return ctx.current()

    assert plain() is not BG


# ---- threads, memory, fork, exit ----

def test_stress_8_threads():
    root, rcancel = ctx.with_cancel(BG)
    stop_at = time.monotonic() + 1.5
    errors = []
    counter = [0]

    def work(seed):
        import random
        rnd = random.Random(seed)
        mine = [root]
        try:
            while time.monotonic() < stop_at:
                op = rnd.randrange(7)
                p = rnd.choice(mine)
                if op == 0:
                    mine.append(ctx.with_cancel(p)[0])
                elif op == 1:
                    c, cancel = ctx.with_timeout(p, rnd.random() * 0.01)
                    mine.append(c)
                elif op == 2:
                    c, cancel = ctx.with_cancel_cause(p)
                    cancel(ValueError(seed))
                elif op == 3:
                    ctx.after_func(p, lambda: counter.__setitem__(0, counter[0] + 1))
                elif op == 4:
                    p.wait(0.001)
                elif op == 5:
                    with ctx.timeout(0.001, parent=p) as s:
                        s.wait(0.002)
                else:
                    mine.append(ctx.with_value(p, seed, op))
                if len(mine) > 50:
                    del mine[1:25]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not any(t.is_alive() for t in ts)
    rcancel()
    assert not errors


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_dropped_contexts_do_not_leak():
    root, rcancel = ctx.with_cancel(BG)
    for _ in range(20000):
        ctx.with_cancel(root)
    gc.collect()
    base = rss_mb()
    for i in range(800_000):
        if i & 1:
            ctx.with_timeout(root, 3600)
        else:
            ctx.with_value(ctx.with_cancel(root)[0], "k", i)
    gc.collect()
    assert ctx._ctx._num_children(root) == 0
    assert rss_mb() - base < 40
    rcancel()


def test_fork_child_uses_deadlines():
    c, cancel = ctx.with_timeout(BG, 0.05)  # the timer thread is running
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            d, _ = ctx.with_timeout(BG, 0.02)
            ok = d.wait(5) and c.wait(5)
            ev = threading.Event()
            ctx.after_func(d, ev.set)
            code = 0 if ok and ev.wait(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.wait(5)


def test_interpreter_exit_is_clean():
    r = run_py("""
        import ctx, threading
        bg = ctx.background()
        keep = []
        for i in range(5000):
            c, cancel = ctx.with_timeout(bg, 0.001 * (i % 50))
            keep.append((c, cancel))
            ctx.after_func(c, lambda: sum(range(100)))
        for i in range(2000):
            c, cancel = ctx.with_timeout(bg, 3600)
            ctx.after_func(c, print)
            keep.append(ctx.with_value(c, i, object()))
        print("bye")
    """)
    assert r.returncode == 0 and r.stdout == "bye\n" and r.stderr == ""
