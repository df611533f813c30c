# __main__.py — `python -m ctx [options] (script.py | -m module | -c code | -)`:
# runs the target as python would, under a root scope with a deadline and signals.
import argparse
import importlib.machinery
import io
import math
import os
import runpy
import signal
import sys
import types
from typing import Any, Callable, Dict, List, Optional, Tuple

import ctx
from ctx import _ctx

USAGE = ("python -m ctx [--timeout SECONDS] [--kill-after SECONDS] "
         "(script.py | -m module | -c code | -) [args...]")
OUR_OPTIONS = ("--timeout", "--kill-after")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Missing(Exception):
    """-m or -c without its argument."""


def _split(argv: List[str]) -> Tuple[List[str], Optional[Tuple[str, str]], List[str]]:
    """Splits argv at the target, as python reads its own command line: our
    options, then (kind, target), then the target's arguments exactly as given."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":  # what follows is the script, whatever its name
            if i + 1 == len(argv):
                return argv[:i], None, []
            return argv[:i], ("script", argv[i + 1]), argv[i + 2:]
        if a == "-":
            return argv[:i], ("stdin", "-"), argv[i + 1:]
        if a[:2] in ("-m", "-c") and not a.startswith("--"):
            kind = "module" if a[1] == "m" else "code"
            if len(a) > 2:
                return argv[:i], (kind, a[2:]), argv[i + 1:]
            if i + 1 == len(argv):
                raise _Missing(a)
            return argv[:i], (kind, argv[i + 1]), argv[i + 2:]
        if not a.startswith("-"):
            break
        i += 2 if a in OUR_OPTIONS else 1
    if i >= len(argv):
        return argv[:i], None, []
    return argv[:i], ("script", argv[i]), argv[i + 1:]


def _parse(argv: List[str]) -> Tuple[argparse.Namespace, Tuple[str, str], List[str]]:
    p = argparse.ArgumentParser(
        prog="python -m ctx", usage=USAGE, allow_abbrev=False,
        description="Run a Python script, module (-m), code (-c) or stdin (-) as python "
        "would, under a root scope: ctx.current() has the timeout, and SIGINT/SIGTERM "
        "cancel it. Exit status 124 when the timeout ended the script, 128+N when "
        "signal N did, the script's own otherwise. A second signal ends it at once.")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop the script after this many seconds")
    p.add_argument("--kill-after", type=float, default=2.0, metavar="SECONDS",
                   help="end the process if the script is still running this long "
                   "after it was stopped (it caught the stop); default 2")
    try:
        opts, target, rest = _split(argv)
    except _Missing as e:
        p.parse_args(argv[:argv.index(str(e))])  # --help and bad options first
        p.error(f"argument expected for the {e} option")
    ns = p.parse_args(opts)
    if ns.timeout is not None and (math.isnan(ns.timeout) or ns.timeout < 0):
        p.error("--timeout must be a number of seconds >= 0")
    if math.isnan(ns.kill_after) or ns.kill_after < 0:
        p.error("--kill-after must be a number of seconds >= 0")
    if target is None:
        p.error("the following arguments are required: script.py, -m module, -c code or -")
    return ns, target, rest


def _fresh_main(**attrs: Any) -> Dict[str, Any]:
    """A new __main__ module, in sys.modules for good (pickle, multiprocessing
    and atexit handlers look it up there, as with python itself)."""
    mod = types.ModuleType("__main__")
    mod.__dict__.update(__builtins__=__builtins__, __spec__=None, __package__=None, **attrs)
    if __name__ == "__main__":  # this module makes way, under its own name
        sys.modules["ctx.__main__"] = sys.modules["__main__"]
    sys.modules["__main__"] = mod
    return mod.__dict__


def _set_path0(entry: str) -> None:
    # python -P (safe_path) prepends nothing: then neither do we
    if not getattr(sys.flags, "safe_path", False):
        sys.path[0] = entry


def _prepare(kind: str, target: str, args: List[str]) -> Callable[[], None]:
    """Sets sys.argv and sys.path[0] as python would for this target and
    returns what runs it; raises OSError for a script that cannot be opened."""
    if kind == "module":
        sys.argv = ["-m", *args]  # runpy puts the module's path in argv[0]
        return lambda: _run_as_main(target, True)
    if kind in ("code", "stdin"):
        sys.argv = ["-c" if kind == "code" else "-", *args]
        _set_path0("")

        def run_source() -> None:
            if kind == "code":
                g = _fresh_main(__loader__=importlib.machinery.BuiltinImporter)
                source: Any = target
                name = "<string>"
            else:
                g = _fresh_main(__loader__=importlib.machinery.BuiltinImporter, __file__="<stdin>")
                source = sys.stdin.buffer.read() if sys.stdin else b""
                name = "<stdin>"
            exec(compile(source, name, "exec", dont_inherit=True), g)
        return run_source
    path = os.path.abspath(target)
    if os.path.isdir(path) or (os.path.isfile(path) and _is_zip(path)):
        sys.argv = [target, *args]
        _set_path0(path)  # a directory or zip with __main__.py
        return lambda: _run_as_main("__main__", False)
    with io.open_code(path) as f:  # OSError as python reports it
        source = f.read()
    sys.argv = [target, *args]
    _set_path0(os.path.dirname(os.path.realpath(path)))

    def run_script() -> None:
        g = _fresh_main(__file__=path, __cached__=None,
                        __loader__=importlib.machinery.SourceFileLoader("__main__", path))
        exec(compile(source, path, "exec", dont_inherit=True), g)
    return run_script


def _run_as_main(module: str, alter_argv: bool) -> None:
    # what python -m does itself: runpy's entry point for it, run in a fresh
    # __main__ (it fills in __file__, __spec__, __loader__)
    _fresh_main()
    runpy._run_module_as_main(module, alter_argv=alter_argv)  # type: ignore[attr-defined]


def _is_zip(path: str) -> bool:
    import zipfile
    return zipfile.is_zipfile(path)


class _Runner:
    """The runner's contexts, and the state its signal handlers and fork hook
    share. `stop` ends only by the runner's deadline or a signal (canceling
    the root scope, as its exit does, is no stop of the runner's): the
    watchdog and the exit status follow it alone."""

    def __init__(self, name: str, timeout: Optional[float], grace: float) -> None:
        self.name = name
        self.timeout = timeout
        self.grace = grace
        self.pid = os.getpid()
        signaled, self.cancel = ctx.with_cancel_cause(ctx.background())
        seconds = math.inf if timeout is None else timeout
        self.stop, _ = ctx.with_timeout(signaled, seconds)
        # what the script sees as ctx.current(): interrupts the main thread
        self.root: Any = ctx.timeout(math.inf, self.stop, interrupt=True)
        self.signum: Optional[int] = None   # the signal that stopped the script
        self.old: Dict[int, Any] = {}       # the handlers ours replaced

    def verdict(self) -> Optional[Tuple[int, str]]:
        """Status and reason when the runner itself stopped the script, else None."""
        if self.signum is not None:
            return 128 + self.signum, f"stopped by {signal.Signals(self.signum).name}"
        if isinstance(self.stop.err(), ctx.DeadlineExceeded):
            return 124, f"stopped after its {self.timeout:g} s timeout"
        return None

    def message(self, why: str) -> str:
        return f"ctx: {self.name}: {why}; still running {self.grace:g} s later, ended\n"

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.done():
            # graceful, then hard: the stop is under way, end it now
            why = f"ctx: {self.name}: {signal.Signals(signum).name} again; ended at once\n"
            _ctx._hard_exit(128 + signum, why)
        self.signum = signum
        code, why = self.verdict() or (1, "")
        _ctx._watchdog_verdict(code, self.message(why))
        self.cancel(ctx.SignalReceived(signum))
        _ctx._interrupt_check()  # raise the stop now, even in a blocking call

    def install(self) -> None:
        for s in SIGNALS:
            self.old[s] = signal.signal(s, self.on_signal)

    def restore(self) -> None:
        for s, h in self.old.items():
            if signal.getsignal(s) == self.on_signal:  # not if the script took it
                signal.signal(s, h if h is not None else signal.SIG_DFL)
        self.old = {}

    def in_forked_child(self) -> None:
        # a process the script forked is the script's: it keeps none of the
        # runner's handlers, root scope or watchdog (a thread: gone already)
        if self.pid == os.getpid():
            return
        self.restore()
        self.root._detach()


_runner: Optional[_Runner] = None


def _fork_hook() -> None:
    if _runner is not None:
        _runner.in_forked_child()


def _script_traceback(e: BaseException) -> None:
    """Prints e as python would for the script: without the runner's frames."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    sys.excepthook(type(e), e.with_traceback(tb), tb)  # the hook prints e's own


def main(argv: Optional[List[str]] = None) -> int:
    global _runner
    ns, (kind, target), args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        run = _prepare(kind, target, args)
    except OSError as e:
        # as python itself reports a script it cannot open
        print(f"{sys.executable}: can't open file {os.path.abspath(target)!r}: "
              f"[Errno {e.errno}] {e.strerror}", file=sys.stderr)
        return 2
    name = os.path.basename(target) if kind == "script" else {
        "module": f"-m {target}", "code": "-c", "stdin": "-"}[kind]
    state = _Runner(name, ns.timeout, ns.kill_after)
    if _runner is None:
        os.register_at_fork(after_in_child=_fork_hook)
    _runner = state
    _ctx._watchdog(state.stop, ns.kill_after,
                   state.message(f"stopped after its {ns.timeout or 0:g} s timeout"),
                   state.message("stopped"))
    state.install()
    outcome: Optional[BaseException] = None
    try:
        # nothing of ours runs inside the block but run(): a stop raised
        # there is the script's to see, never the runner's bookkeeping
        with state.root:
            run()
    except BaseException as e:  # sorted out below, outside the block
        outcome = e
    # in a child the script forked (returning here) the script is on its own
    verdict = state.verdict() if os.getpid() == state.pid else None
    if verdict is None:
        # the script ended by itself: its own status, python's handlers back
        _ctx._watchdog_disarm()
        state.restore()
        if outcome is None or not isinstance(outcome, Exception):
            if outcome is not None:
                raise outcome
            return 0
        _script_traceback(outcome)
        return 1
    # the runner stopped it: the watchdog stays armed until the process has
    # exited (atexit handlers and threads have the rest of the grace period)
    code, why = verdict
    if isinstance(outcome, Exception) and not isinstance(outcome, ctx.ContextError):
        _script_traceback(outcome)  # the stop turned into another error
    elif outcome is not None and not isinstance(outcome, Exception):
        raise outcome  # sys.exit() while stopping: the script's own status
    print(f"ctx: {name}: {why}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
