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
                        "-pthread", "-O2",
                        # the module exports PyInit__ctx and nothing else: the
                        # core inside it can never bind to a host's symbols
                        "-fvisibility=hidden"],
    extra_link_args=["-pthread"],
    libraries=libraries,
)


# release builds carry no debug info (a wheel is what users install);
# CTX_DEBUG_INFO=1 keeps it for a developer's debugger
if os.environ.get("CTX_DEBUG_INFO") != "1":
    ext.extra_compile_args.append("-g0")


def version():
    """CTX_VERSION_STRING from core/ctx.h: the version is written once."""
    with open(os.path.join(here, "core", "ctx.h")) as f:
        for line in f:
            if line.startswith("#define CTX_VERSION_STRING"):
                return line.split('"')[1]
    raise RuntimeError("core/ctx.h has no CTX_VERSION_STRING")


setup(
    version=version(),
    package_dir={"": "python"},
    packages=["ctx"],
    package_data={"ctx": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
)
