# ctx — Go's context for Python: cancelation, deadlines and values as a tree,
# with scopes (`with ctx.timeout(5):`) bound to the current thread or task.
"""Go's ``context`` for Python.

Go-shaped functions (``with_cancel``, ``with_timeout``, ...), the ``Context``
type, and scopes: ``with ctx.timeout(5) as c: ...`` binds ``c`` as
``ctx.current()`` for the block and cancels it on exit.

Times are int, float or timedelta seconds (datetime for deadlines); a bool is
refused with TypeError (``timeout(True)`` is a misplaced flag, not one second),
NaN with ValueError; ints beyond a float saturate like huge floats (no
deadline, or already passed). ``None`` is never a key: ``with_value`` and
``value`` both raise TypeError for it.
"""
import atexit as _atexit
import datetime as _datetime
import os as _os
from typing import Union as _Union

from ._ctx import (  # noqa: F401  (re-exported)
    Canceled,
    ContextError,
    DeadlineExceeded,
    after_func,
    background,
    cause,
    current,
    deadline,
    scope,
    sleep,
    timeout,
    todo,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_deadline_cause,
    with_timeout,
    with_timeout_cause,
    with_value,
    without_cancel,
    __version__,
)
from . import _ctx

# the types of the callables that with_* and after_func return
CancelFunc = CancelCauseFunc = _ctx.CancelFunc
StopFunc = _ctx.StopFunc
# what the time arguments accept, for annotations (see the module docstring)
Seconds = _Union[int, float, _datetime.timedelta]
When = _Union[int, float, _datetime.datetime]
from ._types import Context, Scope, ScopeContext, shield  # noqa: F401
from ._helpers import on_signal, run_process  # noqa: F401

__all__ = [
    "CancelCauseFunc", "CancelFunc", "StopFunc", "Canceled", "Context", "ContextError", "DeadlineExceeded", "Scope", "ScopeContext",
    "SignalReceived", "after_func", "background", "cause", "current", "deadline",
    "scope", "sleep", "timeout", "todo", "with_cancel", "with_cancel_cause",
    "with_deadline", "with_deadline_cause", "with_timeout", "with_timeout_cause",
    "with_value", "without_cancel", "on_signal", "run_process", "Seconds", "When",
    "shield",
]


class SignalReceived(Exception):
    """The cause recorded by ``ctx.on_signal`` (and ``python -m ctx``) when
    one of its signals arrives: ``signum`` is the signal's number, ``str()``
    reads ``received signal SIGINT``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        import signal
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = str(self.signum)
        return f"received signal {name}"


def _default_message(cls: type, message: str) -> None:
    # Canceled() made by hand reads like the ones contexts report
    def __str__(self: BaseException) -> str:
        return Exception.__str__(self) or message
    cls.__str__ = __str__  # type: ignore[assignment]


_default_message(Canceled, "context canceled")
_default_message(DeadlineExceeded, "context deadline exceeded")
# From interpreter exit on, objects the core drops are leaked, not touched.
_atexit.register(_ctx._shutdown)
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_ctx._after_fork_child)
