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
