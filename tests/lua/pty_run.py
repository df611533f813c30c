"""pty_run.py — runs a command in a session of its own whose controlling
terminal is a pseudo-terminal (as from an interactive shell), writes `send`
once READY is printed, and prints the exit status and what it printed.
Used by the Lua specs: python3 pty_run.py SEND_HEX TIMEOUT cmd args..."""
import os
import select
import subprocess
import sys
import time


def main():
    send = bytes.fromhex(sys.argv[1])
    timeout = float(sys.argv[2])
    master, slave = os.openpty()
    # setsid -c: the terminal becomes the new session's, without a fork here
    p = subprocess.Popen(["setsid", "-c", *sys.argv[3:]], stdin=slave, stdout=slave,
                         stderr=slave)
    os.close(slave)
    out, sent, t0 = b"", False, time.monotonic()
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
        p.kill()
        code = "timeout"
    os.close(master)
    sys.stdout.write("status %s %.2f\n" % (code, time.monotonic() - t0))
    sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))


main()
