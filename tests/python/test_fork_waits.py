# test_fork_waits.py — issue 9/11: interrupting scopes across fork(), waits
# woken from any number of nested scopes, and the wake path the build chose.
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ctx

PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(ctx.__file__)))


def run_py(code, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=PYPATH))


def test_fork_other_threads_scopes_never_fire_in_child():
    # 9 threads of the parent sit in interrupting scopes whose deadlines pass
    # after the fork; the child's own threads reuse their thread ids and must
    # never get a stray stop, nor ctx's restarted callback threads
    r = run_py("""
        import ctx, os, sys, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        ready = threading.Barrier(10)
        def parent_worker():
            try:
                with ctx.timeout(0.3, interrupt=True):
                    ready.wait()
                    ctx.sleep(10, ctx.background())
            except ctx.DeadlineExceeded:
                pass
        ts = [threading.Thread(target=parent_worker) for _ in range(9)]
        for t in ts:
            t.start()
        ready.wait()
        pid = -1
        try:
            with ctx.timeout(0.3, interrupt=True):  # the forking thread's own scope
                pid = os.fork()
                while True:  # stopped in the parent and in the child alike
                    pass
        except ctx.DeadlineExceeded:
            pass
        if pid == 0:
            code = 0
            try:
                errors = []
                def child_worker():
                    try:
                        t_end = time.monotonic() + 0.8
                        while time.monotonic() < t_end:
                            pass
                    except BaseException as e:
                        errors.append(repr(e))
                cts = [threading.Thread(target=child_worker) for _ in range(9)]
                for t in cts:
                    t.start()
                for t in cts:
                    t.join()
                # ctx's own threads restarted in the child still run callbacks
                c, cancel = ctx.with_cancel(ctx.background())
                ev = threading.Event()
                ctx.after_func(c, ev.set)
                cancel()
                if errors or not ev.wait(5):
                    print("child:", errors, ev.is_set(), flush=True)
                    code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        for t in ts:
            t.join()
        print(os.waitstatus_to_exitcode(status))
    """)
    assert (r.returncode, r.stdout, r.stderr) == (0, "0\n", "")


def test_fork_from_worker_thread_child_is_clean():
    r = run_py("""
        import ctx, os, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        out = []
        def work():
            pid = -1
            try:
                with ctx.timeout(0.2, interrupt=True):
                    pid = os.fork()
                    # the forking thread is the child's main thread: its scope
                    # still stops it there
                    while True:
                        pass
            except ctx.DeadlineExceeded:
                pass
            if pid == 0:
                try:
                    t_end = time.monotonic() + 0.3
                    while time.monotonic() < t_end:
                        pass
                finally:
                    os._exit(0)
            out.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        with ctx.timeout(10, interrupt=True):  # the main thread's, untouched
            t = threading.Thread(target=work)
            t.start()
            t.join()
        print(out)
    """)
    assert (r.returncode, r.stdout, r.stderr) == (0, "[0]\n", "")


@pytest.mark.parametrize("which", ["outermost", "innermost"])
@pytest.mark.parametrize("depth", [1, 9, 40])
def test_wait_in_many_nested_interrupt_scopes_is_woken(depth, which):
    # a thread waits inside `depth` nested interrupting scopes (each with a
    # parent of its own); the one that ends must wake it, whichever it is
    other, cancel_other = ctx.with_cancel(ctx.background())
    out = []
    ready = []

    def work():
        scopes = [ctx.timeout(100, ctx.background(), interrupt=True) for _ in range(depth)]
        cs = [s.__enter__() for s in scopes]
        try:
            ready.append(cs[0] if which == "outermost" else cs[-1])
            other.wait()
        except ctx.Canceled:
            out.append(time.monotonic())
        finally:
            for s in reversed(scopes):
                try:  # leaving an inner scope raises the ended outer one's stop
                    s.__exit__(None, None, None)
                except ctx.Canceled:
                    pass

    t = threading.Thread(target=work)
    t.start()
    t_end = time.monotonic() + 5
    while not ready and time.monotonic() < t_end:
        time.sleep(0.01)
    time.sleep(0.1)
    t0 = time.monotonic()
    ready[0].cancel()
    t.join(5)
    cancel_other()
    assert out and out[0] - t0 < 1


def test_wake_path_of_this_build():
    # CI runs the suite again on the portable build: prove it is that build
    want = os.environ.get("CTX_EXPECT_WAKE")
    got = ctx._ctx._wake_path()
    assert got in ("linux-timer", "posix-signal")
    if want:
        assert got == want
    elif sys.platform.startswith("linux"):
        assert got == "linux-timer"


def test_main_thread_interrupt_without_real_time_signals():
    # the portable path signals the main thread from the core's timer thread
    # with a standard signal: a blocking call and a busy loop both stop
    r = run_py("""
        import ctx, signal, time
        t0 = time.monotonic()
        try:
            with ctx.timeout(0.05, interrupt=True):
                time.sleep(10)
        except ctx.DeadlineExceeded:
            pass
        try:
            with ctx.timeout(0.05, interrupt=True):
                while True:
                    pass
        except ctx.DeadlineExceeded:
            pass
        sig = signal.SIGURG if ctx._ctx._wake_path() == "posix-signal" else signal.SIGRTMAX
        print(time.monotonic() - t0 < 3, signal.getsignal(sig) is ctx._ctx._wake)
    """)
    assert (r.returncode, r.stdout, r.stderr) == (0, "True True\n", "")
