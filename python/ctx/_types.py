# _types.py — the public types, each defined once: the C types of ctx._ctx
# extended by Python subclasses (asyncio, decorators), registered with the module.
import asyncio
import functools
import inspect
import sys
from typing import Any, Callable, cast

from . import _ctx

__all__ = ["Context", "ScopeContext", "Scope", "shield"]

# the library's own callbacks: a slow user after_func cannot delay them
_after_func = _ctx._after_func_internal


class Context(_ctx.Context):
    """A context: cancelation, deadline and values (see ctx.with_cancel).

    Made by the ctx functions, never instantiated directly."""

    __module__ = "ctx"
    __slots__ = ()

    async def wait_async(self) -> None:
        """Returns once the context is done (asyncio)."""
        if self.done():
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        def on_done() -> None:  # on ctx's callback thread
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop is closed
                pass

        stop = _after_func(self, on_done)
        try:
            await fut
        finally:
            stop()


class ScopeContext(_ctx.ScopeContext, Context):
    """The Context a scope made and `with ctx.timeout(...) as c` binds: a
    Context that also has cancel(cause=None), which ends the scope early."""

    __module__ = "ctx"
    __slots__ = ()


class _AsyncState:
    __slots__ = ("loop", "task", "fired", "stop")

    def __init__(self, loop: Any, task: Any) -> None:
        self.loop = loop
        self.task = task
        self.fired = False
        self.stop: Any = None


def _wrap(manager: Any, fn: Callable[..., Any], what: str) -> Callable[..., Any]:
    """The decorator of scopes and shields: `manager._clone()` gives each call
    (each generator, each coroutine) a manager of its own."""
    if not callable(fn):  # bad input raises at once, not at the first call
        raise TypeError("%s decorates a callable, not %s" % (what, type(fn).__name__))
    if inspect.isasyncgenfunction(fn):
        # an async generator's steps are awaited by its consumer: a scope
        # around it cannot follow them; write `async with` inside it
        raise TypeError("%s cannot decorate an async generator function (%s); "
                        "use `async with` inside it" % (what, fn.__qualname__))
    if inspect.iscoroutinefunction(fn):
        if getattr(manager, "interrupt", False):
            raise ValueError("interrupt=True is for threads; a coroutine's scope cancels its task")

        if isinstance(manager, _ctx.Shield):
            # a plain `with` in the coroutine's own frame: it shields the
            # coroutine's steps, not what runs while it awaits
            @functools.wraps(fn)
            async def swrapper(*args: Any, **kwargs: Any) -> Any:
                with cast(Any, manager)._clone():
                    return await fn(*args, **kwargs)
            return swrapper

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            async with manager._clone():
                return await fn(*args, **kwargs)
        return awrapper
    if inspect.isgeneratorfunction(fn):
        # one scope for the generator's life, entered at its first step; the
        # wrapper is a generator itself, so the scope is current (and
        # interrupts) only while a step runs, never in the caller
        @functools.wraps(fn)
        def gwrapper(*args: Any, **kwargs: Any) -> Any:
            with manager._clone():
                return (yield from fn(*args, **kwargs))
        return gwrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with manager._clone():
            return fn(*args, **kwargs)
    return wrapper


class Scope(_ctx.Scope):
    """A scope: `with`, `async with` or a decorator; see ctx.timeout."""

    __module__ = "ctx"
    __slots__ = ()

    async def __aenter__(self) -> ScopeContext:
        if self.interrupt:
            # tasks share their thread: `async with` cancels the task instead
            raise ValueError("interrupt=True is for threads; async with cancels the task")
        c = self._enter_at(sys._getframe(1))
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            return cast(ScopeContext, c)
        st = _AsyncState(loop, task)

        def fire() -> None:  # on the loop's thread
            if self._aux is not st or task.done():
                return
            if self._suspended:
                # an async generator's scope, at a yield: its consumer runs
                # now; cancel once the generator is in a step again
                loop.call_later(0.01, fire)
                return
            st.fired = True
            task.cancel()

        def on_done() -> None:  # on ctx's callback thread
            try:
                loop.call_soon_threadsafe(fire)
            except RuntimeError:  # the loop is closed: nothing left to cancel
                pass

        self._aux = st
        st.stop = _after_func(c, on_done)
        return cast(ScopeContext, c)

    async def __aexit__(self, et: Any, ev: Any, tb: Any) -> bool:
        st = self._aux
        self._aux = None
        c = self.context
        if st is not None:
            st.stop()
        self.__exit__(et, ev, tb)
        if st is not None and st.fired:
            uncancel = getattr(st.task, "uncancel", None)
            remaining = uncancel() if uncancel is not None else 0
            if et is not None and issubclass(et, asyncio.CancelledError) and remaining == 0:
                err = c.err() if c is not None else None
                assert err is not None  # the scope's own stop fired: c is done
                err.__traceback__ = None
                if err.__cause__ is None:
                    raise err from None
                raise err
        return False

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: each call runs in a fresh scope (a generator: one scope
        for its life, current only during its steps)."""
        return _wrap(self, fn, "a scope")


class shield(_ctx.Shield):
    """``with ctx.shield():`` — no interrupt is raised inside; a stop that
    falls due meanwhile is raised as the block exits, if its scope is still
    active. Also a decorator. Use it for cleanup that must run to its end:
    releasing a lock, closing a file, the body of __exit__ or finally."""

    __module__ = "ctx"
    __slots__ = ()

    def _clone(self) -> "shield":
        return shield()

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return _wrap(self, fn, "shield()")


_ctx._register_types(Context, ScopeContext, Scope)
