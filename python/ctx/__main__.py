# __main__.py — `python -m ctx [--timeout SECONDS] script.py [args...]`: runs a
# script under a root scope with a deadline, stopped by SIGINT/SIGTERM too.
import argparse
import math
import os
import runpy
import signal
import sys
from typing import Any, List, Optional, Tuple

import ctx
from ctx import _ctx

USAGE = "python -m ctx [--timeout SECONDS] script.py [args...]"


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
        i += 2 if a == "--timeout" else 1
    return argv[:i], argv[i:]


def _parse(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
    p = argparse.ArgumentParser(prog="python -m ctx", usage=USAGE, allow_abbrev=False,
                                description="Run a Python script with a deadline; "
                                "exit 124 when it ends the script, 128+N for signal N.")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop the script after this many seconds")
    opts, rest = _split(argv)
    ns = p.parse_args(opts)
    if ns.timeout is not None and (math.isnan(ns.timeout) or ns.timeout < 0):
        p.error("--timeout must be a number of seconds >= 0")
    if not rest:
        p.error("the following arguments are required: script.py")
    return ns, rest


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

    try:
        with root as c:
            old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            runpy.run_path(script, run_name="__main__")
    except ctx.ContextError as e:
        if not c.done() or type(e) is not type(c.err()):
            raise
        cause = ctx.cause(c)
        if isinstance(cause, ctx.SignalReceived):
            sig = signal.Signals(cause.signum).name
            print(f"ctx: {name}: stopped by {sig}", file=sys.stderr)
            return 128 + cause.signum
        if isinstance(e, ctx.DeadlineExceeded):
            print(f"ctx: {name}: stopped after its {ns.timeout:g} s timeout", file=sys.stderr)
            return 124
        print(f"ctx: {name}: stopped ({e})", file=sys.stderr)
        return 1
    finally:
        for s, h in locals().get("old", {}).items():
            signal.signal(s, h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
