# _helpers.py — helpers for scripted workflows: run_process (a subprocess that
# dies with its context) and on_signal (Go's signal.NotifyContext as a scope).
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from . import _ctx


_current_or = _ctx._context_or_current  # c, or ctx.current() for None; TypeError else


_TEXT_KEYS = ("text", "universal_newlines", "encoding", "errors")
_CHUNK = 32768


def _check_input(inp: Any, text_mode: bool) -> None:
    """input must be what the pipe takes: caught here, before anything runs
    (a bad one used to leave the child waiting for its stdin for ever)."""
    if inp is None:
        return
    if text_mode:
        if not isinstance(inp, str):
            raise TypeError("input must be str when text=True (or encoding, errors or "
                            "universal_newlines is given), not %s" % type(inp).__name__)
        return
    if isinstance(inp, str):
        raise TypeError("input must be a bytes-like object, not str: pass text=True "
                        "(or an encoding) to give str")
    try:
        memoryview(inp)
    except TypeError:
        raise TypeError("input must be a bytes-like object, not %s"
                        % type(inp).__name__) from None


def _flags(kw: Dict[str, Any]) -> int:
    """The child's process group, from the arguments subprocess.run takes:
    its own group by default (process_group=0: all of it can be ended, and it
    keeps the terminal); start_new_session=True also gives it its own group
    (and no terminal); start_new_session=False, or process_group=N > 0, keep
    it in that group: then only the child itself is signaled."""
    base = _ctx._PROC_NOREAP  # Popen reaps it, as subprocess.run does
    if "process_group" in kw:
        pg = kw["process_group"]
        if kw.get("start_new_session"):
            raise ValueError("process_group and start_new_session=True may not both be used")
        if pg == 0:
            return base | _ctx._PROC_GROUP | _ctx._PROC_TERMINAL
        return base
    if "start_new_session" in kw:
        return base | _ctx._PROC_GROUP if kw["start_new_session"] else base
    kw["process_group"] = 0
    return base | _ctx._PROC_GROUP | _ctx._PROC_TERMINAL


def _decode(p: subprocess.Popen, pipe: Any, chunks: List[bytes]) -> Any:
    """What was read, as subprocess.run returns it (None for a pipe not captured)."""
    if pipe is None:
        return None
    data = b"".join(chunks)
    if not getattr(p, "text_mode", False):
        return data
    text = data.decode(pipe.encoding, pipe.errors)
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines


def _shield() -> Any:
    """ctx.shield() where the package has it (no stop is raised inside)."""
    shield = getattr(sys.modules[__package__ or "ctx"], "shield", None)
    return shield() if shield is not None else contextlib.nullcontext()


def _drain(reads: Dict[int, List[bytes]]) -> None:
    """Appends what the pipes hold now; a descendant may hold them open, so
    this never waits for their end."""
    for fd, acc in reads.items():
        while True:
            try:
                b = os.read(fd, _CHUNK)
            except OSError:  # BlockingIOError included
                break
            if not b:
                break
            acc.append(b)


def _stop_error(c: Any) -> BaseException:
    """A fresh instance of c's error (check() reuses one: the output set on
    it must not stick to the next), with the cause as __cause__."""
    err = c.err()
    e = type(err)(*err.args)
    cause = c.cause()
    if cause is not err:
        e.__cause__ = cause
    return e


def run_process(args: Any, c: Any = None, *, grace: float = 1.0,
                **popen_kwargs: Any) -> "subprocess.CompletedProcess[Any]":
    """Runs a command as subprocess.run does, and ends it when c ends.

    args and the keyword arguments are subprocess.run's (input, capture_output,
    timeout, check, text, encoding, errors, stdout, stderr, cwd, env, ...).
    c: the context (a ctx.Context; default ctx.current()). If it is already
    done, nothing runs and c.err() is raised. When c ends first, the child's
    process group gets SIGCONT and SIGTERM, then SIGKILL after `grace` seconds
    (a number >= 0), is reaped, and a fresh c.err() (ctx.Canceled or
    ctx.DeadlineExceeded, the cause as __cause__) is raised at once, with the
    output read so far as its .stdout and .stderr. A descendant that keeps the
    output pipes open never delays that; the run otherwise ends as
    subprocess.run's does, when the child has exited and its output is read.

    The child runs in a process group of its own (process_group=0), which
    gets the terminal's foreground while it runs when this process has it: it
    can prompt on /dev/tty, and Ctrl-C reaches it (and this process too, if
    the child dies of it). start_new_session and process_group are honoured:
    start_new_session=True gives it a new session (no terminal);
    start_new_session=False or process_group=N > 0 keep it in that group,
    and then only the child itself is signaled.

    timeout=: subprocess.TimeoutExpired once it passes (the child ended as
    above), its .stdout/.stderr the output so far (text in text mode);
    check=True: subprocess.CalledProcessError for a nonzero status.
    Raises TypeError for an input of the wrong type (str without text=True,
    bytes with it) or a bad c or grace, ValueError for conflicting arguments
    (input with stdin, capture_output with stdout or stderr) or a NaN grace,
    and in an interrupting scope its stop (the child ended first).
    """
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
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))):
        raise TypeError("timeout must be int, float or None, not %s" % type(limit).__name__)
    if kw.pop("capture_output", False):
        if "stdout" in kw or "stderr" in kw:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
    if inp is not None:
        if "stdin" in kw:
            raise ValueError("stdin and input arguments may not both be used.")
        kw["stdin"] = subprocess.PIPE
    _check_input(inp, any(kw.get(k) for k in _TEXT_KEYS))
    flags = _flags(kw)
    end = None if limit is None else time.monotonic() + limit
    p: Optional[subprocess.Popen] = None
    proc: Any = None
    feed: Optional[_Feeder] = None
    out: List[bytes] = []
    err: List[bytes] = []
    reads: Dict[int, List[bytes]] = {}
    try:
        with _shield():  # a stop lands before Popen or once the core has the child
            p = subprocess.Popen(args, **kw)
            proc = _ctx._Proc(p.pid, flags)
        for pipe, acc in ((p.stdout, out), (p.stderr, err)):
            if pipe is not None:
                os.set_blocking(pipe.fileno(), False)
                reads[pipe.fileno()] = acc
        feed = _Feeder(p, inp)
        exited = False
        while reads or not exited:
            feed.write()
            fds = list(reads)
            step = feed.step()
            left = None if end is None else max(end - time.monotonic(), 0.0)
            wait = step if left is None else (left if step is None else min(step, left))
            r = proc.wait(c, fds, wait)
            if r == "exited":
                exited = True
            elif r == "done":
                raise _stop_error(c)
            elif r is None:
                if end is not None and time.monotonic() >= end:
                    raise subprocess.TimeoutExpired(args, float(limit or 0))
            else:
                fd = fds[int(r)]
                b = os.read(fd, _CHUNK)
                if b:
                    reads[fd].append(b)
                else:
                    del reads[fd]
        p.wait()
    except BaseException as e:
        if p is None:
            raise  # nothing started
        # the child never outlives a failed run; a stop raised again (an
        # interrupting scope's) must not cut this short, nor replace e (and
        # the output it carries) on its way out: e leaves from inside the shield
        with _shield():
            if proc is not None:
                proc.terminate(grace)
            else:
                p.kill()
            p.wait()
            if isinstance(e, (_ctx.ContextError, subprocess.TimeoutExpired)) and \
                    e.stdout is None and e.stderr is None:
                _drain(reads)  # what the pipes hold now: no wait for EOF
                e.stdout = _decode(p, p.stdout, out)
                e.stderr = _decode(p, p.stderr, err)
            _release(p, proc, feed)
            raise
    with _shield():
        _release(p, proc, feed)
    cp = subprocess.CompletedProcess(args, p.returncode, _decode(p, p.stdout, out),
                                     _decode(p, p.stderr, err))
    if check:
        cp.check_returncode()
    return cp


def _release(p: subprocess.Popen, proc: Any, feed: "Optional[_Feeder]") -> None:
    """Closes what run_process opened for the child (its pipes, the core's
    handle), whichever way it ended."""
    if proc is not None:
        proc.close()
    if feed is not None:
        feed.close()
    for f in (p.stdout, p.stderr, p.stdin):
        if f is not None:
            f.close()


class _Feeder:
    """Writes input to the child's stdin without blocking: the wait cannot
    watch a pipe for room, so a full one is tried again on a short schedule."""

    def __init__(self, p: subprocess.Popen, inp: Any) -> None:
        pipe: Any = p.stdin  # a TextIOWrapper in text mode
        self.pipe = pipe
        self.data = b""
        self.delay = 0.001
        if pipe is not None and inp is not None:
            self.data = inp.encode(pipe.encoding, pipe.errors) \
                if isinstance(inp, str) else bytes(memoryview(inp))
            os.set_blocking(pipe.fileno(), False)

    def step(self) -> Optional[float]:
        return None if self.pipe is None else self.delay

    def write(self) -> None:
        if self.pipe is None:
            return
        try:
            while self.data:
                n = os.write(self.pipe.fileno(), self.data[:_CHUNK])
                self.data = self.data[n:]
                self.delay = 0.001
        except BlockingIOError:
            self.delay = min(self.delay * 2, 0.02)  # the pipe is full: look again soon
            return
        except BrokenPipeError:
            pass  # the child did not read it all, as subprocess.run allows
        self.close()

    def close(self) -> None:
        if self.pipe is not None:
            try:
                self.pipe.close()
            except OSError:
                pass
            self.pipe = None


class on_signal:
    """Go's signal.NotifyContext as a scope:

        with ctx.on_signal() as c:      # SIGINT and SIGTERM
            while not c.done():
                work_a_bit()

    c, a child of parent (default: ctx.current()), is ctx.current() inside the
    block and is canceled, with cause ctx.SignalReceived(signum), when one of
    the signals arrives; the handlers that were there are put back when the
    block exits, and c is canceled then. An interrupting scope inside is
    stopped at once. signums: signal numbers (default SIGINT, SIGTERM).
    Raises ValueError outside the main thread (signal.signal's rule), OSError
    for a signal that cannot be caught (SIGKILL), RuntimeError if the scope
    is already active.
    """

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
