# test_usability.py — issue 9, "smaller things users hit": str/repr that never
# fail, after_funcs run before exit, __version__, docstrings, stubs, metadata.
import inspect
import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib

import pytest

import ctx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
PYPATH = os.path.join(ROOT, "python")
BG = ctx.background()


def run_py(code, timeout=30):
    env = dict(os.environ, PYTHONPATH=PYPATH)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- str(c), repr(c) ----

def test_str_escapes_nul_characters_instead_of_truncating():
    c = ctx.with_value(BG, "k\x00ey", "v\x00al")
    assert str(c) == "context.Background.WithValue(k\\x00ey, v\\x00al)"
    assert repr(c) == "<ctx.Context context.Background.WithValue(k\\x00ey, v\\x00al)>"


def test_str_escapes_lone_surrogates_instead_of_raising():
    c = ctx.with_value(ctx.with_value(BG, "\udc80", 1), "k", "caf\xe9 \ud800!")
    assert str(c) == "context.Background.WithValue(\\udc80, 1).WithValue(k, caf\xe9 \\ud800!)"
    assert repr(c).startswith("<ctx.Context context.Background.WithValue(\\udc80")


def test_str_survives_a_failing_or_odd_repr():
    class Bad:
        def __repr__(self):
            raise RuntimeError("no repr")

    class Nul:
        def __repr__(self):
            return "a\x00b\udcff"
    c = ctx.with_value(ctx.with_value(BG, Bad(), "x"), "k", Nul())
    s = str(c)
    assert re.fullmatch(r"context\.Background\.WithValue\(<.*Bad object at 0x[0-9a-f]+>, x\)"
                        r"\.WithValue\(k, a\\x00b\\udcff\)", s), s
    assert repr(c) == "<ctx.Context %s>" % s


# ---- after_func at interpreter exit ----

def test_readme_after_func_example_prints_cleanup():
    r = run_py("""
        import threading, ctx
        c, cancel = ctx.with_cancel_cause(ctx.background())
        threading.Timer(0.1, cancel, args=(RuntimeError("shutting down"),)).start()
        c.wait()
        print(c.err(), ctx.cause(c))
        stop = ctx.after_func(c, lambda: print("cleanup"))
    """)
    assert (r.returncode, r.stdout, r.stderr) == (0, "context canceled shutting down\ncleanup\n", "")


def test_after_funcs_queued_before_exit_run_with_their_followers():
    r = run_py("""
        import ctx, sys, time
        c, cancel = ctx.with_cancel(ctx.background())
        d, cancel_d = ctx.with_cancel(ctx.background())
        ctx.after_func(c, lambda: time.sleep(0.2))   # holds the others up
        for i in range(3):
            ctx.after_func(c, lambda i=i: print("first", i))
        ctx.after_func(d, lambda: print("follower"))  # its context ends in a callback
        ctx.after_func(c, cancel_d)
        cancel()
        sys.exit(3)
    """)
    assert r.returncode == 3 and r.stderr == ""
    assert sorted(r.stdout.splitlines()) == ["first 0", "first 1", "first 2", "follower"]


def test_exit_waits_for_after_funcs_at_most_about_a_second():
    t0 = time.monotonic()
    r = run_py("""
        import ctx, time
        c, cancel = ctx.with_cancel(ctx.background())
        ctx.after_func(c, lambda: (print("started", flush=True), time.sleep(30)))
        live, _ = ctx.with_cancel(ctx.background())
        ctx.after_func(live, lambda: print("never: its context did not end"))
        cancel()
    """)
    took = time.monotonic() - t0
    assert (r.returncode, r.stdout, r.stderr) == (0, "started\n", "")
    assert took < 10, took  # the bound is 1 s; start-up on a loaded machine is the rest


# ---- version, names, stubs, metadata ----

def test_version_comes_from_the_core_header():
    with open(os.path.join(ROOT, "core", "ctx.h")) as f:
        want = re.search(r'#define CTX_VERSION_STRING "([^"]+)"', f.read()).group(1)
    assert ctx.__version__ == want == ctx._ctx.__version__


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(ctx) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(ctx, n))}
    assert sorted(ctx.__all__) == sorted(public - modules)
    for n in ctx.__all__:
        assert hasattr(ctx, n)


def test_time_aliases_exist_at_runtime():
    import datetime
    from typing import get_args
    assert set(get_args(ctx.Seconds)) == {int, float, datetime.timedelta}
    assert set(get_args(ctx.When)) == {int, float, datetime.datetime}


def test_stubs_match_the_runtime():
    # the same check as `make test-python-typing`, for runs outside make
    pytest.importorskip("mypy.stubtest")
    env = dict(os.environ, PYTHONPATH=PYPATH)
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "ctx", "--ignore-disjoint-bases",
                        "--allowlist", os.path.join(HERE, "stubtest-allowlist.txt")],
                       env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_requires_python_is_what_builds():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    assert meta["project"]["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)


# ---- docstrings ----

def _doc(obj):
    return inspect.getdoc(obj) or ""


@pytest.mark.parametrize("name", ["scope", "timeout", "deadline"])
def test_scope_docstrings_explain_every_use(name):
    d = _doc(getattr(ctx, name))
    for word in ["parent", "interrupt", "async with", "@ctx.", "decorat", "ctx.Canceled",
                 "TypeError", "ctx.current()", "shield"]:
        if name == "scope" and word in ("interrupt", "shield"):
            continue
        assert word in d, (name, word)
    if name != "scope":
        assert "ctx.DeadlineExceeded" in d and "ValueError" in d
    assert inspect.signature(getattr(ctx, name))  # help() shows the parameters


def test_every_public_callable_has_a_real_docstring():
    short = []
    for n in ctx.__all__:
        obj = getattr(ctx, n)
        if n in ("Seconds", "When"):
            continue
        if len(_doc(obj)) < 60:
            short.append(n)
        if inspect.isclass(obj):
            for m, v in vars(obj).items():
                if not m.startswith("_") and callable(v) and len(_doc(v)) < 40:
                    short.append(n + "." + m)
    assert short == []


@pytest.mark.parametrize("name", ["with_timeout", "with_deadline", "sleep", "run_process"])
def test_time_taking_functions_document_their_errors(name):
    d = _doc(getattr(ctx, name))
    assert "TypeError" in d or "ValueError" in d or "raises" in d.lower(), d
