# test_traps.py — issue 9: interrupt=True in the loop shapes where CPython lets
# an asynchronous exception escape its handlers (gh-108214 on 3.11/3.12,
# gh-139622 on 3.13), at module level and in functions, main and worker threads.
import os
import subprocess
import sys
import textwrap

import pytest

import ctx

PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(ctx.__file__)))

# Each shape appends what happened to R; EXPECT says what must have happened.
# After it, ctx.current() must be background() again (the scope's __exit__ ran).
SHAPES = {
    # the script, exactly (module level: a script)
    "issue": ("""
        with ctx.timeout(0.2, interrupt=True):
            try:
                while True:
                    pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    # gh-108214: the loop is the first statement of the try, on one line
    "while_true_one_line": ("""
        with ctx.timeout(T, interrupt=True):
            try:
                while True: pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    "while_1_one_line": ("""
        with ctx.timeout(T, interrupt=True):
            try:
                while 1: pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    # gh-139622 (3.13): the jump closing a `while cond:` loop is outside the try
    "while_condition": ("""
        flag = False
        with ctx.timeout(T, interrupt=True):
            try:
                while not flag: pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    "while_clock": ("""
        with ctx.timeout(T, interrupt=True):
            try:
                s = time.monotonic()
                while time.monotonic() - s < 30: pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    "for_first_in_try": ("""
        with ctx.timeout(T, interrupt=True):
            try:
                for i in itertools.count(): pass
            except ctx.DeadlineExceeded:
                R.append("caught")
    """, ["caught"]),
    "loop_first_in_with": ("""
        try:
            with ctx.timeout(T, interrupt=True):
                while True: pass
        except ctx.DeadlineExceeded:
            R.append("caught")
    """, ["caught"]),
    "finally_then_outer": ("""
        try:
            with ctx.timeout(T, interrupt=True):
                try:
                    while True: pass
                finally:
                    R.append("finally")
        except ctx.DeadlineExceeded:
            R.append("caught")
    """, ["finally", "caught"]),
    # a retry loop that swallows every stop, with no call in its handler: the
    # stop comes again at the loop's jump (its head, before the `try`, is a
    # hole in the exception table on 3.11-3.13)
    "swallow_retry": ("""
        n = 0
        try:
            with ctx.timeout(T, interrupt=True):
                while True:
                    try:
                        while True: pass
                    except Exception:
                        n += 1
        except ctx.DeadlineExceeded:
            R.append("caught")
    """, ["caught"]),
    "swallow_pass": ("""
        try:
            with ctx.timeout(T, interrupt=True):
                while True:
                    try:
                        for i in itertools.count(): pass
                    except Exception:
                        pass
        except ctx.DeadlineExceeded:
            R.append("caught")
    """, ["caught"]),
    "swallow_retry_condition": ("""
        n = 0
        try:
            with ctx.timeout(T, interrupt=True):
                while n < 10**9:
                    try:
                        x = 0
                        while x >= 0: x += 1
                    except Exception:
                        n += 1
        except ctx.DeadlineExceeded:
            R.append("caught")
    """, ["caught"]),
}

DRIVER = """
import ctx, itertools, os, runpy, sys, textwrap, threading, time
T = 0.05
shape = open(sys.argv[1]).read()

def report(where, R, err):
    ok = ctx.current() is ctx.background()
    print(where, R, err, ok, flush=True)

def module_main():
    # module level in the main thread: the file run as a script
    R = []
    err = None
    try:
        runpy.run_path(sys.argv[1], init_globals={"R": R, "T": T}, run_name="__main__")
    except BaseException as e:
        err = type(e).__name__
    report("module-main", R, err)

def function(where):
    R = []
    ns = {"ctx": ctx, "time": time, "itertools": itertools, "R": R, "T": T}
    exec("def f():\\n" + textwrap.indent(shape, "    "), ns)
    err = None
    try:
        ns["f"]()
    except BaseException as e:
        err = type(e).__name__
    report(where, R, err)

def module_thread():
    R = []
    err = []
    def run():
        try:
            runpy.run_path(sys.argv[1], init_globals={"R": R, "T": T})
        except BaseException as e:
            err.append(type(e).__name__)
        report("module-thread", R, err[0] if err else None)
    t = threading.Thread(target=run)
    t.start()
    t.join(20)

module_main()
function("function-main")
module_thread()
t = threading.Thread(target=function, args=("function-thread",))
t.start()
t.join(20)
"""


@pytest.mark.parametrize("name", list(SHAPES))
def test_interrupt_in_cpython_trap_shapes(tmp_path, name):
    body, expect = SHAPES[name]
    shape = tmp_path / "shape.py"
    shape.write_text("import ctx, itertools, time\n" + textwrap.dedent(body))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    r = subprocess.run([sys.executable, str(driver), str(shape)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=PYPATH))
    want = "".join(f"{w} {expect!r} None True\n" for w in
                   ("module-main", "function-main", "module-thread", "function-thread"))
    assert (r.returncode, r.stdout, r.stderr) == (0, want, ""), r.stderr


@pytest.mark.parametrize("name", ["issue", "while_condition", "swallow_retry"])
def test_trap_shape_as_a_top_level_script(tmp_path, name):
    # the script itself, as `python script.py` runs it
    body, expect = SHAPES[name]
    script = tmp_path / "script.py"
    script.write_text("import ctx, itertools, time\nR = []\nT = 0.05\n" + textwrap.dedent(body)
                      + "print(R, ctx.current() is ctx.background())\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=PYPATH))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{expect!r} True\n", "")
