#!/usr/bin/env bash
# Makes the README's before/after picture with Veil itself, from a public-domain photo: NASA's
# portrait of astronaut Eileen Collins ("no known copyright restrictions, released into the public
# domain", as scikit-image documents it), taken from Debian's python3-skimage package.
# The picture is `veil eval`'s contact sheet: original | key A | key B | restored with key A |
# "restored" with the wrong key, for the face of the photo, with the shipped models.
#
# Usage: tools/readme_picture.sh [BUILD_DIR] [OUT.png]   (default OUT: models/cards/before-after.png)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
out="${2:-$repo/models/cards/before-after.png}"
readonly PHOTO_SHA256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3-skimage >/dev/null 2>&1 && dpkg -x python3-skimage_*.deb x)
mkdir -p "$work/photo"
cp "$work/x/usr/lib/python3/dist-packages/skimage/data/astronaut.png" "$work/photo/astronaut.png"
echo "${PHOTO_SHA256}  $work/photo/astronaut.png" | sha256sum --check --status ||
  { echo "readme_picture: astronaut.png is not the expected photo" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"$build/tools/veil" eval --images "$work/photo" --sheet "$out"
echo "wrote $out"
