# setup.py — builds the ctx._ctx extension from the C core (core/*.c) and the
# CPython binding (bindings/python/*.c); the pure-Python package is python/ctx.
import ctypes.util
import glob
import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))


def rel(pattern):
    return sorted(os.path.relpath(p, here) for p in glob.glob(os.path.join(here, pattern)))


# -Werror only where we build for our own tests (make test-python sets it): a
# user's `pip install .` with another compiler or Python must not fail on a warning.
werror = ["-Werror"] if os.environ.get("CTX_WERROR") == "1" else []
# CTX_FORCE_POSIX=1 builds the portable paths (no Linux timers or real-time
# signals in the binding, the core's POSIX fallbacks) on Linux, for CI.
macros = [("_GNU_SOURCE", None)]
if os.environ.get("CTX_FORCE_POSIX") == "1":
    macros.append(("CTX_FORCE_POSIX", "1"))
# timer_create lives in librt on older C libraries, in libc (or nowhere) elsewhere
libraries = ["rt"] if ctypes.util.find_library("rt") else []

ext = Extension(
    "ctx._ctx",
    sources=rel("core/*.c") + rel("bindings/python/*.c"),
    include_dirs=["core", "bindings/python"],
    depends=rel("core/*.h") + rel("bindings/python/*.h"),
    define_macros=macros,
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", *werror,
                        "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                        "-pthread", "-O2"],
    extra_link_args=["-pthread"],
    libraries=libraries,
)

setup(
    package_dir={"": "python"},
    packages=["ctx"],
    package_data={"ctx": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
)
