#!/usr/bin/env bash
# Fetches the pretrained face-api networks (npm package @vladmandic/face-api, MIT) into the
# git-ignored folder <repo>/.cache/face-api/ and checks the tarball against a pinned SHA-256.
# Idempotent: does nothing when the verified tarball is already extracted. Nothing downloads at run
# time; the engine reads <repo>/.cache/face-api/package/model (or $VEIL_FACE_API_DIR).
#
# Usage: tools/fetch_face_api.sh [DEST]   (DEST defaults to <repo>/.cache/face-api)
set -euo pipefail

readonly PACKAGE="@vladmandic/face-api"
readonly VERSION="1.7.15"
readonly TARBALL="vladmandic-face-api-${VERSION}.tgz"
readonly SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${repo_root}/.cache/face-api}"
mkdir -p "${dest}"
cd "${dest}"

verify() { echo "${SHA256}  ${TARBALL}" | sha256sum --check --status; }

if [[ -f "${TARBALL}" ]] && verify && [[ -f .extracted-${SHA256} ]]; then
  echo "face-api ${VERSION} already present in ${dest}"
  exit 0
fi

if [[ ! -f "${TARBALL}" ]] || ! verify; then
  rm -f "${TARBALL}"
  command -v npm >/dev/null || { echo "fetch_face_api: npm is required (apt-get install npm)" >&2; exit 1; }
  npm pack --silent "${PACKAGE}@${VERSION}" >/dev/null
fi
if ! verify; then
  echo "fetch_face_api: SHA-256 of ${TARBALL} does not match the pinned value; refusing it" >&2
  rm -f "${TARBALL}"
  exit 1
fi

rm -rf package .extracted-*
tar xzf "${TARBALL}"
touch ".extracted-${SHA256}"
echo "face-api ${VERSION} extracted to ${dest}/package (models: ${dest}/package/model)"
