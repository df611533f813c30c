# test_generators.py — issue 9: scopes inside generators and async generators
# stay theirs (ctx.current(), interrupts), and decorating generator functions.
import asyncio
import contextlib
import gc
import threading
import time
import weakref

import pytest

import ctx

BG = ctx.background()


def test_generator_scope_is_not_its_callers_current():
    seen = []

    def gen():
        with ctx.timeout(0.05) as c:
            seen.append(ctx.current() is c)
            yield 1
            seen.append(ctx.current() is c)  # its own again once resumed
            yield 2

    g = gen()
    assert next(g) == 1
    assert ctx.current() is BG
    time.sleep(0.1)  # the generator's deadline passes while it is suspended
    with ctx.timeout(10) as mine:  # not a child of the generator's ended scope
        assert not mine.done() and ctx.current() is mine
        assert str(mine).startswith("context.Background.WithDeadline(")
    assert next(g) == 2
    assert seen == [True, True]
    g.close()
    assert ctx.current() is BG


def test_generator_resumed_inside_a_later_scope_sees_its_own():
    def gen():
        with ctx.scope() as c:
            while True:
                yield ctx.current() is c, c

    g = gen()
    own, c = next(g)
    assert own
    with ctx.scope() as later:
        own, c2 = next(g)  # resumed under the caller's newer scope
        assert own and c2 is c
        assert ctx.current() is later
    assert ctx.current() is BG
    g.close()
    assert c.done()


def test_generator_exiting_under_a_later_scope_leaves_it_current():
    def gen():
        with ctx.scope():
            yield
        yield "out"

    g = gen()
    next(g)
    with ctx.scope() as later:
        assert next(g) == "out"  # the generator's scope exits here
        assert ctx.current() is later
        with ctx.scope() as inner:
            assert ctx.current() is inner
        assert ctx.current() is later
    assert ctx.current() is BG


def test_generators_in_a_thread_and_for_loops():
    out = []

    def gen(n):
        with ctx.timeout(100) as c:
            for i in range(n):
                yield ctx.current() is c

    def work():
        with ctx.scope() as mine:
            for own in gen(3):
                out.append((own, ctx.current() is mine))
        out.append(ctx.current() is BG)

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert out == [(True, True)] * 3 + [True]


def test_async_generator_scope_is_not_its_consumers_current():
    async def agen():
        with ctx.timeout(0.05) as c:  # a plain with, in an async generator
            yield ctx.current() is c
            yield ctx.current() is c
        async with ctx.timeout(10) as d:
            yield ctx.current() is d

    async def main():
        seen = []
        async with ctx.scope() as mine:
            async for own in agen():
                seen.append((own, ctx.current() is mine))
                await asyncio.sleep(0.06)
                with ctx.timeout(10) as t:
                    assert not t.done()
        return seen

    assert asyncio.run(main()) == [(True, True)] * 3


def test_async_with_in_suspended_async_generator_does_not_cancel_its_consumer():
    async def agen():
        async with ctx.timeout(0.05):
            yield 1
            await asyncio.sleep(10)  # canceled here, in the generator's own step
            yield 2

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        await asyncio.sleep(0.15)  # its deadline passes: the consumer runs on
        t0 = time.monotonic()
        with pytest.raises(ctx.DeadlineExceeded):
            await g.__anext__()
        return time.monotonic() - t0

    assert asyncio.run(main()) < 2


def test_contextmanager_generator_wraps_the_callers_block():
    @contextlib.contextmanager
    def deadline(seconds):
        with ctx.timeout(seconds) as c:
            yield c

    with deadline(5) as c:
        assert ctx.current() is c
        with ctx.scope() as inner:
            assert "WithDeadline" in str(inner)
    assert ctx.current() is BG and c.done()

    @contextlib.asynccontextmanager
    async def adeadline(seconds):
        async with ctx.timeout(seconds) as c:
            yield c

    async def main():
        async with adeadline(5) as c:
            return ctx.current() is c
    assert asyncio.run(main())


def test_interrupt_scope_in_suspended_generator_never_raises_into_caller():
    def gen():
        with ctx.timeout(0.05, interrupt=True):
            yield
            while True:  # interrupted only here, in its own step
                pass

    g = gen()
    next(g)
    t_end = time.monotonic() + 0.3
    while time.monotonic() < t_end:  # the caller runs past the deadline
        pass
    ctx.sleep(0.05, BG)
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        next(g)
    assert time.monotonic() - t0 < 2


def test_interrupt_scope_in_suspended_generator_in_thread():
    out = []

    def gen():
        with ctx.timeout(0.05, interrupt=True):
            yield
            while True:
                pass

    def work():
        g = gen()
        next(g)
        try:
            t_end = time.monotonic() + 0.3
            while time.monotonic() < t_end:
                pass
            out.append("caller ran")
            next(g)
        except ctx.DeadlineExceeded:
            out.append("generator stopped")

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert out == ["caller ran", "generator stopped"]


def test_suspended_generator_with_interrupt_scope_is_collectable():
    exited = []

    def gen():
        try:
            with ctx.timeout(0.05, interrupt=True):
                yield
        finally:
            exited.append(True)

    g = gen()
    next(g)
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None and exited == [True]
    t_end = time.monotonic() + 0.2
    while time.monotonic() < t_end:  # nothing left to fire on this thread
        pass


def test_decorated_generator_function_scopes_each_step():
    @ctx.timeout(100)
    def gen(n):
        for _ in range(n):
            yield ctx.current()

    seen = []
    for c in gen(3):
        seen.append(c)
        assert ctx.current() is BG  # the caller, between steps
    assert seen[0] is not BG and seen[0] is seen[1] is seen[2]  # one scope, its life long
    assert seen[0].done()  # canceled as the generator finished
    assert gen.__name__ == "gen"


def test_decorated_generator_function_with_interrupt():
    @ctx.timeout(0.05, interrupt=True)
    def gen():
        yield 1
        while True:
            pass

    g = gen()
    assert next(g) == 1
    t_end = time.monotonic() + 0.2
    while time.monotonic() < t_end:
        pass  # never interrupted out here
    with pytest.raises(ctx.DeadlineExceeded):
        next(g)


def test_decorated_generator_forwards_send_and_return():
    @ctx.scope()
    def echo():
        got = yield "ready"
        while got != "stop":
            got = yield got.upper()
        return "done"

    g = echo()
    assert next(g) == "ready"
    assert g.send("a") == "A"
    with pytest.raises(StopIteration) as info:
        g.send("stop")
    assert info.value.value == "done"


def test_decorating_async_generator_functions_is_refused_at_once():
    async def agen():
        yield 1

    for scope in (ctx.scope(), ctx.timeout(1), ctx.deadline(time.time() + 1)):
        with pytest.raises(TypeError, match="async generator"):
            scope(agen)
    with pytest.raises(TypeError, match="async generator"):
        ctx.shield()(agen)


def test_interrupt_decorator_on_coroutine_function_refused_at_decoration():
    async def work():
        return 1

    with pytest.raises(ValueError, match="interrupt=True"):
        ctx.timeout(1, interrupt=True)(work)
    with pytest.raises(ValueError, match="interrupt=True"):
        ctx.deadline(time.time() + 1, interrupt=True)(work)
    assert asyncio.run(ctx.timeout(1)(work)()) == 1  # without interrupt: fine
