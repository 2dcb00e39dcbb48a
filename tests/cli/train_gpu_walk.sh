#!/usr/bin/env bash
# The GPU training recipe (tools/train_gpu.sh) on this machine, without a GPU: the trainer-only build
# (VEIL_TRAINER_ONLY: LibTorch and libsodium, no OpenCV or protobuf) configures and builds; a pack of
# a toy set (veil-train-pack) unpacks (tools/train_unpack.py) into a set whose crops are the
# originals' within JPEG error, in the same colour order; the trainer-only program trains on it,
# writes its checkpoints and a PPM preview and refuses to export; the full build's trainer resumes
# from its checkpoint and exports the model files (the hand-off back from a GPU machine).
# Usage: train_gpu_walk.sh VEIL_TRAIN_GAN VEIL_TRAIN_PREP VEIL_TRAIN_PACK DEMO_DIR SOURCE_DIR
PREP=$(realpath "${2:?usage: $0 VEIL_TRAIN_GAN VEIL_TRAIN_PREP VEIL_TRAIN_PACK DEMO_DIR SOURCE_DIR}")
PACK=$(realpath "${3:?}")
DEMO=$(realpath "${4:?}")
SRC=$(realpath "${5:?}")
source "$(dirname "$0")/lib.sh"  # $VEIL is the full build's trainer
export OMP_WAIT_POLICY=PASSIVE VEIL_TRAIN_DIR=$WORK/train

# The trainer-only build: no OpenCV or protobuf anywhere in its compile commands.
expect 0 cmake -S "$SRC" -B to -DVEIL_TRAINER_ONLY=ON -DCMAKE_BUILD_TYPE=Release
expect 0 cmake --build to -j2
TRAINER=$WORK/to/tools/veil-train-gan
[ -x "$TRAINER" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: no trainer-only program"; FAILED=$((FAILED + 1)); }
[ -s to/compile_commands.json ] && ! grep -Eiq "opencv|protobuf|veil_proto" to/compile_commands.json \
  && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the trainer-only build compiles against OpenCV or protobuf"; FAILED=$((FAILED + 1)); }

toy_training_set "$PREP" "$DEMO"

# A pseudonym table for the set (random rows stand in for veil-train-flow --pseudonyms, which needs
# the full build): the pack carries its first 2 keys' rows, and the trainer-only program aims swaps
# at them (--flow-swaps).
expect 0 python3 - data <<'PY'
import random, struct, sys
n = int(open(f"{sys.argv[1]}/DONE").read())
random.seed(1)
open(f"{sys.argv[1]}/pseudonyms.f32", "wb").write(struct.pack(f"<{n * 8 * 128}f", *(random.gauss(0, 0.1) for _ in range(n * 8 * 128))))
open(f"{sys.argv[1]}/pseudonyms.txt", "w").write("model_id test\n")
PY
# The pack: 3 of the train faces (never a held-out photo's copy) and the 2 held-out ones.
expect 0 "$PACK" --data data --out pack --train 3 --holdout 2 --quality 95
contains "3 train + 2 held-out faces" "$OUT"
contains "5 quality 95 seed 1" "$(cat pack/PACKED)"
expect 10 "$PACK" --data data --out pack --train 3   # an existing pack is never overwritten
# The seed decides the draw: the same seed packs the same faces, another seed others.
expect 0 "$PACK" --data data --out pack-again --train 3 --holdout 2 --quality 95
expect 0 "$PACK" --data data --out pack-seed7 --train 3 --holdout 2 --quality 95 --seed 7
cmp -s pack/index.tsv pack-again/index.tsv && cmp -s pack/crops.jpg.bin pack-again/crops.jpg.bin \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: one seed packed two different draws"; FAILED=$((FAILED + 1)); }
! cmp -s pack/index.tsv pack-seed7/index.tsv && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: seeds 1 and 7 packed the same faces"; FAILED=$((FAILED + 1)); }
contains "seed 7" "$(cat pack-seed7/PACKED)"
# Asked for more train faces than there are, a pack holds every train face but no copy of a held-out
# photo (the toy set holds each photo 4 times, under the prefixes 1_ to 4_).
expect 0 "$PACK" --data data --out pack-all --train 100000 --holdout 2
expect 0 python3 - data pack-all <<'PY'
import sys
def splits(d):
    return dict(l.split("\t")[1:3] for l in open(f"{d}/index.tsv").read().splitlines()[1:])
held = {n.split("_", 1)[1] for n, sp in splits(sys.argv[1]).items() if sp == "holdout"}
train = [n for n, sp in splits(sys.argv[2]).items() if sp == "train"]
leaks = [n for n in train if n.split("_", 1)[1] in held]
assert train and not leaks, (train, leaks)
print(len(train), "train faces, none a held-out photo's copy")
PY
# The unpacking needs Python with cv2 and numpy (tools/setup.sh installs python3-opencv).
PY=$(for p in python3 /usr/bin/python3; do "$p" -c 'import cv2, numpy' 2>/dev/null && echo "$p" && break; done)
[ -n "$PY" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: no python3 with cv2 and numpy"; FAILED=$((FAILED + 1)); }
expect 0 "${PY:-python3}" "$SRC/tools/train_unpack.py" pack unpacked
contains "5 faces in unpacked" "$OUT"
expect 1 "${PY:-python3}" "$SRC/tools/train_unpack.py" pack unpacked   # refused: exists
# Every unpacked crop is its original's (by file name) within JPEG error, BGR as the set; desc rows too.
expect 0 "${PY:-python3}" - data unpacked <<'PY'
import sys
import numpy as np
def load(d):
    names = [l.split("\t")[1] for l in open(f"{d}/index.tsv").read().splitlines()[1:]]
    crops = np.fromfile(f"{d}/crops128.u8", np.uint8).reshape(len(names), 128, 128, 3).astype(np.float32)
    return names, crops, np.fromfile(f"{d}/desc.f32", "<f4").reshape(len(names), 128)
names, crops, desc = load(sys.argv[1])
pnames, pcrops, pdesc = load(sys.argv[2])
for k, name in enumerate(pnames):
    i = names.index(name)
    err = np.abs(pcrops[k] - crops[i]).mean()
    swapped = np.abs(pcrops[k][..., ::-1] - crops[i]).mean()
    assert err < 3 and err < swapped, (name, err, swapped)
    assert (pdesc[k] == desc[i]).all(), name
    table = np.fromfile(f"{sys.argv[1]}/pseudonyms.f32", "<f4").reshape(len(names), 8, 128)
    packed = np.fromfile(f"{sys.argv[2]}/pseudonyms.f32", "<f4").reshape(len(pnames), 2, 128)
    assert (packed[k] == table[i, :2]).all(), name
print("crops within", max(np.abs(pcrops[k] - crops[names.index(n)]).mean() for k, n in enumerate(pnames)))
PY

# The trainer-only program trains on the unpacked set: checkpoints, log, a PPM preview; no export.
FLAGS=(--batch 2 --threads 2 --holdout-eval 2 --adv-start 2 --cyc-every 2 --eval-minutes 0.05 --checkpoint-minutes 0.05)
expect 0 env VEIL_FACE_API_DIR="$SRC/.cache/face-api/package/model" "$TRAINER" --data unpacked --out gan \
  --minutes 0.1 "${FLAGS[@]}" --flow-swaps 0.5
contains "device cpu" "$OUT"
contains "d(swap to own pseudonym, pseudonym) " "$OUT"
contains "3 train faces" "$OUT"
[ -s gan/ckpt.pt ] && [ -s gan/gan-checkpoint.pt ] && [ -s gan/log.tsv ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the trainer-only program wrote no checkpoints or log"; FAILED=$((FAILED + 1)); }
# The preview: one 512-wide row (original | reconstruction | swap | cycle) per held-out face.
expect 0 "${PY:-python3}" - gan/preview.ppm <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
magic, size, maxval, pixels = data.split(b"\n", 3)  # pixels may begin with any byte
assert (magic, size, maxval) == (b"P6", b"512 256", b"255"), (magic, size, maxval)
assert len(pixels) == 512 * 256 * 3
PY
expect 8 "$TRAINER" --data unpacked --out gan --minutes 0 --export out
contains "export them with a full build" "$ERR"

# Back on a full build: resume from its checkpoint and export the model files.
step=$(tail -n 1 gan/log.tsv | cut -f1)
expect 0 "$VEIL" --data data --out gan2 --resume-from gan/ckpt.pt --minutes 0 --holdout-eval 2 --export out
contains "at step $step" "$OUT"
[ -s out/veil-encoder-v1.veilmodel ] && [ -s out/veil-generator-v1.veilmodel ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: no model files exported from the trainer-only checkpoint"; FAILED=$((FAILED + 1)); }
finish
