# test_install.py — `pip install .` from a copy of the repository into a fresh
# venv gives a working `import ctx` (offline: no build isolation, no deps).
import os
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler")
def test_pip_install_into_fresh_venv(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, f), src / f)
    shutil.copytree(os.path.join(ROOT, "core"), src / "core")
    shutil.copytree(os.path.join(ROOT, "bindings", "python"), src / "bindings" / "python")
    shutil.copytree(os.path.join(ROOT, "python", "ctx"), src / "python" / "ctx",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    py = str(env_dir / "bin" / "python")
    if sys.prefix != sys.base_prefix:
        # run from a venv (make test-python makes one per interpreter): the new
        # venv sees its build tools (setuptools) too, as it sees the system's
        site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        here = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
        with open(os.path.join(site, "outer-venv.pth"), "w") as f:
            f.write("\n".join(here) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CTX_WERROR")}
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                        str(src)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([py, "-c", "import ctx, os; c, cancel = ctx.with_timeout("
                        "ctx.background(), 5); cancel(); print(c.err(), "
                        "os.path.exists(os.path.join(os.path.dirname(ctx.__file__), 'py.typed')))"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "context canceled True\n"
    assert str(env_dir) in subprocess.run(
        [py, "-c", "import ctx; print(ctx.__file__)"], env=env, capture_output=True,
        text=True, timeout=60, cwd=str(tmp_path)).stdout
