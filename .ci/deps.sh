#!/usr/bin/env bash
# Installs the Debian packages `make demo` (deps.sh demo) or `make test` and
# `make bench` (deps.sh) need, only when missing. Python tools never go into a
# system Python: the Makefile makes venvs under build/ for them (PEP 668).
set -euo pipefail
mode=${1:-test}
py=${PY:-python3}
apt_pkgs=()
# the demo: a C compiler, Lua 5.4 and its headers, a Python that can build
# its extension (headers) and make venvs
command -v cc >/dev/null || apt_pkgs+=(gcc)
command -v make >/dev/null || apt_pkgs+=(make)
command -v lua5.4 >/dev/null || apt_pkgs+=(lua5.4)
[ -f /usr/include/lua5.4/lua.h ] || apt_pkgs+=(liblua5.4-dev)
if command -v "$py" >/dev/null; then
  "$py" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    2>/dev/null || apt_pkgs+=(python3-dev)
  "$py" -c 'import ensurepip' 2>/dev/null || apt_pkgs+=(python3-venv)
else
  apt_pkgs+=(python3 python3-dev python3-venv)
fi
if [ "$mode" != demo ]; then
  command -v busted >/dev/null || apt_pkgs+=(lua-busted)
  command -v luarocks >/dev/null || apt_pkgs+=(luarocks)
  command -v clang >/dev/null || apt_pkgs+=(clang)
  command -v valgrind >/dev/null || apt_pkgs+=(valgrind)
  command -v pkg-config >/dev/null || apt_pkgs+=(pkg-config)
  command -v nm >/dev/null || apt_pkgs+=(binutils)
  command -v setarch >/dev/null || apt_pkgs+=(util-linux)
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
    || apt_pkgs+=(libclang-rt-14-dev)
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || apt_pkgs+=(golang-go)
fi
if ((${#apt_pkgs[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "deps: installing ${apt_pkgs[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi
