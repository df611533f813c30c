# test_run_process.py — issue 9, ctx.run_process: subprocess.run's arguments,
# the output so far on a stop, pipe-holding descendants, the terminal (a pty).
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import ctx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from pty_run import run_in_pty  # noqa: E402  (tests/pty_run.py, shared with the Lua specs)

HERE = os.path.dirname(os.path.abspath(__file__))
PYPATH = os.path.abspath(os.path.join(HERE, "..", "..", "python"))
PY = sys.executable
IDS = [PY, "-c", "import os; print(os.getpid(), os.getpgrp(), os.getsid(0))"]


def ids(**kw):
    pid, pgid, sid = map(int, ctx.run_process(IDS, capture_output=True, **kw).stdout.split())
    return pid, pgid, sid


def gone(pid, timeout=5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


# ---- arguments, as subprocess.run takes them ----

@pytest.mark.parametrize("kw", [
    dict(input="text"),                      # str without text=True
    dict(input=b"bytes", text=True),         # bytes with it
    dict(input=b"bytes", encoding="utf-8"),
    dict(input=12),                          # not bytes-like
])
def test_input_of_the_wrong_type_is_a_type_error_at_once(tmp_path, kw):
    marker = tmp_path / "ran"
    t0 = time.monotonic()
    with pytest.raises(TypeError, match="input"):
        ctx.run_process(["sh", "-c", f"touch {marker}; cat"], capture_output=True, **kw)
    assert time.monotonic() - t0 < 1
    assert not marker.exists()  # nothing was started


def test_input_as_subprocess_run_takes_it():
    cat = [PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"]
    assert ctx.run_process(cat, input="é\n", text=True, capture_output=True).stdout == "é\n"
    r = ctx.run_process(cat, input="é", encoding="latin-1", capture_output=True)
    assert r.stdout == "é"
    assert ctx.run_process(cat, input=bytearray(b"ab"), capture_output=True).stdout == b"ab"
    big = os.urandom(3 << 20)  # far more than a pipe holds: written as it drains
    assert ctx.run_process(cat, input=big, capture_output=True).stdout == big
    # a child that reads none of it is no error, as with subprocess.run
    assert ctx.run_process(["true"], input=big).returncode == 0
    r = ctx.run_process([PY, "-c", "print('a\\r\\nb\\rc')"], capture_output=True, text=True)
    assert r.stdout == subprocess.run([PY, "-c", "print('a\\r\\nb\\rc')"], capture_output=True,
                                      text=True).stdout


def test_conflicting_arguments_as_subprocess_run():
    with pytest.raises(ValueError, match="stdin and input"):
        ctx.run_process(["true"], input=b"", stdin=subprocess.DEVNULL)
    with pytest.raises(ValueError, match="capture_output"):
        ctx.run_process(["true"], capture_output=True, stdout=subprocess.PIPE)
    with pytest.raises(ValueError, match="process_group"):
        ctx.run_process(["true"], process_group=0, start_new_session=True)


def test_process_group_and_session_are_honoured():
    me_pgid, me_sid = os.getpgrp(), os.getsid(0)
    pid, pgid, sid = ids()                      # default: a group of its own, same session
    assert (pgid, sid) == (pid, me_sid)
    pid, pgid, sid = ids(process_group=0)
    assert (pgid, sid) == (pid, me_sid)
    pid, pgid, sid = ids(start_new_session=True)
    assert (pgid, sid) == (pid, pid)
    pid, pgid, sid = ids(start_new_session=False)  # stays in ours, as asked
    assert (pgid, sid) == (me_pgid, me_sid)
    pid, pgid, sid = ids(process_group=me_pgid)
    assert (pgid, sid) == (me_pgid, me_sid)


def test_in_our_group_only_the_child_is_signaled(tmp_path):
    pidf = tmp_path / "pid"
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.3):
            ctx.run_process(["sh", "-c", f"sleep 30 & echo $! > {pidf}; wait"],
                            start_new_session=False)
    bg = int(pidf.read_text())
    try:
        assert not gone(bg, timeout=0.3)  # our own group was not killed
    finally:
        os.kill(bg, signal.SIGKILL)


# ---- the output so far ----

SLOW = ["sh", "-c", "echo partial; echo oops >&2; exec sleep 30"]


@pytest.mark.parametrize("text", [False, True])
def test_timeout_expired_keeps_the_output_so_far(text):
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        ctx.run_process(SLOW, capture_output=True, timeout=0.5, text=text)
    assert time.monotonic() - t0 < 5
    want = ("partial\n", "oops\n") if text else (b"partial\n", b"oops\n")
    assert (info.value.stdout, info.value.stderr) == want
    assert info.value.timeout == 0.5


def test_a_stop_keeps_the_output_so_far_on_a_fresh_error():
    c, cancel = ctx.with_timeout_cause(ctx.background(), 0.5, KeyError("slow"))
    with pytest.raises(ctx.DeadlineExceeded) as info:
        ctx.run_process(SLOW, c, capture_output=True, text=True)
    e = info.value
    assert (e.stdout, e.stderr) == ("partial\n", "oops\n")
    assert e is not c.err() and c.err().stdout is None  # check()'s instance is untouched
    assert isinstance(e.__cause__, KeyError)
    with pytest.raises(ctx.DeadlineExceeded) as again:
        c.check()
    assert again.value.stdout is None
    with pytest.raises(ctx.DeadlineExceeded) as info:  # already done: nothing runs
        ctx.run_process(["true"], c)
    assert info.value.stdout is None
    cancel()


def test_an_interrupting_scopes_stop_carries_the_output():
    other, cancel = ctx.with_cancel(ctx.background())
    with pytest.raises(ctx.DeadlineExceeded) as info:
        with ctx.timeout(0.5, interrupt=True):
            ctx.run_process(SLOW, other, stdout=subprocess.PIPE)
    assert (info.value.stdout, info.value.stderr) == (b"partial\n", None)
    cancel()


def test_a_stop_raised_again_during_the_kill_keeps_the_output():
    # the child ignores SIGTERM, so its kill takes the whole grace, longer than
    # the re-raise period: the stop that leaves is still the one with the output
    other, cancel = ctx.with_cancel(ctx.background())
    cmd = ["sh", "-c", "trap '' TERM; echo partial; sleep 30"]
    for _ in range(3):
        with pytest.raises(ctx.DeadlineExceeded) as info:
            with ctx.timeout(0.2, interrupt=True):
                ctx.run_process(cmd, other, stdout=subprocess.PIPE, grace=0.2)
        assert info.value.stdout == b"partial\n"
    cancel()


def test_plain_errors_have_no_output():
    assert ctx.ContextError.stdout is None and ctx.Canceled().stderr is None


# ---- descendants that hold the pipes ----

@pytest.mark.parametrize("cmd", ["sleep 5 & echo started", "setsid sleep 5 & echo started"])
def test_a_pipe_holding_descendant_never_delays_the_stop(cmd):
    t0 = time.monotonic()
    with pytest.raises(ctx.DeadlineExceeded) as info:
        with ctx.timeout(0.5):
            ctx.run_process(["sh", "-c", cmd], capture_output=True)
    assert time.monotonic() - t0 < 3
    assert info.value.stdout == b"started\n"


def test_without_a_stop_the_output_is_read_to_its_end():
    # as subprocess.run: the run ends once the output is complete
    r = ctx.run_process(["sh", "-c", "(sleep 0.3; echo late) & echo early"], capture_output=True)
    assert r.stdout == b"early\nlate\n" and r.returncode == 0


def test_a_stop_kills_what_is_left_of_the_group(tmp_path):
    pidf = tmp_path / "pid"
    with pytest.raises(ctx.DeadlineExceeded):
        with ctx.timeout(0.5):
            ctx.run_process(["sh", "-c", f"sleep 30 & echo $! > {pidf}"], capture_output=True)
    assert gone(int(pidf.read_text()))


# ---- the terminal ----

needs_setsid = pytest.mark.skipif(not os.path.exists("/usr/bin/setsid") and
                                  not os.path.exists("/bin/setsid"), reason="no setsid(1)")

def in_pty(body, send=b"", runner=False, timeout=30):
    """Runs body in a python whose controlling terminal is a pseudo-terminal
    (as in an interactive shell); returns its status and what it printed."""
    argv = [PY, "-m", "ctx", "-c", textwrap.dedent(body)] if runner else \
        [PY, "-c", textwrap.dedent(body)]
    code, out, _ = run_in_pty(argv, send, timeout, env=dict(os.environ, PYTHONPATH=PYPATH))
    return code, out


@needs_setsid
def test_the_child_can_prompt_on_the_terminal():
    code, out = in_pty("""
        import ctx, os
        print("READY", flush=True)
        r = ctx.run_process(["sh", "-c", "read -r line </dev/tty && echo got:$line"],
                            capture_output=True, text=True)
        tty = os.open("/dev/tty", os.O_RDWR)
        print(r.returncode, repr(r.stdout), r.stderr == "",
              os.tcgetpgrp(tty) == os.getpgrp())  # the terminal came back
    """, send=b"hello\n")
    assert code == 0, out
    assert "0 'got:hello\\n' True True" in out


@needs_setsid
@pytest.mark.parametrize("runner", [False, True])
def test_ctrl_c_reaches_the_child_and_the_script(runner, tmp_path):
    pidf = tmp_path / "pid"
    code, out = in_pty(f"""
        import ctx, sys
        print("READY", flush=True)
        try:
            ctx.run_process(["sh", "-c", "echo $$ > {pidf}; exec sleep 30"])
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(5)
    """, send=b"\x03", runner=runner)
    assert gone(int(pidf.read_text()))
    if runner:  # the runner's root scope is canceled by it: the stop, status 130
        assert code == 128 + signal.SIGINT and "stopped by SIGINT" in out, out
    else:
        assert code == 5 and "KeyboardInterrupt" in out, out
