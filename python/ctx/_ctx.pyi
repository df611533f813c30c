# _ctx.pyi — typing stubs for the C extension ctx._ctx: the public names are
# declared once, in __init__.pyi, and re-exported here; the rest is private.
from typing import Any, Callable, Optional, final

from . import (
    CancelFunc as CancelFunc,
    Canceled as Canceled,
    Context as Context,
    ContextError as ContextError,
    DeadlineExceeded as DeadlineExceeded,
    Scope as Scope,
    ScopeContext as ScopeContext,
    StopFunc as StopFunc,
    __version__ as __version__,
    after_func as after_func,
    background as background,
    cause as cause,
    current as current,
    deadline as deadline,
    scope as scope,
    sleep as sleep,
    timeout as timeout,
    todo as todo,
    with_cancel as with_cancel,
    with_cancel_cause as with_cancel_cause,
    with_deadline as with_deadline,
    with_deadline_cause as with_deadline_cause,
    with_timeout as with_timeout,
    with_timeout_cause as with_timeout_cause,
    with_value as with_value,
    without_cancel as without_cancel,
)

@final
class _Interrupt(BaseException): ...

def _after_fork_child() -> None: ...
def _after_func_internal(c: Context, fn: Callable[[], object]) -> StopFunc: ...
def _dispatch_loop(which: int, /) -> None: ...
def _interrupt_check() -> None: ...
def _num_children(c: Context, /) -> int: ...
def _shutdown() -> None: ...
def _wait_fd(c: Optional[Context], fd: int, timeout: Optional[float], /) -> str: ...
def _wake(*args: Any) -> None: ...
