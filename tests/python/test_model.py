# test_model.py — a Hypothesis state machine driving random operations on real
# contexts and on a small pure-Python model of SPEC section 1, comparing all.
import re
import threading

from hypothesis import settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import ctx

KEYS = [1, 2, "k"]
TIMEOUTS = [-1, 0, 1000, 2000, float("inf")]


class Node:
    """The model of one context."""

    def __init__(self, real, parent, kind, token, cancel=None):
        self.real, self.parent, self.kind, self.token = real, parent, kind, token
        self.cancel = cancel          # the real cancel function, if any
        self.err = None               # "canceled" | "deadline" for cancelable nodes
        self.cause = None
        self.children = []
        self.key = self.val = None
        self.deadline_owner = parent.deadline_owner if parent else None
        if parent:
            parent.children.append(self)

    @property
    def cancelable(self):
        return self.kind in ("cancel", "deadline")

    def state(self):
        """(err, cause) as the model sees it: value nodes mirror their parent."""
        n = self
        while n is not None:
            if n.cancelable:
                return n.err, n.cause
            if n.kind in ("without", "root"):
                return None, None
            n = n.parent
        return None, None

    def end(self, err, cause):
        """Ends this node and its descendants (first cancellation wins)."""
        stack = [self]
        while stack:
            n = stack.pop()
            if n.cancelable:
                if n.err is not None:
                    continue
                n.err, n.cause = err, cause
            for k in n.children:
                if k.kind != "without":
                    stack.append(k)

    def value(self, key):
        n = self
        while n is not None:
            if n.kind == "value" and n.key == key:
                return n.val
            n = n.parent
        return None

    def string(self):
        if self.parent is None:
            return "context.Background"
        return self.parent.string() + self.token


def normalize(s):
    return re.sub(r"\.WithDeadline\([^\[]*\[[^\]]*\]\)", ".WithDeadline()", s)


class ContextMachine(RuleBasedStateMachine):
    nodes = Bundle("nodes")
    regs = Bundle("regs")

    def __init__(self):
        super().__init__()
        self.root = Node(ctx.background(), None, "root", "")
        self.all = [self.root]
        self.ran = []            # indexes of callbacks that ran (dispatcher thread)
        self.expected = {}       # reg index -> model node
        self.stopped = set()
        self.stop_won = set()     # regs whose stop() prevented the callback
        self.lock = threading.Lock()

    @rule(target=nodes)
    def root_node(self):
        return self.root

    def _add(self, n, ended=None):
        self.all.append(n)
        err, cause = n.parent.state()
        if n.cancelable and err is not None:
            n.err, n.cause = err, cause  # created under a done parent
        elif ended is not None:
            n.err, n.cause = ended
        return n

    @rule(target=nodes, p=nodes, with_cause=st.booleans())
    def with_cancel(self, p, with_cause):
        f = ctx.with_cancel_cause if with_cause else ctx.with_cancel
        c, cancel = f(p.real)
        n = Node(c, p, "cancel", ".WithCancel", cancel)
        n.takes_cause = with_cause
        return self._add(n)

    @rule(target=nodes, p=nodes, t=st.sampled_from(TIMEOUTS), with_cause=st.booleans())
    def with_timeout(self, p, t, with_cause):
        cause = ValueError("deadline cause") if with_cause else None
        if with_cause:
            c, cancel = ctx.with_timeout_cause(p.real, t, cause)
        else:
            c, cancel = ctx.with_timeout(p.real, t)
        # a deadline later than (or, made later, equal to) the parent's is ignored
        own = t != float("inf") and (p.deadline_owner is None or p.deadline_owner.tval > t)
        if own:
            n = Node(c, p, "deadline", ".WithDeadline()", cancel)
            n.deadline_owner = n
            n.tval = t
        else:
            n = Node(c, p, "cancel", ".WithCancel", cancel)
        n.takes_cause = False
        ended = ("deadline", cause) if own and t <= 0 else None
        return self._add(n, ended)

    @rule(target=nodes, p=nodes, key=st.sampled_from(KEYS), val=st.integers(0, 3) | st.none())
    def with_value(self, p, key, val):
        n = Node(ctx.with_value(p.real, key, val), p, "value",
                 ".WithValue(%s, %r)" % (key if isinstance(key, str) else repr(key), val))
        n.key, n.val = key, val
        return self._add(n)

    @rule(target=nodes, p=nodes)
    def without_cancel(self, p):
        n = Node(ctx.without_cancel(p.real), p, "without", ".WithoutCancel")
        n.deadline_owner = None
        return self._add(n)

    @rule(n=nodes, give_cause=st.booleans())
    def cancel(self, n, give_cause):
        if n.cancel is None:
            return
        if n.takes_cause and give_cause:
            cause = KeyError("cause")
            n.cancel(cause)
        else:
            cause = None
            n.cancel()
        n.end("canceled", cause)
        # canceling removes it from the parent's child set
        n.parent.children = [k for k in n.parent.children if k is not n]

    @rule(target=regs, n=nodes)
    def after_func(self, n):
        idx = len(self.expected)
        self.expected[idx] = n

        def fn(i=idx):
            with self.lock:
                self.ran.append(i)
        stop = ctx.after_func(n.real, fn)
        return (idx, stop)

    @rule(reg=regs)
    def stop(self, reg):
        idx, stop = reg
        n = self.expected[idx]
        want = idx not in self.stopped and n.state()[0] is None
        assert stop() is want
        if want:
            self.stop_won.add(idx)
        self.stopped.add(idx)

    def flush(self):
        """Waits until every callback handed to the dispatcher so far has run."""
        ev = threading.Event()
        c, cancel = ctx.with_cancel(ctx.background())
        cancel()
        ctx.after_func(c, ev.set)
        assert ev.wait(10)

    @invariant()
    def observables_match(self):
        for n in self.all:
            err, cause = n.state()
            r = n.real
            assert r.done() is (err is not None)
            if err is None:
                assert r.err() is None and r.cause() is None
            else:
                want = ctx.Canceled if err == "canceled" else ctx.DeadlineExceeded
                assert type(r.err()) is want
                got = ctx.cause(r)
                if cause is None:
                    assert got is r.err()
                else:
                    assert got is cause
            owner = n.deadline_owner
            if owner is None:
                assert r.deadline() is None
            else:
                assert r.deadline() == owner.real.deadline()
            for k in KEYS:
                assert r.value(k) == n.value(k)
            assert normalize(str(r)) == n.string()

    @invariant()
    def callbacks_match(self):
        self.flush()
        with self.lock:
            ran = list(self.ran)
        assert len(ran) == len(set(ran))
        for idx, n in self.expected.items():
            should = n.state()[0] is not None and idx not in self.stop_won
            assert (idx in ran) == should

    def teardown(self):
        for n in self.all:
            if n.cancel is not None:
                n.cancel()


ContextMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                            deadline=None)
TestContextMachine = ContextMachine.TestCase
