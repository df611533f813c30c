# test_cycles.py — issue 9: reference cycles through a context's values and
# cause are collected (the core's ctx_visit feeds tp_traverse), and what the
# collector must not free stays intact.
import gc
import weakref

import pytest

import ctx


class Holder:
    pass


class Boom(Exception):
    pass


def collected(ref):
    gc.collect()
    return ref() is None


def test_value_that_refers_to_its_context():
    def request():
        h = Holder()
        c = ctx.with_value(ctx.background(), "holder", h)
        h.c = c
        return weakref.ref(h)
    assert collected(request())


def test_cause_caught_in_the_contexts_own_frame():
    def request():
        c, cancel = ctx.with_cancel_cause(ctx.background())
        try:
            raise Boom("request failed")
        except Exception as e:
            cancel(e)       # e's traceback holds this frame, which holds c
            return weakref.ref(e)
    assert collected(request())


def test_cause_given_to_a_scope():
    def request():
        with ctx.timeout(30) as c:
            try:
                raise Boom("request failed")
            except Exception as e:
                c.cancel(e)
                return weakref.ref(e)
    assert collected(request())


@pytest.mark.parametrize("cancel_first", [False, True])
def test_timeout_cause_that_refers_to_its_context(cancel_first):
    def request():
        err = Boom("slow")
        c, cancel = ctx.with_timeout_cause(ctx.background(), 30, err)
        err.c = c
        if cancel_first:
            cancel()
        return weakref.ref(err)
    assert collected(request())


def test_shared_parent_keeps_its_values_and_cause():
    # a value and a cause owned by a context that a live child still uses
    # are reachable: the collector must neither free nor clear them
    h = Holder()
    parent, cancel = ctx.with_cancel_cause(ctx.with_value(ctx.background(), "h", h))
    h.c = parent
    child = ctx.with_value(parent, "k", 1)
    err = Boom("kept")
    err.c = parent
    cancel(err)
    del h, parent, cancel, err
    gc.collect()
    held = child.value("h")
    assert isinstance(held, Holder) and held.c.value("h") is held
    assert isinstance(ctx.cause(child), Boom) and str(ctx.cause(child)) == "kept"
    assert ctx.cause(child).c.done()


def test_many_requests_leave_nothing_behind():
    refs = []
    for i in range(2000):
        c, cancel = ctx.with_cancel_cause(ctx.background())
        h = Holder()
        v = ctx.with_value(c, "holder", h)
        h.c = v
        refs.append(weakref.ref(h))
        try:
            raise Boom(str(i))
        except Exception as e:
            cancel(e)
            refs.append(weakref.ref(e))
        del c, cancel, h, v
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
