#!/usr/bin/env bash
# Fetches the second, measuring-only face recognizer: HSE FaceRes from the npm package
# @vladmandic/human (MIT), into the git-ignored folder <repo>/.cache/human/, and checks the tarball
# against a pinned SHA-256. Only package/models/faceres.{json,bin}, the README and the LICENSE are
# kept. Idempotent. `veil eval` reads <repo>/.cache/human/package/models (or $VEIL_HUMAN_DIR).
#
# Usage: tools/fetch_human.sh [DEST]   (DEST defaults to <repo>/.cache/human)
set -euo pipefail

readonly PACKAGE="@vladmandic/human"
readonly VERSION="3.3.6"
readonly TARBALL="vladmandic-human-${VERSION}.tgz"
readonly SHA256="425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${repo_root}/.cache/human}"
mkdir -p "${dest}"
cd "${dest}"

verify() { echo "${SHA256}  ${TARBALL}" | sha256sum --check --status; }

if [[ -f .extracted-${SHA256} ]] && [[ -f package/models/faceres.bin ]]; then
  echo "human ${VERSION} (FaceRes) already present in ${dest}"
  exit 0
fi

if [[ ! -f "${TARBALL}" ]] || ! verify; then
  rm -f "${TARBALL}"
  command -v npm >/dev/null || { echo "fetch_human: npm is required (apt-get install npm)" >&2; exit 1; }
  npm pack --silent "${PACKAGE}@${VERSION}" >/dev/null
fi
if ! verify; then
  echo "fetch_human: SHA-256 of ${TARBALL} does not match the pinned value; refusing it" >&2
  rm -f "${TARBALL}"
  exit 1
fi

rm -rf package .extracted-*
tar xzf "${TARBALL}" package/LICENSE package/README.md package/models/faceres.json package/models/faceres.bin
rm -f "${TARBALL}"  # 28 MB, of which Veil keeps 7
touch ".extracted-${SHA256}"
echo "human ${VERSION} FaceRes extracted to ${dest}/package/models"
