# test_runner.py — issue 9, `python -m ctx`: -m/-c/- as python runs them, the
# script's own errors, the watchdog, graceful-then-hard signals, forked children.
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYPATH = os.path.abspath(os.path.join(HERE, "..", "..", "python"))
ENV = dict(os.environ, PYTHONPATH=PYPATH)

PROBE = """\
import sys, pickle
class Thing: pass
pickle.loads(pickle.dumps(Thing()))  # classes of __main__ pickle, as under python
print(sys.argv, repr(sys.path[0]), __name__, globals().get("__file__"),
      __spec__ and __spec__.name, type(__loader__).__name__, __package__)
"""


def run(*args, cwd=None, input=None, timeout=60):
    return subprocess.run([sys.executable, *args], env=ENV, cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=timeout)


def start(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "ctx", *args], env=ENV, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write(path, body):
    path.write_text(textwrap.dedent(body))
    return str(path)


def wait_for_file(path, timeout=15):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if os.path.exists(path) and open(path).read().endswith("\n"):
            return open(path).read()
        time.sleep(0.05)
    return None


def dead(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


# ---- targets, as python runs them ----

@pytest.fixture
def tree(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text(PROBE)
    (tmp_path / "mod.py").write_text(PROBE)
    return tmp_path


@pytest.mark.parametrize("target", [
    ["-m", "pkg", "a", "-b", "--"], ["-m", "mod", "x"], ["-mmod", "y"],
    ["-c", PROBE, "c1", "--timeout"], ["-", "s1", "-m"], ["mod.py", "w", "-c"],
    ["pkg", "dir"],
])
def test_targets_run_as_python_runs_them(tree, target):
    stdin = PROBE if target[0] == "-" else None
    want = run(*target, cwd=str(tree), input=stdin)
    got = run("-m", "ctx", "--timeout", "60", *target, cwd=str(tree), input=stdin)
    assert want.returncode == 0, want.stderr
    assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, "")


def test_timeout_stops_every_kind_of_target(tree):
    (tree / "spin.py").write_text("while True:\n    pass\n")
    for target, stdin in [(["-m", "spin"], None), (["-c", "while True: pass"], None),
                          (["-"], "while True:\n    pass\n")]:
        t0 = time.monotonic()
        r = run("-m", "ctx", "--timeout", "0.3", *target, cwd=str(tree), input=stdin)
        assert r.returncode == 124, (target, r.stderr)
        assert r.stderr.startswith("ctx: ") and "0.3 s timeout" in r.stderr
        assert time.monotonic() - t0 < 15


def test_wraps_pytest_and_pip(tmp_path):
    write(tmp_path / "test_x.py", """
        import ctx
        def test_it():
            assert ctx.current().deadline() is not None
    """)
    r = run("-m", "ctx", "--timeout", "120", "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "test_x.py", cwd=str(tmp_path), timeout=150)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    if run("-m", "pip", "--version").returncode == 0:
        r = run("-m", "ctx", "--timeout", "120", "-m", "pip", "--version", timeout=150)
        assert r.returncode == 0 and r.stdout.startswith("pip "), r.stderr


def test_missing_targets_fail_as_python_does(tmp_path):
    r = run("-m", "ctx", "-m", "no_such_module_here", cwd=str(tmp_path))
    assert r.returncode == 1 and "No module named no_such_module_here" in r.stderr
    r = run("-m", "ctx", "-c")
    assert r.returncode == 2 and "argument expected for the -c option" in r.stderr


# ---- the script's own errors ----

@pytest.mark.parametrize("body, exc", [
    ("c, cancel = ctx.with_cancel(ctx.background())\ncancel()\nc.check()\n", "ctx.Canceled"),
    ("ctx.current().cancel()\nctx.sleep(5)\n", "ctx.Canceled"),  # it canceled its root itself
    ("with ctx.timeout(0.01):\n    ctx.sleep(5)\n", "ctx.DeadlineExceeded"),
    ("def f():\n    raise ctx.Canceled()\nf()\n", "ctx.Canceled"),
])
def test_the_scripts_own_stop_keeps_its_traceback_and_status_1(tmp_path, body, exc):
    script = write(tmp_path / "own.py", "import ctx\n" + body)
    r = run("-m", "ctx", "--timeout", "60", script)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("Traceback (most recent call last):\n")
    assert r.stderr.splitlines()[-1].startswith(exc)
    assert f'File "{script}", line' in r.stderr
    assert "ctx/__main__.py" not in r.stderr and "\nctx: " not in r.stderr  # only its frames


def test_a_stop_turned_into_another_error_shows_it_with_the_runners_status(tmp_path):
    script = write(tmp_path / "conv.py", """
        import contextlib, ctx
        try:
            while True:
                pass
        except ctx.DeadlineExceeded as e:
            with getattr(ctx, "shield", contextlib.nullcontext)():  # no stop again here
                raise RuntimeError("gave up") from e
    """)
    r = run("-m", "ctx", "--timeout", "0.2", script)
    assert r.returncode == 124
    assert "RuntimeError: gave up" in r.stderr and r.stderr.endswith("0.2 s timeout\n")


# ---- the watchdog ----

def test_kill_after_fires_with_a_stuck_after_func(tmp_path):
    script = write(tmp_path / "stuck.py", """
        import ctx, time
        c, cancel = ctx.with_cancel(ctx.background())
        ctx.after_func(c, lambda: time.sleep(60))  # holds the callback thread
        cancel()
        time.sleep(0.1)
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass  # swallows every stop
    """)
    t0 = time.monotonic()
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "0.5", script, timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 124 and "still running 0.5 s later, ended" in r.stderr, r.stderr
    assert 0.8 <= took < 10


def test_kill_after_fires_while_the_script_holds_the_gil_in_c():
    # sum() over a huge range runs in C: no bytecode, so neither the stop nor
    # a Python thread can run; the watchdog needs no GIL
    t0 = time.monotonic()
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "0.5", "-c",
            "print('in', flush=True); sum(range(10**13))", timeout=30)
    assert (r.returncode, r.stdout) == (124, "in\n"), r.stderr
    assert "still running" in r.stderr and time.monotonic() - t0 < 10


def test_a_clean_end_never_arms_the_watchdog_even_without_grace(tmp_path):
    # the root scope's own cancel at its exit is no stop of the runner's
    script = write(tmp_path / "clean.py", """
        import ctx, time
        time.sleep(0.05)
        print("done", ctx.current().done())
    """)
    for _ in range(10):
        r = run("-m", "ctx", "--timeout", "30", "--kill-after", "0", script)
        assert (r.returncode, r.stdout, r.stderr) == (0, "done False\n", "")


def test_watchdog_outlives_the_script_when_threads_keep_the_process(tmp_path):
    # stopped by the deadline, the script ends but a non-daemon thread runs
    # on: python would wait for it for ever; the watchdog ends the process
    script = write(tmp_path / "thr.py", """
        import threading, time
        threading.Thread(target=lambda: time.sleep(60)).start()
        time.sleep(60)
    """)
    t0 = time.monotonic()
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "0.5", script, timeout=30)
    assert r.returncode == 124 and "still running 0.5 s later" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 10


# ---- graceful, then hard ----

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_second_signal_ends_at_once_and_kills_run_process_groups(tmp_path, sig):
    pidf, gpidf = tmp_path / "pid", tmp_path / "gpid"
    script = write(tmp_path / "hard.py", f"""
        import ctx, threading
        cmd = "sleep 60 & echo $! > {gpidf}; echo $$ > {pidf}; wait"
        threading.Thread(target=ctx.run_process, args=(["sh", "-c", cmd], ctx.background()),
                         daemon=True).start()
        print("started", flush=True)
        with ctx.shield():  # keeps going after the first signal
            while True:
                pass
    """)
    p = start("--kill-after", "60", script)
    try:
        assert p.stdout.readline() == "started\n"
        pid, gpid = int(wait_for_file(pidf)), int(wait_for_file(gpidf))
        p.send_signal(sig)
        time.sleep(0.5)
        assert p.poll() is None  # the first one only stopped it
        t0 = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
        assert time.monotonic() - t0 < 5
    finally:
        p.kill()
    assert p.returncode == 128 + sig, err
    assert f"{signal.Signals(sig).name} again; ended at once" in err
    t0 = time.monotonic()
    while not (dead(pid) and dead(gpid)) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert dead(pid) and dead(gpid)


def test_first_signal_cancels_with_its_cause(tmp_path):
    script = write(tmp_path / "cause.py", """
        import contextlib, ctx, sys
        c = ctx.current()
        try:
            print("ready", flush=True)
            ctx.sleep(60)
        finally:
            with getattr(ctx, "shield", contextlib.nullcontext)():  # no stop again here
                print(type(c.err()).__name__, repr(ctx.cause(c)), file=sys.stderr)
    """)
    p = start(script)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 143
    assert err.startswith("Canceled SignalReceived(%d)\n" % signal.SIGTERM), err


# ---- forked children are the script's ----

def test_os_fork_child_keeps_nothing_of_the_runner(tmp_path):
    report = tmp_path / "report"
    script = write(tmp_path / "fork.py", f"""
        import ctx, os, signal, time
        pid = os.fork()
        if pid == 0:
            facts = [ctx.current() is ctx.background(),
                     signal.getsignal(signal.SIGINT) is signal.default_int_handler,
                     signal.getsignal(signal.SIGTERM) == signal.SIG_DFL]
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2:  # past the runner's deadline and grace
                pass
            with open("{report}", "w") as f:
                f.write(repr(facts) + " survived\\n")
            os._exit(0)
        while True:
            pass
    """)
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "0.5", script, timeout=30)
    assert r.returncode == 124
    assert wait_for_file(report) == "[True, True, True] survived\n"


def test_forked_child_returning_through_the_runner_has_its_own_status(tmp_path):
    script = write(tmp_path / "fork2.py", """
        import atexit, os, time
        pid = os.fork()
        if pid == 0:
            time.sleep(1)  # past the runner's deadline: not stopped
            print("child ends", flush=True)
        else:
            def reap():  # after the runner's verdict, within the grace
                _, st = os.waitpid(pid, 0)
                print("child status", os.waitstatus_to_exitcode(st), flush=True)
            atexit.register(reap)
            time.sleep(60)
    """)
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "10", script, timeout=30)
    assert r.returncode == 124, r.stderr
    assert r.stdout == "child ends\nchild status 0\n"
    assert r.stderr.count("ctx: ") == 1, r.stderr


def test_multiprocessing_fork_children_are_not_stopped(tmp_path):
    report = tmp_path / "report"
    script = write(tmp_path / "mp.py", f"""
        import ctx, multiprocessing as mp, signal, time

        def work():
            facts = [ctx.current() is ctx.background(),
                     signal.getsignal(signal.SIGTERM) == signal.SIG_DFL]
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:
                pass
            with open("{report}", "w") as f:
                f.write(repr(facts) + " survived\\n")

        if __name__ == "__main__":
            mp.set_start_method("fork")
            mp.Process(target=work).start()  # joined at exit, within the grace
            while True:
                pass
    """)
    r = run("-m", "ctx", "--timeout", "0.3", "--kill-after", "10", script, timeout=30)
    assert r.returncode == 124, r.stderr
    assert wait_for_file(report) == "[True, True] survived\n"
