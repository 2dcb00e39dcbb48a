#!/usr/bin/env bash
# Fetches the pretrained face-api networks (npm package @vladmandic/face-api, MIT) into the
# git-ignored folder <repo>/.cache/face-api/ and checks the tarball against a pinned SHA-256.
# Idempotent. Nothing downloads at run time; the engine reads <repo>/.cache/face-api/package/model
# (or $VEIL_FACE_API_DIR). The demo photos (package/demo) serve the demo, the tests and CI.
#
# Usage: tools/fetch_face_api.sh [DEST]   (DEST defaults to <repo>/.cache/face-api)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/npm_fetch.sh"
npm_fetch_verified face-api @vladmandic/face-api 1.7.15 \
  0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031 \
  "${1:-$(dirname "${here}")/.cache/face-api}" yes package/model/face_recognition_model.bin
