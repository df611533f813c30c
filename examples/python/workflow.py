"""workflow.py — a nightly-report job run with ctx, step by step: fetch from
three sources in threads, transform, shell out, publish; each step bounded."""
import os
import signal
import subprocess
import sys
import threading
import time

import ctx

T0 = time.monotonic()


def log(step: str, msg: str) -> None:
    print(f"  [{time.monotonic() - T0:6.3f}s] {step:<10} {msg}", flush=True)


def fetch(c: ctx.Context, source: str, seconds: float, fails: bool) -> None:
    """One source: a slow network call, simulated by a sleep that c can cut."""
    ctx.sleep(seconds, c)
    if fails:
        raise ConnectionError(f"{source}: connection reset by peer")
    log("fetch", f"{source}: 120 rows for {c.value('request_id')}")


def fetch_all(job: ctx.Context) -> None:
    """Workers share one cancel-cause context: the first failure stops the rest."""
    c, cancel = ctx.with_cancel_cause(job)

    def worker(source: str, seconds: float, fails: bool) -> None:
        try:
            fetch(c, source, seconds, fails)
        except ctx.ContextError as e:
            log("fetch", f"{source}: stopped early ({e}; cause: {ctx.cause(c)})")
        except Exception as e:
            log("fetch", f"{source}: FAILED: {e}; canceling its siblings")
            cancel(e)

    sources = [("billing", 0.1, False), ("crm", 0.3, True), ("warehouse", 20.0, False)]
    threads = [threading.Thread(target=worker, args=s) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cancel()


def transform() -> None:
    """Pure Python that never checks for cancellation, stopped by its own timeout."""
    n = 0
    try:
        with ctx.timeout(0.3, interrupt=True):
            while True:
                n += 1
    except ctx.DeadlineExceeded as e:
        log("transform", f"stopped by its 0.3 s timeout after {n:,} iterations: {e}")


def shell_out() -> None:
    """A stuck subprocess is killed (its process group) when the step's time is up."""
    with ctx.timeout(0.5):
        t = time.monotonic()
        try:
            ctx.run_process(["sleep", "30"], grace=0.2)
        except ctx.DeadlineExceeded as e:
            log("shell", f"`sleep 30` killed after {time.monotonic() - t:.2f}s: {e}")


def ctrl_c() -> None:
    """What Ctrl-C does to a script run under `python -m ctx`."""
    stuck = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stuck.py")
    for how in ("timeout", "SIGINT"):
        args = [sys.executable, "-m", "ctx"] + (["--timeout", "0.5"] if how == "timeout" else []) + [stuck]
        p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        if how == "SIGINT":
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        _, err = p.communicate(timeout=10)
        log("ctrl-c", f"python -m ctx stuck.py, {how}: exit {p.returncode}; {err.strip()}")


def main() -> None:
    print("== Python: a nightly-report job")
    root = ctx.with_value(ctx.background(), "request_id", "req-42")
    with ctx.scope(root) as job:
        ctx.after_func(job, lambda: log("publish", "job context ended: lock file released"))
        log("start", f"{job}")
        fetch_all(job)
        transform()
        shell_out()
        log("publish", f"report for {ctx.current().value('request_id')} published")
    time.sleep(0.05)  # the after_func runs on ctx's callback thread
    ctrl_c()


if __name__ == "__main__":
    main()
