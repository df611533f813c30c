# test_interrupt.py — issue 5: interrupt=True scopes, run_process, on_signal and
# the `python -m ctx` runner.
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ctx

HERE = os.path.dirname(os.path.abspath(__file__))
# where this run imported ctx from (the in-place build, or the portable one)
PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(ctx.__file__)))


def test_busy_loop_stopped():
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded) as info:
        with ctx.timeout(0.05, interrupt=True):
            while True:
                pass
    assert type(info.value) is ctx.DeadlineExceeded
    assert 0.05 <= time.monotonic() - t0 < 1


def test_blocking_call_stopped_on_main_thread():
    # the main thread gets a wake signal: even time.sleep stops
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.05, interrupt=True):
            time.sleep(10)
    with pytest.raises(ctx.Canceled):
        with ctx.scope() as s:
            with ctx.timeout(100, interrupt=True):
                threading.Timer(0.05, s.cancel).start()
                time.sleep(10)
    assert time.monotonic() - t0 < 2


def test_busy_loop_stopped_in_thread():
    out = []

    def work():
        t0 = time.monotonic()
        try:
            with ctx.timeout(0.05, interrupt=True):
                while True:
                    pass
        except ctx.DeadlineExceeded as e:
            out.append((type(e), time.monotonic() - t0))

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert out and out[0][0] is ctx.DeadlineExceeded and out[0][1] < 1


def test_cancel_with_cause_interrupts():
    why = ValueError("stop now")
    with pytest.raises(ctx.Canceled) as info:
        with ctx.scope() as outer:
            threading.Timer(0.05, outer.cancel, args=(why,)).start()
            with ctx.timeout(100, interrupt=True):
                while True:
                    pass
    assert info.value.__cause__ is why


def test_nested_outer_stop_not_swallowed():
    # the inner except catches the outer's stop; leaving the inner scope
    # raises it again, so the outer scope really stops the code
    caught = []
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.05, interrupt=True) as outer:
            with ctx.timeout(100, interrupt=True) as inner:
                try:
                    while True:
                        pass
                except ctx.DeadlineExceeded as e:
                    caught.append(e)
                    assert outer.done() and inner.done()
            pytest.fail("the outer stop was swallowed")
    assert caught and time.monotonic() - t0 < 1


def _outer_stop_caught_inside_inner(blocker):
    # the outer scope ends while the code sits in an inner one; the inner
    # context ends with it (a child), but only one stop may hit the code: its
    # handler runs to the end, then leaving the inner scope raises it again.
    # The cleanup runs shielded: the stop is level-triggered, and a cleanup
    # longer than its period would be hit again.
    seen = []
    try:
        with ctx.timeout(0.05, interrupt=True):
            try:
                with ctx.timeout(100, interrupt=True):
                    try:
                        blocker()
                    except ctx.DeadlineExceeded:
                        seen.append("caught")
                    with ctx.shield():
                        for _ in range(300000):  # cleanup long enough to be hit
                            pass
                        seen.append("handler done")
                seen.append("inner exited normally")
            except ctx.DeadlineExceeded:
                seen.append("raised at inner exit")
            with ctx.shield():
                for _ in range(100000):
                    pass
                seen.append("outer block done")
    except ctx.DeadlineExceeded:
        seen.append("outer raised")
    return seen


def _busy():
    while True:
        pass


BLOCKERS = [_busy, lambda: time.sleep(10), lambda: ctx.sleep(10, ctx.background()),
            lambda: ctx.background().wait(10)]


@pytest.mark.parametrize("blocker", BLOCKERS)
def test_outer_stop_raised_once_inside_inner_scope(blocker):
    seen = _outer_stop_caught_inside_inner(blocker)
    assert seen[:4] == ["caught", "handler done", "raised at inner exit", "outer block done"]
    # still inside the ended outer block when its last shield exits: the
    # level-triggered stop is raised there if its period has passed
    assert seen[4:] in ([], ["outer raised"])


# time.sleep blocks other threads for good: only the main thread gets a signal
@pytest.mark.parametrize("blocker", [b for b in BLOCKERS if b is not BLOCKERS[1]])
def test_outer_stop_raised_once_inside_inner_scope_in_thread(blocker):
    box = []
    t = threading.Thread(target=lambda: box.append(_outer_stop_caught_inside_inner(blocker)))
    t.start()
    t.join(10)
    assert len(box) == 1 and box[0][:4] == [
        "caught", "handler done", "raised at inner exit", "outer block done"]
    assert box[0][4:] in ([], ["outer raised"])


def test_nested_raises_the_error_of_the_scope_that_ended():
    why = KeyError("outer stopped")
    with pytest.raises(ctx.Canceled) as info:
        with ctx.timeout(100, interrupt=True) as outer:
            with ctx.timeout(100, ctx.background(), interrupt=True) as inner:
                threading.Timer(0.05, outer.cancel, args=(why,)).start()
                try:
                    while True:
                        pass
                except ctx.ContextError:
                    assert outer.done() and not inner.done()
                    raise
    assert info.value.__cause__ is why


def test_interrupt_refused_in_async_with():
    async def main():
        async with ctx.timeout(1, interrupt=True):
            pass
    import asyncio
    with pytest.raises(ValueError):
        asyncio.run(main())


def test_while_true_in_nested_scope():
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.05, interrupt=True):
            with ctx.timeout(100):
                with ctx.scope():
                    while True:
                        pass


def test_inner_scope_stop_is_its_own():
    # the inner scope ends by itself: the outer keeps running normally
    with ctx.timeout(100, interrupt=True) as outer:
        with pytest.raises(ctx.DeadlineExceeded):
            with ctx.timeout(0.03, interrupt=True):
                while True:
                    pass
        assert not outer.done()
        for _ in range(100000):
            pass


@pytest.mark.parametrize("where", ["sleep", "wait", "wait_timeout"])
def test_interrupt_wakes_waits(where):
    other, cancel = ctx.with_cancel(ctx.background())
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.05, interrupt=True):
            if where == "sleep":
                ctx.sleep(10, other)
            elif where == "wait":
                other.wait()
            else:
                other.wait(10)
    assert time.monotonic() - t0 < 1
    cancel()


def test_interrupt_wakes_waits_in_thread():
    other, cancel = ctx.with_cancel(ctx.background())
    out = []

    def work():
        try:
            with ctx.timeout(0.05, interrupt=True):
                other.wait()
        except ctx.DeadlineExceeded:
            out.append(1)

    t = threading.Thread(target=work)
    t.start()
    t.join(5)
    assert out == [1]
    cancel()


def near_deadline_exits(n, seed):
    rnd = random.Random(seed)
    raised = 0
    for _ in range(n):
        try:
            with ctx.timeout(rnd.random() * 2e-4, interrupt=True):
                t_end = time.monotonic() + rnd.random() * 2e-4
                while time.monotonic() < t_end:
                    pass
        except ctx.DeadlineExceeded:
            raised += 1
        for _ in range(50):  # a stray exception would land here
            pass
    return raised


def test_no_stray_exception_after_exit_main():
    assert near_deadline_exits(3000, 1) > 0
    time.sleep(0.01)
    for _ in range(10000):
        pass


def test_no_stray_exception_after_exit_threads():
    errors = []

    def work(seed):
        try:
            near_deadline_exits(1500, seed)
            for _ in range(10000):
                pass
        except BaseException as e:  # pragma: no cover - the failure
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors


def test_scope_exit_clears_interrupt_state():
    with ctx.timeout(0.01, interrupt=True):
        pass
    time.sleep(0.05)  # the context ended after the block: nothing is raised
    with pytest.raises(ctx.Canceled):
        with ctx.timeout(100, interrupt=True) as s:
            s.cancel()  # raised at the next bytecode
            for _ in range(10 ** 7):
                pass
            pytest.fail("not interrupted")


# ---- run_process ----

def no_zombies():
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] == "Z":
            return False
    return True


def test_run_process_ok():
    r = ctx.run_process([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
                        input="hi", capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "HI\n"
    r = ctx.run_process(["sh", "-c", "exit 3"])
    assert r.returncode == 3
    with pytest.raises(subprocess.CalledProcessError):
        ctx.run_process(["false"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        ctx.run_process(["sleep", "10"], timeout=0.1)
    assert no_zombies()


def test_run_process_killed_when_context_ends():
    t0 = time.monotonic()
    with ctx.timeout(0.2):
        with pytest.raises(ctx.DeadlineExceeded):
            ctx.run_process(["sh", "-c", "sleep 30 & sleep 30"])
    assert time.monotonic() - t0 < 2
    assert no_zombies()


def test_run_process_sigkill_after_grace():
    c, cancel = ctx.with_timeout(ctx.background(), 0.2)
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        ctx.run_process(["sh", "-c", "trap '' TERM; sleep 30"], c, grace=0.3,
                        capture_output=True)
    assert 0.45 <= time.monotonic() - t0 < 3
    assert no_zombies()


def test_run_process_done_context_runs_nothing(tmp_path):
    c, cancel = ctx.with_cancel_cause(ctx.background())
    cancel(KeyError("no"))
    marker = tmp_path / "ran"
    with pytest.raises(ctx.Canceled) as info:
        ctx.run_process(["touch", str(marker)], c)
    assert info.value.__cause__ is c.cause()
    assert not marker.exists()


def test_run_process_interrupt_scope():
    other, cancel = ctx.with_cancel(ctx.background())
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.1, interrupt=True):
            ctx.run_process(["sleep", "30"], other)
    assert time.monotonic() - t0 < 2
    assert no_zombies()
    cancel()


# ---- on_signal ----

def test_on_signal():
    before = signal.getsignal(signal.SIGUSR1)
    with ctx.on_signal(signal.SIGUSR1) as c:
        assert ctx.current() is c
        os.kill(os.getpid(), signal.SIGUSR1)
        assert c.wait(5)
        assert isinstance(c.err(), ctx.Canceled)
        assert isinstance(c.cause(), ctx.SignalReceived)
        assert c.cause().signum == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is before
    with ctx.on_signal() as c:
        assert signal.getsignal(signal.SIGINT) is not before
        assert not c.done()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_on_signal_stops_interrupting_scope():
    t0 = time.monotonic()
    with pytest.raises(ctx.Canceled) as info:
        with ctx.on_signal(signal.SIGUSR2):
            with ctx.timeout(100, interrupt=True):
                threading.Timer(0.05, os.kill, args=(os.getpid(), signal.SIGUSR2)).start()
                time.sleep(10)  # a blocking call: the handler raises at once
    assert isinstance(info.value.__cause__, ctx.SignalReceived)
    assert time.monotonic() - t0 < 2


# ---- python -m ctx ----

def catches(pid, sig):
    """Whether process pid has a handler for sig (its SigCgt mask)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def runner(tmp_path, body, *args, timeout=30, sig=None):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=PYPATH)
    p = subprocess.Popen([sys.executable, "-m", "ctx", *args, str(script), "a1"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if sig is not None:
        # once the runner catches SIGTERM, which it does with SIGINT (python
        # catches SIGINT from the start; a fixed sleep loses the race on a
        # loaded machine), and a moment more for the script to be running
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end and not catches(p.pid, signal.SIGTERM):
            time.sleep(0.01)
        time.sleep(0.3)
        p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def test_runner_timeout_busy_loop(tmp_path):
    t0 = time.monotonic()
    rc, out, err = runner(tmp_path, """
        import ctx, sys
        print(sys.argv[1:], ctx.current().deadline() is not None, flush=True)
        while True:
            pass
    """, "--timeout", "0.3")
    assert rc == 124, err
    assert out == "['a1'] True\n"
    assert len(err.strip().splitlines()) == 1 and "timeout" in err
    assert time.monotonic() - t0 < 10


def test_runner_timeout_blocking_sleep(tmp_path):
    rc, out, err = runner(tmp_path, "import time\ntime.sleep(60)\n", "--timeout", "0.3")
    assert rc == 124, err


def test_runner_stops_a_script_that_swallows_the_stop(tmp_path):
    # the stop is level-triggered: a broad except cannot keep the script going
    body = """
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass  # swallows ctx.DeadlineExceeded, and is stopped again
    """
    t0 = time.monotonic()
    rc, out, err = runner(tmp_path, body, "--timeout", "0.3", "--kill-after", "5")
    assert rc == 124 and "still running" not in err, err
    assert time.monotonic() - t0 < 4


def test_runner_ends_a_script_that_keeps_running(tmp_path):
    # what no stop can end: a script that shields itself from interrupts
    body = """
        import ctx
        with ctx.shield():
            print("shielded", flush=True)
            while True:
                pass
    """
    t0 = time.monotonic()
    rc, out, err = runner(tmp_path, body, "--timeout", "0.3", "--kill-after", "0.5")
    assert rc == 124 and "still running 0.5 s later" in err, err
    assert 0.8 <= time.monotonic() - t0 < 10
    # SIGTERM once the script runs (its handlers are in place by then)
    script = tmp_path / "script.py"
    p = subprocess.Popen([sys.executable, "-m", "ctx", "--kill-after", "0.3", str(script)],
                         env=dict(os.environ, PYTHONPATH=PYPATH), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "shielded\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM and "SIGTERM" in err, err


def test_runner_watchdog_does_not_fire_after_a_clean_exit(tmp_path):
    # the root scope is canceled as main() returns: that must not arm the watchdog
    rc, out, err = runner(tmp_path, """
        import atexit, time
        atexit.register(time.sleep, 0.6)  # exit takes longer than --kill-after
        print("done")
    """, "--timeout", "30", "--kill-after", "0.2")
    assert (rc, out, err) == (0, "done\n", "")


def test_runner_status_and_signals(tmp_path):
    assert runner(tmp_path, "import sys\nsys.exit(3)\n")[0] == 3
    assert runner(tmp_path, "print('ok')\n", "--timeout", "30")[:2] == (0, "ok\n")
    rc, out, err = runner(tmp_path, "import time\nwhile True: time.sleep(0.01)\n",
                          sig=signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM and "SIGTERM" in err
    rc, out, err = runner(tmp_path, "while True: pass\n", sig=signal.SIGINT)
    assert rc == 128 + signal.SIGINT and len(err.strip().splitlines()) == 1
    rc, out, err = runner(tmp_path, "raise KeyError('mine')\n")
    assert rc == 1 and "KeyError" in err


def test_runner_passes_script_arguments_verbatim(tmp_path):
    # as `python script.py ...` would: a `--` or an option after the script is
    # the script's, never eaten by the runner
    script = tmp_path / "args.py"
    script.write_text("import sys\nprint(sys.argv)\n")
    env = dict(os.environ, PYTHONPATH=PYPATH)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ctx", *args], env=env, cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=30)
    r = run("args.py", "--", "x", "--timeout", "1", "-h")
    assert r.returncode == 0 and r.stdout == "['args.py', '--', 'x', '--timeout', '1', '-h']\n"
    r = run("--timeout", "30", "--", "args.py", "--")
    assert r.returncode == 0 and r.stdout == "['args.py', '--']\n"
    r = run("--timeout=30", "args.py")
    assert r.returncode == 0 and r.stdout == "['args.py']\n"
    r = run("--timeout", "30")
    assert r.returncode == 2 and "script" in r.stderr
    r = run("missing.py")
    assert r.returncode == 2 and "missing.py" in r.stderr and "Traceback" not in r.stderr


def test_slow_user_after_func_does_not_delay_scope_stops():
    # SPEC 1: a slow after_func never delays other deadlines: the stops of
    # thread scopes, async with and wait_async do not queue behind it
    import asyncio
    release = threading.Event()
    c, cancel = ctx.with_cancel(ctx.background())
    ctx.after_func(c, lambda: release.wait(10))
    cancel()
    try:
        took = []

        def busy():
            t0 = time.monotonic()
            try:
                with ctx.timeout(0.05, interrupt=True):
                    while True:
                        pass
            except ctx.DeadlineExceeded:
                took.append(time.monotonic() - t0)
        t = threading.Thread(target=busy)
        t.start()
        t.join(5)
        assert took and took[0] < 2

        async def main():
            t0 = time.monotonic()
            with pytest.raises(ctx.DeadlineExceeded):
                async with ctx.timeout(0.05):
                    await asyncio.sleep(10)
            w, _ = ctx.with_timeout(ctx.background(), 0.05)
            await asyncio.wait_for(w.wait_async(), 5)
            return time.monotonic() - t0
        assert asyncio.run(main()) < 2
    finally:
        release.set()


def test_runner_sys_path_like_python(tmp_path):
    # python puts the script's own directory first, symlinks resolved
    real = tmp_path / "real"
    real.mkdir()
    (real / "helper_mod.py").write_text("X = 'found'\n")
    (real / "main.py").write_text("import sys, helper_mod\nprint(helper_mod.X, sys.path[0])\n")
    (tmp_path / "link.py").symlink_to(real / "main.py")
    env = dict(os.environ, PYTHONPATH=PYPATH)
    want = subprocess.run([sys.executable, str(tmp_path / "link.py")], env=env,
                          capture_output=True, text=True, timeout=30)
    got = subprocess.run([sys.executable, "-m", "ctx", str(tmp_path / "link.py")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert want.returncode == 0 and want.stdout.startswith("found ")
    assert (got.returncode, got.stdout) == (0, want.stdout)
