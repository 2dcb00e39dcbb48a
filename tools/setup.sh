#!/usr/bin/env bash
# Installs everything Veil needs on Debian 12 and fetches the pinned pretrained face networks.
# Run as root or with sudo available. Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake pkg-config
  libtorch-dev libopencv-dev libsodium-dev libprotobuf-dev protobuf-compiler
  doctest-dev nlohmann-json3-dev libopenblas0-openmp
  python3-opencv             # tools/train_unpack.py (the GPU training recipe), tested here
  clang libclang-rt-14-dev   # libFuzzer targets and sanitizer runs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm only fetches the pinned model package; keep an existing Node.js installation as it is.
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch's matrix products go through libblas.so.3: Debian's default is the slow reference BLAS.
# Use OpenBLAS's OpenMP flavour (the pthread one oversubscribes next to LibTorch's threads).
for lib in libblas.so.3 liblapack.so.3; do
  alt="/usr/lib/x86_64-linux-gnu/openblas-openmp/${lib}"
  [ -e "$alt" ] && $SUDO update-alternatives --set "${lib}-x86_64-linux-gnu" "$alt" >/dev/null
done

"$(dirname "$0")/fetch_face_api.sh"
"$(dirname "$0")/fetch_human.sh"
echo "setup: done"
