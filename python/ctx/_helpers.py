# _helpers.py — helpers for scripted workflows: run_process (a subprocess that
# dies with its context) and on_signal (Go's signal.NotifyContext as a scope).
import os
import select
import signal
import subprocess
import threading
import time
from typing import Any, Dict, Optional

from . import _ctx


_current_or = _ctx._context_or_current  # c, or ctx.current() for None; TypeError else


def _open_pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,no-any-return]
    except (AttributeError, OSError):
        return -1


def _signal_group(p: subprocess.Popen, own_group: bool, sig: int) -> None:
    try:
        if own_group:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exited_within(p: subprocess.Popen, pidfd: int, seconds: float) -> bool:
    if p.poll() is not None:
        return True
    if pidfd >= 0:
        select.select([pidfd], [], [], max(seconds, 0))
        return p.poll() is not None
    try:
        p.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _terminate(p: subprocess.Popen, own_group: bool, pidfd: int, grace: float) -> None:
    """SIGTERM to the child's group, SIGKILL after grace seconds, then reap."""
    if p.poll() is None:
        _signal_group(p, own_group, signal.SIGTERM)
        if not _exited_within(p, pidfd, grace):
            _signal_group(p, own_group, signal.SIGKILL)
    elif own_group:
        _signal_group(p, own_group, signal.SIGKILL)  # stragglers of the group
    p.wait()


def run_process(args: Any, c: Any = None, *, grace: float = 1.0,
                **popen_kwargs: Any) -> "subprocess.CompletedProcess[Any]":
    """Like subprocess.run; when c ends, the child's process group gets SIGTERM,
    then SIGKILL after `grace` seconds, is reaped, and c.err() is raised."""
    c = _current_or(c)
    # checked now, not when c ends: a bad grace would then leave the child alive
    if isinstance(grace, bool) or not isinstance(grace, (int, float)):
        raise TypeError("grace must be int or float, not %s" % type(grace).__name__)
    if grace != grace:
        raise ValueError("grace must not be NaN")
    c.check()  # already done: run nothing
    kw: Dict[str, Any] = dict(popen_kwargs)
    inp = kw.pop("input", None)
    check = kw.pop("check", False)
    limit: Optional[float] = kw.pop("timeout", None)
    if kw.pop("capture_output", False):
        if "stdout" in kw or "stderr" in kw:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
    if inp is not None:
        if "stdin" in kw:
            raise ValueError("stdin and input arguments may not both be used.")
        kw["stdin"] = subprocess.PIPE
    own_group = not kw.get("start_new_session") and "process_group" not in kw
    if own_group:
        kw["start_new_session"] = True
    own_group = own_group or bool(kw.get("start_new_session")) or kw.get("process_group") == 0
    pipes = any(kw.get(k) == subprocess.PIPE for k in ("stdin", "stdout", "stderr"))
    result: Dict[str, Any] = {}
    with subprocess.Popen(args, **kw) as p:
        pidfd = _open_pidfd(p.pid)
        comm = None
        try:
            if pipes:
                def communicate() -> None:
                    try:
                        result["out"] = p.communicate(inp)
                    except BaseException as e:  # reported to the caller below
                        result["exc"] = e
                comm = threading.Thread(target=communicate, name="ctx-run-process", daemon=True)
                comm.start()
            waited = 0.0
            while True:
                step = None if pidfd >= 0 else 0.005
                if limit is not None:
                    step = max(limit - waited, 0) if step is None else min(step, max(limit - waited, 0))
                start = time.monotonic()
                r = _ctx._wait_fd(c, pidfd, step)
                waited += time.monotonic() - start
                if r == "fd" or p.poll() is not None:
                    break
                if r == "done":
                    _terminate(p, own_group, pidfd, grace)
                    if comm is not None:
                        comm.join()
                    c.check()
                if limit is not None and waited >= limit:
                    _terminate(p, own_group, pidfd, grace)
                    raise subprocess.TimeoutExpired(args, limit)
            if comm is not None:
                comm.join()
                if "exc" in result:
                    raise result["exc"]
            p.wait()
        except BaseException:
            _terminate(p, own_group, pidfd, grace)
            if comm is not None:
                comm.join(grace + 1)
            raise
        finally:
            if pidfd >= 0:
                os.close(pidfd)
    out, err = result.get("out", (None, None))
    cp = subprocess.CompletedProcess(args, p.returncode, out, err)
    if check:
        cp.check_returncode()
    return cp


class on_signal:
    """Go's signal.NotifyContext as a scope: the context is canceled, with
    cause SignalReceived(signum), when one of the signals arrives."""

    def __init__(self, *signums: int, parent: Any = None) -> None:
        self._signums = tuple(int(s) for s in signums) or (signal.SIGINT, signal.SIGTERM)
        self._proto = _ctx.scope(parent)
        self._scope: Any = None
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> Any:
        from . import SignalReceived
        if self._scope is not None:
            raise RuntimeError("this on_signal scope is already active")
        self._scope = self._proto._clone()
        c = self._scope.__enter__()

        def handler(signum: int, frame: Any) -> None:
            c.cancel(SignalReceived(signum))
            _ctx._interrupt_check()  # an interrupting scope inside stops now

        try:
            for s in self._signums:
                self._old[s] = signal.signal(s, handler)
        except BaseException as e:
            self._restore()
            scope, self._scope = self._scope, None
            scope.__exit__(type(e), e, e.__traceback__)
            raise
        return c

    def _restore(self) -> None:
        for s, old in self._old.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        self._old = {}

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        self._restore()
        scope, self._scope = self._scope, None
        return bool(scope.__exit__(et, ev, tb))
