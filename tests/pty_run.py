"""pty_run.py — runs a command in a session of its own whose controlling
terminal is a pseudo-terminal (as from an interactive shell), writes `send`
once READY is printed, and returns (or prints) its exit status and output.
Shared by the pytest suite (run_in_pty) and the Lua specs:
    python3 pty_run.py SEND_HEX TIMEOUT cmd args..."""
import os
import select
import subprocess
import sys
import time


def run_in_pty(argv, send=b"", timeout=30.0, env=None):
    """(status, output, seconds): status is the exit code, or "timeout"."""
    master, slave = os.openpty()
    # setsid -c: the terminal becomes the new session's, without a fork in
    # the (possibly threaded) caller
    p = subprocess.Popen(["setsid", "-c", *argv], stdin=slave, stdout=slave,
                         stderr=slave, env=env)
    os.close(slave)
    out, sent, t0 = b"", False, time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    b = os.read(master, 4096)
                except OSError:  # EIO: every end of the terminal closed
                    break
                if not b:
                    break
                out += b
            if not sent and b"READY" in out:
                time.sleep(0.3)
                os.write(master, send)
                sent = True
        try:
            code = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = "timeout"
    finally:
        os.close(master)
        p.kill()
        p.wait()
    return code, out.decode(errors="replace").replace("\r\n", "\n"), time.monotonic() - t0


if __name__ == "__main__":
    code, out, took = run_in_pty(sys.argv[3:], bytes.fromhex(sys.argv[1]), float(sys.argv[2]))
    sys.stdout.write("status %s %.2f\n" % (code, took))
    sys.stdout.write(out)
