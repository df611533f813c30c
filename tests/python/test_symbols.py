# test_symbols.py — the extension exports its init function and nothing else,
# so the core inside it can never bind to (or be bound by) a host's symbols.
import shutil
import subprocess

import pytest

import ctx._ctx


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
def test_only_the_init_function_is_exported():
    out = subprocess.run(["nm", "-D", "--defined-only", ctx._ctx.__file__],
                         capture_output=True, text=True, check=True).stdout
    names = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert names == ["PyInit__ctx"]


INTERPOSER = r"""
#include <stdint.h>
int64_t ctx_now(void) { return 0; }
int64_t ctx_deadline_from_timeout(int64_t t) { (void)t; return INT64_MAX; }
int ctx_done(const void *c) { (void)c; return 0; }
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_a_host_symbol_with_the_same_name_is_not_used(tmp_path):
    # a library loaded first that defines the core's names (a clock stuck at
    # 0): the extension's calls must stay inside it, or waits never end
    src = tmp_path / "interpose.c"
    src.write_text(INTERPOSER)
    lib = tmp_path / "libinterpose.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    code = ("import ctx, time; t0 = time.monotonic()\n"
            "c, _ = ctx.with_timeout(ctx.background(), 0.05)\n"
            "assert c.wait(1) is True and isinstance(c.err(), ctx.DeadlineExceeded)\n"
            "ctx.sleep(0.05)\n"
            "assert time.monotonic() - t0 < 5\n"
            "print('own core')\n")
    import os
    import sys
    env = dict(os.environ, LD_PRELOAD=str(lib),
               PYTHONPATH=os.path.dirname(os.path.dirname(ctx._ctx.__file__)))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "own core"
