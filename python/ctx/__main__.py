# __main__.py — `python -m ctx [--timeout SECONDS] script.py [args...]`: runs a
# script under a root scope with a deadline, stopped by SIGINT/SIGTERM too.
import argparse
import math
import os
import runpy
import signal
import sys
import threading
from typing import Any, Callable, List, Optional, Tuple

import ctx
from ctx import _ctx

USAGE = "python -m ctx [--timeout SECONDS] [--kill-after SECONDS] script.py [args...]"


def _split(argv: List[str]) -> Tuple[List[str], List[str]]:
    """Splits at the script: our options before it, its arguments after it
    exactly as given (argparse's REMAINDER would drop a `--` meant for it)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[:i], argv[i + 1:]
        if not a.startswith("-") or a == "-":
            break
        i += 2 if a in ("--timeout", "--kill-after") else 1
    return argv[:i], argv[i:]


def _parse(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
    p = argparse.ArgumentParser(prog="python -m ctx", usage=USAGE, allow_abbrev=False,
                                description="Run a Python script with a deadline; "
                                "exit 124 when it ends the script, 128+N for signal N.")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop the script after this many seconds")
    p.add_argument("--kill-after", type=float, default=2.0, metavar="SECONDS",
                   help="end the process if the script is still running this long "
                   "after it was stopped (it caught the stop); default 2")
    opts, rest = _split(argv)
    ns = p.parse_args(opts)
    if ns.timeout is not None and (math.isnan(ns.timeout) or ns.timeout < 0):
        p.error("--timeout must be a number of seconds >= 0")
    if math.isnan(ns.kill_after) or ns.kill_after < 0:
        p.error("--kill-after must be a number of seconds >= 0")
    if not rest:
        p.error("the following arguments are required: script.py")
    return ns, rest


def _verdict(c: ctx.Context, name: str, timeout: Optional[float]) -> Tuple[int, str]:
    """The exit status and the one-line message for a root context that ended."""
    cause = ctx.cause(c)
    if isinstance(cause, ctx.SignalReceived):
        return 128 + cause.signum, f"stopped by {signal.Signals(cause.signum).name}"
    if isinstance(c.err(), ctx.DeadlineExceeded):
        return 124, f"stopped after its {timeout:g} s timeout"
    return 1, f"stopped ({c.err()})"


def _watchdog(c: ctx.Context, grace: float, name: str,
              timeout: Optional[float]) -> Callable[[], None]:
    """Once c ends, gives the script `grace` seconds to unwind; one that caught
    the stop and kept going is ended then (GNU timeout's --kill-after).
    Returns a function that disarms it, for when main() returns."""
    disarmed = threading.Event()  # main() returned: the script has ended

    def expire() -> None:
        if disarmed.is_set():
            return
        code, why = _verdict(c, name, timeout)
        try:
            sys.stdout.flush()
            sys.stderr.write(f"ctx: {name}: {why}; still running {grace:g} s later, ended\n")
            sys.stderr.flush()
        finally:
            os._exit(code)

    def arm() -> None:
        # runs on ctx's callback thread, possibly after main() has returned
        if not disarmed.is_set():
            t = threading.Timer(grace, expire)
            t.daemon = True
            t.start()

    ctx.after_func(c, arm)
    disarm = disarmed.set
    return disarm


def main(argv: Optional[List[str]] = None) -> int:
    ns, rest = _parse(sys.argv[1:] if argv is None else argv)
    script = rest[0]
    seconds = math.inf if ns.timeout is None else ns.timeout
    if not os.path.isfile(script):
        # as python itself reports a script it cannot open
        print(f"{sys.executable}: can't open file {script!r}", file=sys.stderr)
        return 2
    sys.argv = list(rest)
    # as python does: the directory of the script, symlinks resolved
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    name = os.path.basename(script)
    root = ctx.timeout(seconds, ctx.background(), interrupt=True)

    def on_signal(signum: int, frame: Any) -> None:
        c = root.context
        if c is not None:
            c.cancel(ctx.SignalReceived(signum))
            _ctx._interrupt_check()

    disarm: Optional[Callable[[], None]] = None
    try:
        with root as c:
            disarm = _watchdog(c, ns.kill_after, name, ns.timeout)
            old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            runpy.run_path(script, run_name="__main__")
    except ctx.ContextError as e:
        if not c.done() or type(e) is not type(c.err()):
            raise
        code, why = _verdict(c, name, ns.timeout)
        print(f"ctx: {name}: {why}", file=sys.stderr)
        return code
    finally:
        if disarm is not None:
            disarm()
        for s, h in locals().get("old", {}).items():
            signal.signal(s, h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
