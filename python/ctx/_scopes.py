# _scopes.py — the Python side of scopes and contexts: `async with` (cancels the
# running asyncio task), decorators, and Context.wait_async().
import asyncio
import functools
import inspect
from typing import Any, Callable


class _AsyncState:
    __slots__ = ("loop", "task", "fired", "stop")

    def __init__(self, loop: Any, task: Any) -> None:
        self.loop = loop
        self.task = task
        self.fired = False
        self.stop: Any = None


def install(_ctx: Any) -> None:
    Scope = _ctx.Scope
    Context = _ctx.Context
    # the library's own callbacks: a slow user after_func cannot delay them
    after_func = _ctx._after_func_internal

    async def __aenter__(self: Any) -> Any:
        if self.interrupt:
            # tasks share their thread: `async with` cancels the task instead
            raise ValueError("interrupt=True is for threads; async with cancels the task")
        c = self.__enter__()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            return c
        st = _AsyncState(loop, task)

        def fire() -> None:  # on the loop's thread
            if self._aux is st and not task.done():
                st.fired = True
                task.cancel()

        def on_done() -> None:  # on the dispatcher thread
            try:
                loop.call_soon_threadsafe(fire)
            except RuntimeError:  # the loop is closed: nothing left to cancel
                pass

        self._aux = st
        st.stop = after_func(c, on_done)
        return c

    async def __aexit__(self: Any, et: Any, ev: Any, tb: Any) -> bool:
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
                err = c.err()
                err.__traceback__ = None
                if err.__cause__ is None:
                    raise err from None
                raise err
        return False

    def __call__(self: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):  # bad input raises at once, not at the first call
            raise TypeError("a scope decorates a callable, not %s" % type(fn).__name__)
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._clone():
                    return await fn(*args, **kwargs)
            return awrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._clone():
                return fn(*args, **kwargs)
        return wrapper

    async def wait_async(self: Any) -> None:
        """Returns once the context is done (asyncio)."""
        if self.done():
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        def on_done() -> None:
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:
                pass

        stop = after_func(self, on_done)
        try:
            await fut
        finally:
            stop()

    Scope.__aenter__ = __aenter__
    Scope.__aexit__ = __aexit__
    Scope.__call__ = __call__
    Context.wait_async = wait_async
