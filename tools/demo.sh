#!/usr/bin/env bash
# The Quick start's main job on a sample: a demo key store (passphrase-free key file), listed, and
# faces found in one of the face-api demo photos when the engine is built.
# Usage: tools/demo.sh [BUILD_DIR]   (writes into BUILD_DIR/demo)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
veil="$build/tools/veil"
demo="$build/demo"
rm -rf "$demo" && mkdir -p "$demo"
export VEIL_STORE="$demo/store" VEIL_ACTOR=demo

"$veil" keys init --new-key-file "$demo/store.key" --approvals 2
"$veil" keys list --key-file "$demo/store.key"
"$veil" audit verify

photo=$(ls "$repo"/.cache/face-api/package/demo/*.jpg 2>/dev/null | head -n 1 || true)
if "$veil" help | grep -q '^  detect' && [ -n "$photo" ]; then
  "$veil" detect "$photo" --draw "$demo/detected.png"
  echo "faces drawn on $demo/detected.png"
fi
