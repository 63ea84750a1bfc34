#!/usr/bin/env bash
# Lint and check the Helm chart (helm/warden) with the real Helm engine.
#
# The engine is Helm itself, compiled as a C library (libhelm_sdkpy.so) and shipped inside the
# PyPI wheel helm-sdkpy. This script downloads that wheel (pinned version and sha256) once into
# ${WARDEN_TOOLS_DIR:-$HOME/.cache/warden-tools}, unpacks it, and then runs
#   .ci/helm_lint.py   helm lint, with the default values and with helm/warden/ci-values.yaml
#   .ci/helm_check.py  renders the chart and asserts the operators' contract on the manifests
#   .ci/check_dashboards.py  the deploy/ dashboard and alert rules use only metrics Warden exposes,
#                      and the chart's copies of them (helm/warden/files/) are identical
# Any problem (download, unpacking, lint error or warning, failed assertion) exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${WARDEN_TOOLS_DIR:-${HOME:-/root}/.cache/warden-tools}"
HELM_SDKPY_VERSION=0.1.32
HELM_SDKPY_SHA256=bcf5bf73cacc373bebedfb9c988969aa12a9eda86a140deba658fbf28eb789c5
ENGINE_DIR="$TOOLS/helm-sdkpy-$HELM_SDKPY_VERSION"
PYTHON="${PYTHON:-python3}"

die() { echo "helm-lint: $*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PLATFORM=linux-amd64 ;;
  Linux-aarch64) PLATFORM=linux-arm64 ;;
  *) die "no Helm engine for $(uname -s)-$(uname -m) in helm-sdkpy $HELM_SDKPY_VERSION" ;;
esac
LIB="$ENGINE_DIR/helm_sdkpy/_lib/$PLATFORM/libhelm_sdkpy.so"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

tmp=""
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
install_engine() {
  mkdir -p "$TOOLS"
  tmp="$(mktemp -d "$TOOLS/.helm-sdkpy.XXXXXX")"
  echo "helm-lint: downloading helm-sdkpy $HELM_SDKPY_VERSION into $ENGINE_DIR"
  printf 'helm-sdkpy==%s --hash=sha256:%s\n' "$HELM_SDKPY_VERSION" "$HELM_SDKPY_SHA256" >"$tmp/requirements.txt"
  # The wheel is pure-Python-tagged (py3-none-any) and declares Python >= 3.12; only its
  # library is used, through ctypes, so ask for it as for 3.12 whatever the local Python is.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip download --quiet --no-deps \
    --python-version 3.12 --only-binary=:all: --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp/wheel" \
    || die "pip download of helm-sdkpy==$HELM_SDKPY_VERSION failed"
  local wheel
  wheel="$(ls "$tmp"/wheel/helm_sdkpy-"$HELM_SDKPY_VERSION"-*.whl 2>/dev/null | head -n1)"
  [ -n "$wheel" ] || die "no helm-sdkpy wheel was downloaded"
  "$PYTHON" -m zipfile -e "$wheel" "$tmp/unpacked" || die "cannot unpack $wheel"
  [ -f "$tmp/unpacked/helm_sdkpy/_lib/$PLATFORM/libhelm_sdkpy.so" ] \
    || die "the wheel has no helm_sdkpy/_lib/$PLATFORM/libhelm_sdkpy.so"
  echo "$HELM_SDKPY_SHA256" >"$tmp/unpacked/.complete"
  rm -rf "$ENGINE_DIR"
  # Atomic: a concurrent or interrupted run never sees a half-unpacked engine.
  mv -T "$tmp/unpacked" "$ENGINE_DIR" 2>/dev/null || [ -f "$ENGINE_DIR/.complete" ] \
    || die "cannot move the engine into $ENGINE_DIR"
}

if [ "$(cat "$ENGINE_DIR/.complete" 2>/dev/null)" != "$HELM_SDKPY_SHA256" ] || [ ! -f "$LIB" ]; then
  install_engine
else
  echo "helm-lint: using cached helm-sdkpy $HELM_SDKPY_VERSION from $ENGINE_DIR"
fi
[ -f "$LIB" ] || die "Helm engine missing after install: $LIB"

# PyYAML parses values files and rendered manifests (the machine image has it; install if not).
if ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
  PYDEPS="$TOOLS/pydeps"
  if ! PYTHONPATH="$PYDEPS" "$PYTHON" -c 'import yaml' 2>/dev/null; then
    echo "helm-lint: installing PyYAML into $PYDEPS"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip install --quiet --target "$PYDEPS" 'PyYAML>=6,<7' \
      || die "cannot install PyYAML"
  fi
  export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
fi

export HELM_SDKPY_LIB="$LIB"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the work tree
cd "$ROOT"
status=0
"$PYTHON" .ci/helm_lint.py || status=1
echo
"$PYTHON" .ci/helm_check.py || status=1
echo
"$PYTHON" .ci/check_dashboards.py || status=1
exit "$status"
