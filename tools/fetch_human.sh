#!/usr/bin/env bash
# Fetches the second, measuring-only face recognizer: HSE FaceRes from the npm package
# @vladmandic/human (MIT), into the git-ignored folder <repo>/.cache/human/, and checks the tarball
# against a pinned SHA-256. Only package/models/faceres.{json,bin}, the README and the LICENSE are
# kept (the 28 MB tarball is dropped). Idempotent. `veil eval` reads <repo>/.cache/human/package/models
# (or $VEIL_HUMAN_DIR).
#
# Usage: tools/fetch_human.sh [DEST]   (DEST defaults to <repo>/.cache/human)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/npm_fetch.sh"
npm_fetch_verified human @vladmandic/human 3.3.6 \
  425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7 \
  "${1:-$(dirname "${here}")/.cache/human}" no package/models/faceres.bin \
  package/LICENSE package/README.md package/models/faceres.json package/models/faceres.bin
