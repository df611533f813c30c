# check_python.py — the Python artifacts as users get them: the sdist holds
# the core, the bindings, the tests and the license; each repaired wheel is
# manylinux, stripped, exports one symbol, and works in a fresh venv of its
# interpreter; the sdist installs on its own. Run by `make test-package`.
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PKG_DIR = os.environ["PKG_DIR"]
VERSION = os.environ["PKG_VERSION"]
PYTHONS = os.environ["PKG_PYTHONS"].split()

# what users do with it: a scope, an interrupt, a subprocess that dies with it
SMOKE = r"""
import sys, time, ctx
assert ctx.__version__ == sys.argv[1], ctx.__version__
with ctx.timeout(5) as c:
    assert ctx.current() is c and 4 < c.remaining() <= 5
t0 = time.monotonic()
try:
    with ctx.timeout(0.1, interrupt=True):
        while True:
            pass
except ctx.DeadlineExceeded:
    pass
assert time.monotonic() - t0 < 5
try:
    with ctx.timeout(0.2):
        ctx.run_process(["sleep", "30"], grace=0.5)
except ctx.DeadlineExceeded:
    pass
assert time.monotonic() - t0 < 10
print("ok", ctx.__version__, sys.version.split()[0])
"""


def fail(msg):
    print("check_python: " + msg, file=sys.stderr)
    sys.exit(1)


def check_sdist(path):
    with tarfile.open(path) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    need = ["LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "setup.py",
            "core/ctx.h", "core/ctx_tree.c", "core/ctx_park_posix.c",
            "bindings/python/module.c", "bindings/python/pyctx.h",
            "python/ctx/__init__.py", "python/ctx/py.typed",
            "tests/python/test_go.py", "tests/c/main.c"]
    missing = [n for n in need if n not in names]
    if missing:
        fail(f"{path} lacks {missing}")
    built = [n for n in names if n.endswith((".so", ".o"))]
    if built:
        fail(f"{path} carries build products {built}")
    print(f"sdist: {len(names)} files, core, bindings, tests and license included")


def check_wheel(path):
    name = os.path.basename(path)
    if "manylinux" not in name:
        fail(f"{name} is not a manylinux wheel")
    with tempfile.TemporaryDirectory() as d:
        with zipfile.ZipFile(path) as z:
            z.extractall(d)
            names = z.namelist()
        if not any(n.endswith(("LICENSE", "licenses/LICENSE")) and ".dist-info/" in n for n in names):
            fail(f"{name} has no LICENSE in its metadata")
        sos = glob.glob(os.path.join(d, "ctx", "_ctx*.so"))
        if len(sos) != 1:
            fail(f"{name}: {sos}")
        if shutil.which("readelf"):
            sections = subprocess.run(["readelf", "-S", "-W", sos[0]], capture_output=True,
                                      text=True, check=True).stdout
            if ".debug_" in sections:
                fail(f"{name}: the extension carries debug info")
        if shutil.which("nm"):
            syms = subprocess.run(["nm", "-D", "--defined-only", sos[0]], capture_output=True,
                                  text=True, check=True).stdout.split()
            exported = [s for s in syms[2::3]]
            if exported != ["PyInit__ctx"]:
                fail(f"{name}: exports {exported}")
    print(f"wheel: {name}: manylinux, no debug info, exports PyInit__ctx only, LICENSE")


def smoke(python, install, label):
    with tempfile.TemporaryDirectory() as d:
        venv = os.path.join(d, "venv")
        subprocess.run([python, "-m", "venv", venv], check=True)
        py = os.path.join(venv, "bin", "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *install], check=True)
        # from elsewhere than the checkout: the installed package, not python/ctx
        out = subprocess.run([py, "-c", SMOKE, VERSION], cwd=d, capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            fail(f"{label}: {out.stderr}")
        print(f"{label}: {out.stdout.strip()}")


def main():
    sdist = os.path.join(PKG_DIR, f"goctx-{VERSION}.tar.gz")
    check_sdist(sdist)
    wheels = sorted(glob.glob(os.path.join(PKG_DIR, "wheels", "*.whl")))
    if len(wheels) != len(PYTHONS):
        fail(f"{len(wheels)} wheels for {len(PYTHONS)} interpreters")
    for w in wheels:
        check_wheel(w)
    for python in PYTHONS:
        tag = subprocess.run([python, "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        mine = [w for w in wheels if f"-{tag}-" in os.path.basename(w)]
        if len(mine) != 1:
            fail(f"no wheel for {tag}")
        smoke(python, ["--no-index", mine[0]], f"wheel {tag}")
    # and the sdist alone, built by pip in a fresh venv
    smoke(PYTHONS[0], [sdist], "sdist")


if __name__ == "__main__":
    main()
