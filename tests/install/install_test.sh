#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then build a consumer with find_package(Veil) against
# it alone and run it on a demo photo with the installed models (face-api, Veil's E, G and flow).
# Usage: install_test.sh BUILD_DIR DEMO_DIR
set -euo pipefail
build=$(realpath "$1")
demo=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
share="$prefix/share/veil"
for f in models/veil-encoder-v1.veilmodel models/veil-generator-v1.veilmodel models/veil-flow-v1.veilmodel \
         models/README.md face-api/ssd_mobilenetv1_model-weights_manifest.json face-api/LICENSE; do
  [ -s "$share/$f" ] || { echo "install_test: $share/$f was not installed"; exit 1; }
done
[ -x "$prefix/bin/veil" ] || { echo "install_test: bin/veil was not installed"; exit 1; }
cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
# The installed models, named as a prefix other than the configured one needs (README, Library).
export VEIL_FACE_API_DIR="$share/face-api" VEIL_MODELS_DIR="$share/models"
"$prefix/bin/veil" keys init --store "$work/store" --new-key-file "$work/store.key" >/dev/null
"$work/consumer/consumer" "$work/store" "$work/store.key" "$demo/sample1.jpg" 3
echo "1 passed, 0 failed"
