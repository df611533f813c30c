# test_go.py — cases adapted from Go's context tests: propagation, deadlines,
# values, the Cause table, AfterFunc rules, simultaneous cancels, layers.
import threading
import time

import pytest

import ctx

BG = ctx.background()


def test_background_todo():
    assert ctx.background() is ctx.background()
    assert ctx.todo() is ctx.todo()
    assert str(ctx.background()) == "context.Background"
    assert str(ctx.todo()) == "context.TODO"
    for c in (ctx.background(), ctx.todo()):
        assert not c.done()
        assert c.err() is None and c.cause() is None
        assert c.deadline() is None and c.remaining() is None
        assert c.value("k") is None


def test_with_cancel_propagates_down_not_up():
    parent, pcancel = ctx.with_cancel(BG)
    child, ccancel = ctx.with_cancel(parent)
    grand, _ = ctx.with_cancel(child)
    assert str(child) == "context.Background.WithCancel.WithCancel"
    ccancel()
    assert child.done() and grand.done() and not parent.done()
    assert isinstance(grand.err(), ctx.Canceled)
    assert str(grand.err()) == "context canceled"
    pcancel()
    assert parent.done()


def test_cancel_idempotent_and_first_wins():
    c, cancel = ctx.with_cancel_cause(BG)
    first = ValueError("first")
    cancel(first)
    cancel(KeyError("second"))
    cancel()
    assert c.cause() is first
    assert isinstance(c.err(), ctx.Canceled)


def test_child_of_done_parent_is_done_at_creation():
    p, cancel = ctx.with_cancel_cause(BG)
    boom = RuntimeError("boom")
    cancel(boom)
    for make in (lambda: ctx.with_cancel(p)[0], lambda: ctx.with_timeout(p, 10)[0],
                 lambda: ctx.with_deadline(p, time.time() + 10)[0]):
        c = make()
        assert c.done() and isinstance(c.err(), ctx.Canceled)
        assert ctx.cause(c) is boom


def test_canceled_child_leaves_parent():
    p, pcancel = ctx.with_cancel(BG)
    kids = [ctx.with_cancel(p) for _ in range(5)]
    assert ctx._ctx._num_children(p) == 5
    for _, cancel in kids[:3]:
        cancel()
    assert ctx._ctx._num_children(p) == 2
    del kids
    import gc
    gc.collect()
    assert ctx._ctx._num_children(p) == 0
    pcancel()


def test_deadline_fires_and_never_early():
    t0 = time.monotonic()
    c, cancel = ctx.with_timeout(BG, 0.05)
    assert not c.done()
    assert c.wait(5)
    assert time.monotonic() - t0 >= 0.05
    assert isinstance(c.err(), ctx.DeadlineExceeded)
    assert isinstance(c.err(), TimeoutError)
    assert str(c.err()) == "context deadline exceeded"
    assert c.cause() is c.err()
    assert c.remaining() == 0.0
    cancel()
    assert isinstance(c.err(), ctx.DeadlineExceeded)


def test_deadline_reads_back_exactly():
    when = time.time() + 1000.123456
    c, cancel = ctx.with_deadline(BG, when)
    assert c.deadline() == when
    child, _ = ctx.with_cancel(c)
    assert child.deadline() == when
    assert 999 < c.remaining() <= 1000.2
    cancel()


def test_later_deadline_is_ignored():
    p, pc = ctx.with_timeout(BG, 100)
    c, cc = ctx.with_timeout(p, 1000)
    assert c.deadline() == p.deadline()
    assert str(c).endswith(".WithCancel")
    inf, _ = ctx.with_timeout(BG, float("inf"))
    assert inf.deadline() is None and str(inf) == "context.Background.WithCancel"
    pc()


def test_zero_and_negative_timeouts_done_at_creation():
    for t in (0, -1, -0.5, float("-inf")):
        c, _ = ctx.with_timeout(BG, t)
        assert c.done() and isinstance(c.err(), ctx.DeadlineExceeded)
    c, _ = ctx.with_deadline(BG, time.time() - 1)
    assert c.done() and isinstance(c.err(), ctx.DeadlineExceeded)


def test_timeout_parent_deadline_flows_to_child():
    p, _ = ctx.with_timeout(BG, 0.03)
    c, _ = ctx.with_cancel(p)
    assert c.wait(5)
    assert isinstance(c.err(), ctx.DeadlineExceeded)


def test_values():
    k1, k2 = object(), "k2"
    c1 = ctx.with_value(BG, k1, "c1k1")
    c2 = ctx.with_value(c1, k2, "c2k2")
    c3 = ctx.with_value(c2, k1, None)  # a None binding shadows
    assert c1.value(k1) == "c1k1" and c1.value(k2) is None
    assert c2.value(k1) == "c1k1" and c2.value(k2) == "c2k2"
    assert c3.value(k1) is None and c3.value(k1, "dflt") is None
    assert c3.value("missing", "dflt") == "dflt"
    assert c3.value(key=k2) == "c2k2"
    # keys compare with ==
    c4 = ctx.with_value(BG, (1, 2), "tuple")
    assert c4.value((1, 2)) == "tuple"
    assert str(c2) == "context.Background.WithValue(%r, c1k1).WithValue(k2, c2k2)" % (k1,)


def test_values_through_cancel_layers():
    c = ctx.with_value(BG, "a", 1)
    c, cancel = ctx.with_cancel(c)
    c, _ = ctx.with_timeout(c, 100)
    c = ctx.with_value(c, "b", 2)
    assert c.value("a") == 1 and c.value("b") == 2
    cancel()
    assert c.done() and c.value("a") == 1


def test_without_cancel():
    p, cancel = ctx.with_timeout(ctx.with_value(BG, "k", "v"), 100)
    w = ctx.without_cancel(p)
    assert str(w).endswith(".WithoutCancel")
    cancel()
    assert p.done() and not w.done()
    assert w.err() is None and w.cause() is None and w.deadline() is None
    assert w.value("k") == "v"
    c, cc = ctx.with_cancel(w)
    assert not c.done()
    cc()


@pytest.mark.parametrize("name", ["cancel", "cancel_cause", "timeout", "timeout_cause",
                                  "deadline_cause", "parent", "parent_cause"])
def test_cause_table(name):
    cause = ValueError("why")
    if name == "cancel":
        c, cancel = ctx.with_cancel(BG)
        cancel()
        want_err, want_cause = ctx.Canceled, None
    elif name == "cancel_cause":
        c, cancel = ctx.with_cancel_cause(BG)
        cancel(cause)
        want_err, want_cause = ctx.Canceled, cause
    elif name == "timeout":
        c, cancel = ctx.with_timeout(BG, 0)
        want_err, want_cause = ctx.DeadlineExceeded, None
    elif name == "timeout_cause":
        c, cancel = ctx.with_timeout_cause(BG, 0.01, cause)
        c.wait()
        want_err, want_cause = ctx.DeadlineExceeded, cause
    elif name == "deadline_cause":
        c, cancel = ctx.with_deadline_cause(BG, time.time() + 100, cause)
        cancel()  # its cancel does not set the cause
        want_err, want_cause = ctx.Canceled, None
    elif name == "parent":
        p, pcancel = ctx.with_cancel_cause(BG)
        c, cancel = ctx.with_cancel_cause(p)
        pcancel(cause)
        cancel(KeyError("late"))
        want_err, want_cause = ctx.Canceled, cause
    else:
        p, pcancel = ctx.with_timeout_cause(BG, 0.01, cause)
        c, cancel = ctx.with_cancel(p)
        c.wait()
        want_err, want_cause = ctx.DeadlineExceeded, cause
    assert type(c.err()) is want_err
    got = ctx.cause(c)
    if want_cause is None:
        assert got is c.err()
    else:
        assert got is want_cause
        assert c.err().__cause__ is want_cause


def test_cancel_cause_none_records_plain_error():
    c, cancel = ctx.with_cancel_cause(BG)
    cancel(None)
    assert c.cause() is c.err()
    assert c.cause() is not None and ctx.cause(ctx.background()) is None


def test_after_func_runs_once_after_done():
    c, cancel = ctx.with_cancel(BG)
    ran = []
    ev = threading.Event()
    stop = ctx.after_func(c, lambda: (ran.append(threading.current_thread().name), ev.set()))
    assert not ran
    cancel()
    assert ev.wait(5)
    time.sleep(0.01)
    assert len(ran) == 1 and ran[0] != threading.current_thread().name
    assert stop() is False


def test_after_func_stop():
    c, cancel = ctx.with_cancel(BG)
    ran = []
    stop = ctx.after_func(c, lambda: ran.append(1))
    assert stop() is True
    assert stop() is False
    cancel()
    time.sleep(0.05)
    assert ran == []


def test_after_func_on_done_context_runs_at_once():
    c, cancel = ctx.with_cancel(BG)
    cancel()
    ev = threading.Event()
    ctx.after_func(c, ev.set)
    assert ev.wait(5)


def test_after_func_keeps_context_alive():
    ev = threading.Event()
    c, cancel = ctx.with_timeout(BG, 0.02)
    ctx.after_func(c, ev.set)
    del c
    import gc
    gc.collect()
    assert ev.wait(5)


def test_after_func_can_call_ctx():
    c, cancel = ctx.with_cancel(BG)
    d, dcancel = ctx.with_cancel(BG)
    ctx.after_func(c, dcancel)  # a callback that cancels another context
    ctx.after_func(d, lambda: ctx.with_cancel(c)[1]())
    cancel()
    assert d.wait(5)


def test_simultaneous_cancels():
    for _ in range(50):
        root, rcancel = ctx.with_cancel_cause(BG)
        kids = [ctx.with_cancel_cause(root) for _ in range(10)]
        barrier = threading.Barrier(3)

        def canceller(fn, arg):
            barrier.wait()
            fn(arg)

        ts = [threading.Thread(target=canceller, args=(rcancel, ValueError("root"))),
              threading.Thread(target=canceller, args=(kids[0][1], ValueError("kid")))]
        for t in ts:
            t.start()
        barrier.wait()
        for t in ts:
            t.join()
        assert all(k.done() for k, _ in kids)
        assert str(kids[0][0].cause()) in ("root", "kid")
        assert all(str(k.cause()) == "root" for k, _ in kids[1:])


def test_interlocked_cancels():
    # each context's after_func cancels the other: no deadlock, both done
    for _ in range(100):
        a, ca = ctx.with_cancel(BG)
        b, cb = ctx.with_cancel(BG)
        ctx.after_func(a, cb)
        ctx.after_func(b, ca)
        t = threading.Thread(target=ca)
        t.start()
        cb()
        t.join()
        assert a.wait(5) and b.wait(5)


def test_layers():
    # a deep mixed chain: cancel in the middle ends everything below only
    c = BG
    cancels = []
    for i in range(60):
        kind = i % 4
        if kind == 0:
            c, cancel = ctx.with_cancel(c)
            cancels.append((c, cancel))
        elif kind == 1:
            c, cancel = ctx.with_timeout(c, 1000 - i)
            cancels.append((c, cancel))
        elif kind == 2:
            c = ctx.with_value(c, i, i)
        else:
            c = ctx.without_cancel(c) if i == 3 else ctx.with_value(c, "x", i)
    mid = len(cancels) // 2
    cancels[mid][1]()
    assert c.done()
    assert not any(k.done() for k, _ in cancels[:mid])
    assert all(k.done() for k, _ in cancels[mid:])
    cancels[0][1]()
    assert c.value(2) == 2 and c.value(58) == 58
