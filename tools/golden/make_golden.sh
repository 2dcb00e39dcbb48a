#!/usr/bin/env bash
# Regenerates tests/engine/golden/face_api_golden.json from the original JavaScript face-api.
# Needs: tools/fetch_face_api.sh run first, node 20 + npm, g++ and OpenCV (pkg-config opencv4).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
face_api="${VEIL_FACE_API_DIR:-${repo}/.cache/face-api/package/model}"
[[ -f "${face_api}/face_recognition_model-weights_manifest.json" ]] || {
  echo "make_golden: face-api models not found in ${face_api}; run tools/fetch_face_api.sh" >&2; exit 1; }
demo="${face_api}/../demo"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

(cd "${here}" && npm ci --no-audit --no-fund --silent)
g++ -O2 "${here}/decode_to_ppm.cc" -o "${work}/decode_to_ppm" $(pkg-config --cflags --libs opencv4)
args=()
for i in 1 2 3 4 5 6; do
  "${work}/decode_to_ppm" "${demo}/sample${i}.jpg" "${work}/sample${i}.ppm"
  args+=("sample${i}.jpg=${work}/sample${i}.ppm")
done
mkdir -p "${repo}/tests/engine/golden"
NODE_PATH="${here}/node_modules" node "${here}/make_golden.mjs" "${face_api}" \
  "${repo}/tests/engine/golden/face_api_golden.json" "${args[@]}"
