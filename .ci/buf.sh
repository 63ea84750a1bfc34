#!/usr/bin/env bash
# The contract checks itself:   bash .ci/buf.sh
#
#   1. buf lint      STANDARD, with the exceptions buf.yaml gives (each with its reason)
#   2. buf breaking  proto/ against the last tagged contract (WIRE_JSON): the image of tag
#                    `contract-v1`, committed as .ci/contract/warden-v1.binpb so a clone without
#                    tags checks the same thing. After a deliberate, announced break, make a new
#                    image (`buf build proto -o .ci/contract/warden-vN.binpb`), tag it, and point
#                    AGAINST below at it.
#   3. the check bites: a copy of proto/ with a deliberately breaking change (a renamed field,
#      which breaks JSON clients; a removed enum value, which breaks the wire) must be refused.
#
# buf comes from the npm registry (@bufbuild/buf, pinned), kept in
# ${WARDEN_TOOLS_DIR:-$HOME/.cache/warden-tools}/buf.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
AGAINST=.ci/contract/warden-v1.binpb
TOOLS="${WARDEN_TOOLS_DIR:-${HOME:-/root}/.cache/warden-tools}/buf"
BUF="$TOOLS/node_modules/.bin/buf"

if ! { [ -x "$BUF" ] && [ "$("$BUF" --version)" = "$BUF_VERSION" ]; }; then
  command -v npm >/dev/null || { echo "buf: npm is needed to install @bufbuild/buf" >&2; exit 1; }
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent "@bufbuild/buf@$BUF_VERSION"
fi
echo "buf $("$BUF" --version)"

echo "--- buf lint"
"$BUF" lint
echo "lint: clean"

echo "--- buf breaking proto --against $AGAINST"
"$BUF" breaking proto --against "$AGAINST"
echo "breaking: none against the tagged contract"

echo "--- a deliberately breaking change is refused"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r buf.yaml proto third_party "$scratch/"
# The fixture: CheckRequest.identity_id renamed (JSON clients break) and the last CheckReason
# value removed (its number no longer decodes).
sed -i 's/^  string identity_id = 1;$/  string subject_id = 1;/' "$scratch/proto/warden/v1/authorization.proto"
sed -i '/^  CHECK_REASON_UNKNOWN_PERMISSION = 3;$/d' "$scratch/proto/warden/v1/authorization.proto"
if (cd "$scratch" && "$BUF" breaking proto --against "$OLDPWD/$AGAINST") > "$scratch/out" 2>&1; then
  echo "buf breaking accepted a breaking change" >&2
  exit 1
fi
grep -q 'changed name from "identity_id" to "subject_id"' "$scratch/out" \
  || { echo "buf breaking did not report the renamed field:" >&2; cat "$scratch/out" >&2; exit 1; }
grep -q 'CHECK_REASON_UNKNOWN_PERMISSION' "$scratch/out" \
  || { echo "buf breaking did not report the removed enum value:" >&2; cat "$scratch/out" >&2; exit 1; }
echo "breaking: the fixture is refused ($(wc -l < "$scratch/out") findings)"
