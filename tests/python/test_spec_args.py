# test_spec_args.py — SPEC section 2 argument handling: parameters by the names
# the SPEC gives them, bools and out-of-range ints as times, None as a key.
import math
import threading

import pytest

import ctx

BG = ctx.background()


def test_go_functions_take_spec_parameter_names_as_keywords():
    c, cancel = ctx.with_cancel(parent=BG)
    assert str(c) == "context.Background.WithCancel"
    c, cancel = ctx.with_cancel_cause(parent=BG)
    e = ValueError("e")
    cancel(cause=e)
    assert ctx.cause(c=c) is e
    c, _ = ctx.with_timeout(BG, seconds=100)
    assert 99 < c.remaining() <= 100
    c, _ = ctx.with_deadline(parent=BG, when=4102444800.5)
    assert c.deadline() == 4102444800.5
    c, _ = ctx.with_timeout_cause(BG, seconds=0, cause=e)
    assert c.cause() is e
    c, _ = ctx.with_deadline_cause(BG, when=1.0, cause=e)
    assert c.cause() is e and isinstance(c.err(), ctx.DeadlineExceeded)
    c = ctx.with_value(BG, key="k", value="v")
    assert c.value("k") == "v"
    assert ctx.without_cancel(parent=c).value("k") == "v"
    done = threading.Event()
    d, dcancel = ctx.with_cancel(BG)
    stop = ctx.after_func(c=d, fn=done.set)
    dcancel()
    assert done.wait(5) and stop() is False


@pytest.mark.parametrize("call", [
    lambda: ctx.with_cancel(BG, parent=BG),
    lambda: ctx.with_cancel(parnet=BG),
    lambda: ctx.with_timeout(BG),
    lambda: ctx.with_timeout(BG, 1, seconds=1),
    lambda: ctx.with_timeout_cause(BG, 1),
    lambda: ctx.with_value(BG, "k"),
    lambda: ctx.after_func(BG, fn=print, c=BG),
    lambda: ctx.cause(),
    lambda: ctx.cause(BG, BG),
])
def test_bad_keywords_and_arity_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize("call", [
    lambda: ctx.with_timeout(BG, True),
    lambda: ctx.with_deadline(BG, False),
    lambda: ctx.timeout(True),
    lambda: ctx.deadline(True),
    lambda: ctx.sleep(True),
    lambda: BG.wait(True),
])
def test_bool_is_not_a_time(call):
    # timeout(True) meaning one second is a misplaced flag, not a duration
    with pytest.raises(TypeError):
        call()


def test_huge_ints_saturate_like_huge_floats():
    c, _ = ctx.with_timeout(BG, 10 ** 400)
    assert c.deadline() is None and str(c) == "context.Background.WithCancel"
    c, _ = ctx.with_deadline(BG, 10 ** 400)
    assert c.deadline() is None and not c.done()
    c, _ = ctx.with_timeout(BG, -10 ** 400)
    assert isinstance(c.err(), ctx.DeadlineExceeded)
    c, _ = ctx.with_deadline(BG, -10 ** 400)
    assert isinstance(c.err(), ctx.DeadlineExceeded)
    assert BG.wait(-10 ** 400) is False
    with ctx.timeout(10 ** 400) as c:
        assert c.deadline() is None
    with pytest.raises(ValueError):
        ctx.with_timeout(BG, math.nan)


def test_value_none_key_is_a_type_error():
    c = ctx.with_value(BG, "k", None)
    with pytest.raises(TypeError):
        c.value(None)
    with pytest.raises(TypeError):
        c.value(None, "default")
    with pytest.raises(TypeError):
        ctx.with_value(BG, None, 1)
    assert c.value("k", "default") is None  # a binding to None is a binding


# The SPEC's signatures, as inspect sees them (keyword names matter: callers
# may pass any parameter by name).
SPEC_SIGNATURES = {
    "background": "()", "todo": "()", "current": "()",
    "with_cancel": "(parent)", "with_cancel_cause": "(parent)",
    "with_deadline": "(parent, when)", "with_deadline_cause": "(parent, when, cause)",
    "with_timeout": "(parent, seconds)", "with_timeout_cause": "(parent, seconds, cause)",
    "with_value": "(parent, key, value)", "without_cancel": "(parent)",
    "after_func": "(c, fn)", "cause": "(c)",
    "scope": "(parent=None)",
    "timeout": "(seconds, parent=None, *, interrupt=False)",
    "deadline": "(when, parent=None, *, interrupt=False)",
    "sleep": "(seconds, c=None)",
}
SPEC_METHODS = {
    "done": "(self, /)", "wait": "(self, /, timeout=None)", "err": "(self, /)",
    "cause": "(self, /)", "check": "(self, /)", "deadline": "(self, /)",
    "remaining": "(self, /)", "value": "(self, /, key, default=None)", "fileno": "(self, /)",
}


def test_signatures_are_the_spec_ones():
    import inspect
    for name, sig in SPEC_SIGNATURES.items():
        assert str(inspect.signature(getattr(ctx, name))) == sig, name
    for name, sig in SPEC_METHODS.items():
        assert str(inspect.signature(getattr(ctx.Context, name))) == sig, name
    assert str(inspect.signature(ctx.ScopeContext.cancel)) == "(self, /, cause=None)"


def test_stubs_name_the_runtime_parameters():
    import ast
    import inspect
    import os
    here = os.path.dirname(ctx.__file__)
    tree = ast.parse(open(os.path.join(here, "__init__.pyi")).read())
    # the C type's methods are declared in the extension's stub
    ext = ast.parse(open(os.path.join(here, "_ctx.pyi")).read())

    def params(fn):
        a = fn.args
        return ([p.arg for p in a.args if p.arg != "self"],
                [p.arg for p in a.kwonlyargs])
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for name in list(SPEC_SIGNATURES) + ["run_process"]:
        sig = inspect.signature(getattr(ctx, name))
        pos = [p.name for p in sig.parameters.values()
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        kwo = [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY]
        assert params(funcs[name]) == (pos, kwo), name
    ext_classes = {n.name: n for n in ext.body if isinstance(n, ast.ClassDef)}
    methods = {n.name: n for cls in (ext_classes["Context"], classes["Context"])
               for n in cls.body if isinstance(n, ast.FunctionDef)}
    for name in SPEC_METHODS:
        sig = inspect.signature(getattr(ctx.Context, name))
        pos = [p.name for p in sig.parameters.values() if p.name != "self"]
        assert params(methods[name]) == (pos, []), name


def test_check_raises_err_without_stale_context():
    c, cancel = ctx.with_cancel(BG)
    cancel()
    try:
        raise KeyError("handled elsewhere")
    except KeyError:
        with pytest.raises(ctx.Canceled) as first:
            c.check()
    assert first.value is c.err()
    with pytest.raises(ctx.Canceled) as again:
        c.check()
    assert again.value is c.err()
    assert again.value.__context__ is None and again.value.__cause__ is None


@pytest.mark.parametrize("grace, exc", [("1", TypeError), (None, TypeError),
                                        (True, TypeError), (float("nan"), ValueError)])
def test_run_process_checks_grace_before_running(tmp_path, grace, exc):
    marker = tmp_path / "ran"
    with pytest.raises(exc):
        ctx.run_process(["touch", str(marker)], grace=grace)
    assert not marker.exists()


def test_scope_decorator_rejects_non_callables_at_once():
    for make in (ctx.scope, lambda: ctx.timeout(1), lambda: ctx.deadline(4102444800.0)):
        with pytest.raises(TypeError):
            make()(42)
