#!/usr/bin/env bash
# The GAN trainer end to end on a toy data set (copies of the demo photos): data preparation, a few
# steps with every loss on (the identity loss differentiates through the frozen recognizer), a
# checkpoint, a resume, and an export that `veil eval` loads; then the pseudonym reader trained for
# the exported generator, exported next to it, where `veil eval` reads the pseudonyms back with it.
# The numbers mean nothing; this checks that training runs, as the real runs on the full data set
# need it to.
# Then the flow trainer: every loss (the informed attacker's too), a checkpoint, a resume, an export
# and the evaluation of the exported file.
# Usage: train_smoke_walk.sh VEIL_TRAIN_GAN VEIL_TRAIN_PREP VEIL DEMO_DIR VEIL_TRAIN_READER VEIL_TRAIN_FLOW
PREP=$(realpath "${2:?usage: $0 VEIL_TRAIN_GAN VEIL_TRAIN_PREP VEIL DEMO_DIR VEIL_TRAIN_READER VEIL_TRAIN_FLOW}")
VEIL_BIN=$(realpath "${3:?}")
DEMO=$(realpath "${4:?}")
READER=$(realpath "${5:?}")
FLOW_TRAINER=$(realpath "${6:?}")
FLOW=$(realpath "$(dirname "$0")/../../models/veil-flow-v1.veilmodel")
source "$(dirname "$0")/lib.sh"  # $VEIL is the trainer
export OMP_WAIT_POLICY=PASSIVE VEIL_TRAIN_DIR=$WORK/train  # caches stay in the test's folder

toy_training_set "$PREP" "$DEMO"
contains "holdout 2" "$OUT"

FLAGS=(--data data --batch 2 --threads 2 --holdout-eval 2 --adv-start 2 --cyc-every 2 --eval-minutes 0.05
       --checkpoint-minutes 0.05)
expect 0 "$VEIL" "${FLAGS[@]}" --out gan --minutes 0.15 --w-perc 1
contains "checkpoint at step" "$OUT$ERR"
# The last value a column of the log (gan/log.tsv, or the second argument) took; empty when never logged.
last_logged() {
  awk -F'\t' -v name="$1" '/^step\t/ { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } c && $c != "" { v = $c } END { print v }' "${2:-gan/log.tsv}"
}
# The perceptual term (the recognizer's feature maps of reconstruction and input) is logged, > 0;
# so is the hold-out fine detail of reconstructions and swaps (renders' over originals').
for column in g_perc eval_detail_rec eval_detail_swap; do
  v=$(last_logged $column)
  awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' && PASSED=$((PASSED + 1)) \
    || { echo "FAIL: $column not logged or not > 0: '$v'"; FAILED=$((FAILED + 1)); }
done
contains "detail rec " "$OUT"
# The toy set holds each photo 4 times: the copies of the 2 held-out ones are left out of training.
echo "$OUT" | grep -Eq "train faces \(([2-9]|[1-9][0-9]+) left out: the same photo as a held-out face\)" \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: held-out photos' copies trained on"; FAILED=$((FAILED + 1)); }
[ -s gan/ckpt.pt ] && PASSED=$((PASSED + 1)) || { echo "FAIL: no checkpoint"; FAILED=$((FAILED + 1)); }
first=$(tail -n 1 gan/log.tsv | cut -f1)
# The metrics are those of the moving average of E and G (what is exported), the raw weights beside.
contains "(averaged weights)" "$OUT"
contains "raw weights:" "$OUT"

# Resumed where it stopped, then exported. The log's header is made that of a trainer that logged
# fewer columns: the resumed run writes its own header again before its rows.
sed -i '1s/\teval_detail_rec\teval_detail_swap\teval_d_pseudonym_target$//' gan/log.tsv
expect 0 "$VEIL" "${FLAGS[@]}" --out gan --minutes 0.1 --resume --export out
contains "resumed from" "$OUT$ERR"
last=$(tail -n 1 gan/log.tsv | cut -f1)
[ "${last:-0}" -gt "${first:-0}" ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the resumed run did not go on from step $first (last $last)"; FAILED=$((FAILED + 1)); }
[ "$(grep -c '^step' gan/log.tsv)" = 2 ] && [ "$(grep '^step' gan/log.tsv | tail -n 1 | awk -F'\t' '{print $NF}')" = eval_d_pseudonym_target ] \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: the resumed log's header: $(grep '^step' gan/log.tsv)"; FAILED=$((FAILED + 1)); }
# Every row of the resumed run has its header's columns, and its evaluations measure the raw weights too.
bad=$(awk -F'\t' '/^step\t/ { n = NF; h++; next } h == 2 && NF != n' gan/log.tsv)
raw=$(awk -F'\t' '/^step\t/ { for (i = 1; i <= NF; i++) if ($i == "eval_raw_d_rec") c = i; next } c && $c != ""' gan/log.tsv)
[ -z "$bad" ] && [ -n "$raw" ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: rows unlike their header ($bad) or no raw-weight metrics"; FAILED=$((FAILED + 1)); }

# The compact checkpoint (what the repository ships in models/train/) resumes another run: its
# averaged weights, its step, a fresh optimizer; a damaged one is refused. One written before the
# VEILCKPT header (44 bytes: magic, version, SHA-256 of the archive) still resumes.
expect 0 "$VEIL" "${FLAGS[@]}" --out gan2 --minutes 0.05 --resume-from out/train/gan-checkpoint.pt
contains "resumed averaged weights from the compact checkpoint at step $last" "$OUT"
tail -c +45 out/train/gan-checkpoint.pt > legacy.pt
expect 0 "$VEIL" "${FLAGS[@]}" --out gan4 --minutes 0 --resume-from legacy.pt
contains "resumed averaged weights from the compact checkpoint at step $last" "$OUT"
# A wider G (--g-ch64/--g-ch128) starts from the compact checkpoint's faces: its first evaluation
# is the narrow one's. It trains on and keeps its widths on --resume; narrowing a checkpoint's G and
# widening a full checkpoint (optimizer state) are refused.
narrow_eval=$(echo "$OUT" | grep -o 'PSNR [0-9.]* dB  SSIM [0-9.]*' | head -n 1)
expect 0 "$VEIL" "${FLAGS[@]}" --out gan6 --minutes 0 --resume-from out/train/gan-checkpoint.pt --g-ch64 56 --g-ch128 28
contains "G widened from ch64/ch128 48/24 to 56/28" "$OUT"
[ -n "$narrow_eval" ] && contains "$narrow_eval" "$OUT" \
  || { echo "FAIL: no evaluation line from the narrow checkpoint to compare with"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" "${FLAGS[@]}" --out gan6 --minutes 0.05 --resume-from out/train/gan-checkpoint.pt --g-ch64 56 --g-ch128 28
contains "checkpoint at step" "$OUT$ERR"
expect 0 "$VEIL" "${FLAGS[@]}" --out gan6 --minutes 0 --resume --export out6
contains "resumed from" "$OUT$ERR"
# The exported generator file's options (a protobuf map entry: key, then value) say the widths.
python3 - out6/veil-generator-v1.veilmodel <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: the exported G is not 56/28 wide"; FAILED=$((FAILED + 1)); }
import sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if b"\x04ch64\x12\x0256" in d and b"\x05ch128\x12\x0228" in d else 1)
PY
expect 2 "$VEIL" "${FLAGS[@]}" --out gan6 --minutes 0 --resume --g-ch64 64
contains "a full checkpoint cannot be widened" "$ERR"
expect 2 "$VEIL" "${FLAGS[@]}" --out gan7 --minutes 0 --resume-from gan6/gan-checkpoint.pt --g-ch128 24
contains "cannot narrow the checkpoint's generator (ch64/ch128 56/28)" "$ERR"
cp out/train/gan-checkpoint.pt damaged.pt && flip_byte damaged.pt 2000
expect 6 "$VEIL" "${FLAGS[@]}" --out gan3 --minutes 0.05 --resume-from damaged.pt
contains "corrupt" "$ERR"

# --bf16: the forward passes under bfloat16 autocast, where the CPU computes bfloat16 in hardware;
# elsewhere it is refused (bfloat16 would be emulated, slower than float32).
if grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo; then
  expect 0 "$VEIL" "${FLAGS[@]}" --out gan5 --minutes 0.05 --resume-from out/train/gan-checkpoint.pt --bf16
  contains "device cpu, bfloat16 autocast" "$OUT"
  contains "checkpoint at step" "$OUT$ERR"
else
  expect 8 "$VEIL" "${FLAGS[@]}" --out gan5 --minutes 0.05 --bf16
  contains "--bf16 needs a CPU with AMX or AVX512-BF16" "$ERR"
fi

# The pseudonym table: every face's code through the shipped flow under 8 training keys, the same
# bytes every time. With it a run aims a share of its swaps at the faces' own pseudonyms (refused
# without it) and its evaluations report how far the swaps read back from those pseudonyms.
expect 8 "$VEIL" "${FLAGS[@]}" --out gan8 --minutes 0 --resume-from out/train/gan-checkpoint.pt --flow-swaps 0.5
contains "--flow-swaps needs the data set's pseudonym table" "$ERR"
expect 0 "$FLOW_TRAINER" --pseudonyms "$FLOW" --data data
contains "pseudonyms.f32 ($(cat data/DONE) faces x 8 keys) from veil-flow-v1" "$ERR"
[ "$(stat -c %s data/pseudonyms.f32)" = $(( $(cat data/DONE) * 8 * 128 * 4 )) ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the pseudonym table's size"; FAILED=$((FAILED + 1)); }
contains "model_sha256 $(sha256sum "$FLOW" | cut -d' ' -f1)" "$(cat data/pseudonyms.txt)"
cp data/pseudonyms.f32 pseudonyms-first.f32
expect 0 "$FLOW_TRAINER" --pseudonyms "$FLOW" --data data
cmp -s data/pseudonyms.f32 pseudonyms-first.f32 && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the pseudonym table differs on a second run"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" "${FLAGS[@]}" --out gan8 --minutes 0.05 --resume-from out/train/gan-checkpoint.pt --flow-swaps 0.5
contains "d(swap to own pseudonym, pseudonym) " "$OUT"
v=$(last_logged eval_d_pseudonym_target gan8/log.tsv)
awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: eval_d_pseudonym_target not logged or not > 0: '$v'"; FAILED=$((FAILED + 1)); }
expect 2 "$VEIL" "${FLAGS[@]}" --out gan8 --minutes 0 --resume --flow-swaps 1.5
contains "option --flow-swaps must be a number in [0, 1]" "$ERR"
# A truncated table is refused when the data set is opened.
head -c 4096 pseudonyms-first.f32 > data/pseudonyms.f32
expect 6 "$VEIL" "${FLAGS[@]}" --out gan8 --minutes 0 --resume
contains "pseudonyms.f32 has 4096 bytes, not 1 to 8 times" "$ERR"
rm data/pseudonyms.f32

# The exported files are model files the engine loads and renders with. The flow defaults to the
# file next to the encoder, as in the pipeline: none there yet, so it is named.
expect 3 "$VEIL_BIN" eval --images "$DEMO" --limit 2 --encoder out/veil-encoder-v1.veilmodel \
  --generator out/veil-generator-v1.veilmodel --json
contains "out/veil-flow-v1.veilmodel" "$ERR"
expect 0 "$VEIL_BIN" eval --images "$DEMO" --limit 2 --encoder out/veil-encoder-v1.veilmodel \
  --generator out/veil-generator-v1.veilmodel --flow "$FLOW" --json --sheet sheet.png
contains "anonymized_vs_original" "$OUT"
contains '"read_back_by": "recognizer"' "$OUT"
# The contact sheet: one row per face, original | key A | key B | restored | wrong key (128 px each).
python3 - sheet.png <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: the contact sheet is not 640 x 256"; FAILED=$((FAILED + 1)); }
import struct, sys
sys.exit(0 if struct.unpack(">II", open(sys.argv[1], "rb").read()[16:24]) == (640, 256) else 1)
PY
expect 10 "$VEIL_BIN" eval --images "$DEMO" --limit 2 --sheet sheet.png   # refused before any work

# The reader for that generator: a few steps with the colour augmentation and both losses, a
# checkpoint, a resume, the export; veil eval then reads the pseudonyms back with it.
cp "$FLOW" out/
RFLAGS=(--data data --models out --out reader --batch 2 --threads 2 --holdout-eval 2 --eval-every 2)
expect 0 "$READER" "${RFLAGS[@]}" --minutes 0.05
contains "checkpoint at step" "$OUT"
rfirst=$(printf '%s\n' "$OUT" | sed -n 's/^checkpoint at step \([0-9]*\).*/\1/p' | tail -n 1)
expect 0 "$READER" "${RFLAGS[@]}" --minutes 0.05 --resume --export out/veil-reader-v1.veilmodel
contains "resumed from" "$OUT"
contains "exported out/veil-reader-v1.veilmodel" "$OUT"
rlast=$(printf '%s\n' "$OUT" | sed -n 's/^checkpoint at step \([0-9]*\).*/\1/p' | tail -n 1)
[ "${rlast:-0}" -gt "${rfirst:-0}" ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the resumed reader did not go on from step $rfirst (last $rlast)"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL_BIN" eval --images "$DEMO" --limit 2 --encoder out/veil-encoder-v1.veilmodel \
  --generator out/veil-generator-v1.veilmodel --json
contains '"read_back_by": "veil-reader-v1"' "$OUT"
# A reader trained for another generator is refused when named.
expect 2 "$VEIL_BIN" eval --images "$DEMO" --limit 2 --reader out/veil-reader-v1.veilmodel --json
contains "trained for another generator" "$ERR"

# The flow: a few steps with every loss, a checkpoint, a resume that goes on, an export the engine
# loads, and its evaluation on the toy hold-out codes.
FFLAGS=(--data data --work flow --batch 64 --keys 8 --threads 2 --eval-every 0 --checkpoint-seconds 1
        --log-every 1 --signal-dims 76 --w-lin 1 --lin-batch 320)
expect 0 "$FLOW_TRAINER" "${FFLAGS[@]}" --steps 2
[ -s flow/ckpt.pt ] && PASSED=$((PASSED + 1)) || { echo "FAIL: no flow checkpoint"; FAILED=$((FAILED + 1)); }
contains "(l) linear attacker" "$ERR"
expect 0 "$FLOW_TRAINER" "${FFLAGS[@]}" --steps 4 --export flow.veilmodel
contains "resumed from" "$ERR"
[ "$(tail -n 1 flow/log.tsv | cut -f1)" = 4 ] && [ "$(grep -c '^step' flow/log.tsv)" = 1 ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the resumed flow did not reach step 4 under one header: $(cat flow/log.tsv)"; FAILED=$((FAILED + 1)); }
expect 0 "$FLOW_TRAINER" --eval flow.veilmodel --data data
contains "invertibility" "$ERR"
contains "(r) |F^-1(F(z,k) + e) - z|" "$ERR"
finish
