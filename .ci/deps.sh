#!/usr/bin/env bash
# Installs what `make test`, `make demo` and `make bench` need, only when it
# is missing: Debian packages with apt-get, Python packages with pip.
set -euo pipefail
apt_pkgs=()
command -v lua5.4 >/dev/null || apt_pkgs+=(lua5.4)
[ -f /usr/include/lua5.4/lua.h ] || apt_pkgs+=(liblua5.4-dev)
command -v busted >/dev/null || apt_pkgs+=(lua-busted)
command -v luarocks >/dev/null || apt_pkgs+=(luarocks)
command -v clang >/dev/null || apt_pkgs+=(clang)
command -v valgrind >/dev/null || apt_pkgs+=(valgrind)
command -v pkg-config >/dev/null || apt_pkgs+=(pkg-config)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
  || apt_pkgs+=(libclang-rt-14-dev)
if ((${#apt_pkgs[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "deps: installing ${apt_pkgs[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi
py_pkgs=()
for mod in pytest hypothesis mypy setuptools wheel; do
  python3 -c "import $mod" 2>/dev/null || py_pkgs+=("$mod")
done
if ((${#py_pkgs[@]})); then
  echo "deps: pip installing ${py_pkgs[*]}"
  python3 -m pip install -q "${py_pkgs[@]}"
fi
