#!/usr/bin/env bash
# Training E and G (veil-train-gan) on a GPU machine that has PyTorch with CUDA, CMake and Python's
# cv2 but no OpenCV C++ library, protobuf or network, and takes a working tree of at most 64 MiB (the
# device image). The trainer-only build (VEIL_TRAINER_ONLY) needs LibTorch and libsodium; the data
# travels as a pack of the prepared set (veil-train-pack, engine/train/data/utk_pack.h).
#
#   bash tools/train_gpu.sh prepare [TRAIN_FACES] [QUALITY] [SEED]
#       here, after a full build: fills .gpu/ (git-ignored) with a pack of the set ($VEIL_TRAIN_DIR/
#       utkface-v1), the libsodium and nlohmann-json Debian packages and the recognizer's weights;
#       with the working tree it must stay under the 64 MiB the tool carries (counted in file-system
#       blocks): 6,500 faces at quality 92 with one key's rows of the set's pseudonym table (for
#       --flow-swaps) make a 37 MB pack beside a 17 MiB tree, 60 MiB in all, over a quarter of the
#       train split. SEED picks the random draw; by default it comes from the SHA-256 of
#       models/train/gan-checkpoint.pt, so each committed checkpoint trains on another draw rather
#       than the same faces again (draws overlap: three cover about 70 % of the split)
#   bash tools/train_gpu.sh run OUT SECONDS [veil-train-gan options]
#       there, with .gpu carried: builds the trainer, unpacks the data, trains from
#       models/train/gan-checkpoint.pt until SECONDS after the start (build time included), with
#       OUT as the trainer's --out: the compact checkpoint, the log, the preview, and the full
#       checkpoint cut into 15 MB parts at the end (cat OUT/ckpt.pt.part-* > ckpt.pt)
# Back here, export and measure as for a CPU run (models/README.md, "Continue training").
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
shift || true

case "$cmd" in
prepare)
  faces=${1:-6500}
  quality=${2:-92}
  seed=${3:-$((16#$(sha256sum models/train/gan-checkpoint.pt | cut -c1-12)))}
  train_dir=${VEIL_TRAIN_DIR:-$HOME/.cache/veil/train}
  rm -rf .gpu
  mkdir -p .gpu/debs .gpu/face-api
  build/tools/veil-train-pack --data "$train_dir/utkface-v1" --out .gpu/pack --train "$faces" --holdout 100 \
    --quality "$quality" --seed "$seed" --pseudonym-keys 1
  (cd .gpu/debs && apt-get download -q libsodium23 libsodium-dev nlohmann-json3-dev >/dev/null) ||
    { echo "train_gpu: cannot download the Debian packages" >&2; exit 1; }
  cp .cache/face-api/package/model/face_recognition_model* .gpu/face-api/
  kib=$(( $(du -s .gpu | cut -f1) + $( (git ls-files; git ls-files --others --exclude-standard) |
          xargs -d '\n' du -c 2>/dev/null | tail -n 1 | cut -f1) ))
  echo "train_gpu: .gpu and the working tree: $((kib / 1024)) MiB of the 64 the tool carries"
  [ "$kib" -le $((62 * 1024)) ] || { echo "train_gpu: too large: pack fewer faces" >&2; exit 1; }
  ;;
run)
  out=$1
  seconds=$2
  shift 2
  t0=$(date +%s)
  dep=/tmp/veil-dep
  for f in .gpu/debs/*.deb; do dpkg -x "$f" "$dep"; done
  rm -rf /tmp/veil-data  # an earlier call's, on a machine still warm
  python3 tools/train_unpack.py .gpu/pack /tmp/veil-data/utkface-v1 > /tmp/veil-unpack.log 2>&1 &
  unpack=$!
  echo "train_gpu: $(nproc) cores, $(g++ --version | head -1), $(cmake --version | head -1)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  torch_root=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
  gen=$(command -v ninja > /dev/null && echo Ninja || echo "Unix Makefiles")
  common=(-S . -G "$gen" -DVEIL_TRAINER_ONLY=ON -DCMAKE_BUILD_TYPE=Release -DVEIL_BUILD_TESTS=OFF)
  cmake "${common[@]}" -B /tmp/veil-build -DCMAKE_PREFIX_PATH="$torch_root/share/cmake;$dep/usr"
  rm -f /tmp/veil-build/tools/veil-train-gan  # a machine still warm keeps an earlier call's
  cmake --build /tmp/veil-build -j"$(nproc)" -- $([ "$gen" = Ninja ] && echo "-k 0" || echo -k) > /tmp/veil-make.log 2>&1 ||
    { grep -Ev '^\[[0-9]+/[0-9]+\] Building' /tmp/veil-make.log; exit 1; }
  ldd /tmp/veil-build/tools/veil-train-gan > /tmp/veil-ldd.txt
  grep -E 'torch_cuda|sodium' /tmp/veil-ldd.txt || true
  grep -q libtorch_cuda /tmp/veil-ldd.txt || { echo "train_gpu: no libtorch_cuda linked"; exit 1; }
  wait "$unpack" || { cat /tmp/veil-unpack.log; exit 1; }
  cat /tmp/veil-unpack.log
  left=$((seconds - ($(date +%s) - t0) - 60))  # 60 s for the last evaluation, checkpoints and copies
  test "$left" -gt 30 || { echo "train_gpu: only $left s left to train"; exit 1; }
  echo "train_gpu: built and unpacked in $(($(date +%s) - t0)) s; training for $left s"
  VEIL_FACE_API_DIR=$PWD/.gpu/face-api /tmp/veil-build/tools/veil-train-gan --data /tmp/veil-data/utkface-v1 \
    --out "$out" --resume-from models/train/gan-checkpoint.pt \
    --minutes "$(python3 -c "print($left / 60)")" "$@"
  split -b 15M -d "$out/ckpt.pt" "$out/ckpt.pt.part-" && rm "$out/ckpt.pt"
  ls -la "$out"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | grep "^#"
  exit 2
  ;;
esac
