#!/usr/bin/env bash
# Builds and tests the Python client against a live server:
#
#   bash clients/python/ci.sh path/to/warden
#
# 1. a venv with the pinned requirements.txt (all wheels), kept at
#    ${WARDEN_PYCLIENT_VENV:-${WARDEN_TOOLS_DIR:-$HOME/.cache/warden-tools}/pyclient-venv}
#    and made again whenever requirements.txt or the Python version changes;
# 2. the stubs generated from proto/ (generate.py), so they are the protos of this checkout;
# 3. the package built and installed into the venv (pip install ., which generates them again);
# 4. tests/ run against the installed package, each test starting the given binary itself.
# Exits non-zero if any step fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${WARDEN_PYCLIENT_VENV:-${WARDEN_TOOLS_DIR:-${HOME:-/root}/.cache/warden-tools}/pyclient-venv}"

die() { echo "pyclient: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 WARDEN_BINARY"
[ -f "$1" ] && [ -x "$1" ] || die "$1 is not an executable file"
WARDEN_BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export WARDEN_BIN

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1

# --- 1. venv ---------------------------------------------------------------------------------------
stamp="$(cat "$HERE/requirements.txt" <("$PYTHON" -VV) | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.stamp" 2>/dev/null || true)" != "$stamp" ] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  echo "pyclient: creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV" || die "cannot create a venv (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --only-binary=:all: -r "$HERE/requirements.txt" \
    || die "pip install -r requirements.txt failed"
  echo "$stamp" >"$VENV/.stamp"
fi
PY="$VENV/bin/python"
"$PY" -m pip --version

# --- 2. stubs --------------------------------------------------------------------------------------
"$PY" "$HERE/generate.py"

# --- 3. package ------------------------------------------------------------------------------------
# No build isolation: the build uses the venv's pinned setuptools and grpcio-tools.
"$PY" -m pip install --quiet --no-deps --no-build-isolation --force-reinstall "$HERE" \
  || die "pip install of the package failed"
# Its dependencies are what the venv pinned: check they satisfy the package's own ranges.
"$PY" -m pip check || die "the installed package's dependencies are not satisfied"

# --- 4. tests --------------------------------------------------------------------------------------
# The tests import the installed package: the pytest script (unlike `python -m pytest`) does not
# put the working directory on sys.path, and -I keeps it off for this line too.
cd "$HERE"
"$PY" -I -c 'import warden_client; print("pyclient: testing", warden_client.__file__)'
"$VENV/bin/pytest" -p no:cacheprovider -v tests
