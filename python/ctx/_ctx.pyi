# _ctx.pyi — typing stubs for the C extension ctx._ctx: the public names are
# declared once, in __init__.pyi, and re-exported here; the rest is private.
from typing import Any, Callable, NoReturn, Optional, Sequence, Union, final

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
def _wake(*args: Any) -> None: ...

# run_process: the core's supervision of a child (proc.c)
_PROC_GROUP: int
_PROC_NOREAP: int
_PROC_TERMINAL: int

@final
class _Proc:
    def __new__(cls, pid: int, flags: int) -> _Proc: ...
    def wait(self, c: Context, fds: Sequence[int], timeout: Optional[float], /) -> Union[str, int, None]: ...
    def terminate(self, grace: float, /) -> None: ...
    def close(self) -> None: ...

# python -m ctx (runner.c)
def _watchdog(c: Context, grace: float, msg_deadline: str, msg_cancel: str, /) -> None: ...
def _watchdog_verdict(code: int, msg: str, /) -> None: ...
def _watchdog_disarm() -> None: ...
def _hard_exit(code: int, msg: str, /) -> NoReturn: ...
def _track_child(pid: int, group: bool, /) -> None: ...
def _untrack_child(pid: int, /) -> None: ...
