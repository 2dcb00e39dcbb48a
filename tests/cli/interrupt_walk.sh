#!/usr/bin/env bash
# Ctrl-C and SIGTERM on long jobs, through the real binary: a stopped job leaves nothing
# half-written (no output, sidecar, payload container or temporary file), exits 13, and the same
# command run again finishes; a job stopped after its sidecar and payload container appeared runs
# again over them; a headless camera recording stopped by Ctrl-C is kept, with its manifest and
# payload container.
# Usage: interrupt_walk.sh VEIL DEMO_DIR VIDEO_FRAMES_HELPER
DEMO=$(realpath "${2:?usage: $0 VEIL DEMO_DIR HELPER}")
FRAMES=$(realpath "${3:?usage: $0 VEIL DEMO_DIR HELPER}")
source "$(dirname "$0")/lib.sh"
# Job control: background jobs of a script otherwise start with SIGINT ignored (and Veil, like any
# well-behaved program, leaves an ignored SIGINT ignored).
set -m
export VEIL_STORE=$WORK/store VEIL_PASSPHRASE=pw VEIL_ACTOR=admin
expect 0 "$VEIL" keys init --kdf-ops 1 --kdf-mem-mib 8

# wait_for GLOB PID: waits (up to 120 s) until a file matching GLOB exists while PID runs.
wait_for() {
  for _ in $(seq 1200); do
    compgen -G "$1" >/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stopped SIGNAL WANT_CODE GLOB CMD...: starts CMD, sends SIGNAL once GLOB appears, checks the exit code.
stopped() {
  local sig=$1 want=$2 glob=$3; shift 3
  "$@" >"$WORK/.out" 2>"$WORK/.err" &
  local pid=$!
  if ! wait_for "$glob" $pid; then
    echo "FAIL: '$*' never wrote $glob"; FAILED=$((FAILED + 1)); wait $pid; return
  fi
  if ! kill -s "$sig" $pid; then
    echo "FAIL: '$*' ended before it could be stopped"; FAILED=$((FAILED + 1)); wait $pid; return
  fi
  wait $pid; local got=$?
  OUT=$(cat "$WORK/.out"); ERR=$(cat "$WORK/.err")
  [ "$got" -eq "$want" ] && PASSED=$((PASSED + 1)) \
    || { echo "FAIL: '$*' stopped by $sig exited $got, expected $want"; echo "  $ERR"; FAILED=$((FAILED + 1)); }
}
no_leftovers() {  # FOLDER: no temporary files anywhere below
  local left; left=$(find "$1" -name '*.tmp*' -o -name '.veil-tmp*' -o -name '.veil-video-*' | head -5)
  [ -z "$left" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: left behind: $left"; FAILED=$((FAILED + 1)); }
}

# A video: Ctrl-C while frames are being written (a 600-frame clip: many seconds of work, stopped
# after its first frame), then the same command on a short clip runs to the end.
expect 0 "$FRAMES" make "$DEMO/sample1.jpg" long.avi 600
expect 0 "$FRAMES" make "$DEMO/sample1.jpg" clip.avi 150
stopped INT 13 '.veil-video-*/video.mkv' "$VEIL" anonymize long.avi -o long.mkv --detector tiny --quiet
contains "interrupted" "$ERR"
[ ! -e long.mkv ] && [ ! -e long.mkv.veil ] && [ ! -e long.mkv.veilpay ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: a stopped video job left files: $(ls)"; FAILED=$((FAILED + 1)); }
no_leftovers .
expect 0 "$VEIL" anonymize clip.avi -o anon.mkv --detector tiny --quiet
[ "$("$FRAMES" count anon.mkv)" = 150 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: not 150 frames"; FAILED=$((FAILED + 1)); }

# Killed after its payload container and sidecar appeared, before the video: the same command
# goes on over its own identical leftovers and gives the same manifest.
cp anon.mkv.veil first.veil
rm anon.mkv
expect 0 "$VEIL" anonymize clip.avi -o anon.mkv --detector tiny --quiet
cmp -s first.veil anon.mkv.veil && PASSED=$((PASSED + 1)) || { echo "FAIL: the re-run's manifest differs"; FAILED=$((FAILED + 1)); }
# Someone else's file of that name is still never replaced.
rm anon.mkv && echo "not ours" > anon.mkv.veilpay
expect 10 "$VEIL" anonymize clip.avi -o anon.mkv --detector tiny --quiet
[ "$(cat anon.mkv.veilpay)" = "not ours" ] && [ ! -e anon.mkv ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: replaced a file that was not ours"; FAILED=$((FAILED + 1)); }

# A folder of photos: SIGTERM once the first is written; what was written is whole, the rest is
# done by the same command again.
mkdir photos
for i in $(seq -w 1 24); do cp "$DEMO/sample1.jpg" "photos/p$i.jpg"; done
stopped TERM 13 'out/photos/p*.jpg' "$VEIL" anonymize photos -o out --manifest sidecar --quiet
contains "run the same command again to resume" "$ERR"
no_leftovers out
done_before=$(ls out/photos/*.jpg | wc -l)
[ "$done_before" -lt 24 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: all 24 done before the signal"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize photos -o out --manifest sidecar --quiet --json
contains "\"skipped\":$done_before" "$(echo "$OUT" | tr -d ' \n')"
[ "$(ls out/photos/*.jpg | wc -l)" = 24 ] && [ "$(ls out/photos/*.veil | wc -l)" = 24 ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the resumed batch is incomplete"; FAILED=$((FAILED + 1)); }
# A sidecar left by a job stopped just before its image: the same command goes on.
rm out/photos/p01.jpg
expect 0 "$VEIL" anonymize photos -o out --manifest sidecar --quiet
[ -f out/photos/p01.jpg ] && PASSED=$((PASSED + 1)) || { echo "FAIL: p01 not redone"; FAILED=$((FAILED + 1)); }

# A headless camera recording is stopped with Ctrl-C: what was recorded is kept, exit 0.
stopped INT 0 '.veil-video-*/video.avi' "$VEIL" camera --input long.avi -o rec.avi --no-preview
contains "stopped by a signal" "$OUT"
n=$("$FRAMES" count rec.avi)
[ "${n:-0}" -gt 0 ] && [ "${n:-0}" -lt 600 ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the stopped recording has ${n:-no} frames"; FAILED=$((FAILED + 1)); }
[ -f rec.avi.veil ] && [ -f rec.avi.veilpay ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: the recording has no manifest or payload container: $(ls)"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" camera --input clip.avi -o short.mkv --no-preview --frames 7 --payload none
contains "7 frames" "$OUT"
[ "$("$FRAMES" count short.mkv)" = 7 ] && [ -f short.mkv.veil ] && [ ! -e short.mkv.veilpay ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: --frames 7 --payload none"; FAILED=$((FAILED + 1)); }
# A recording never starts over names already taken (it could not be made again if its save failed).
touch taken.avi.veil
expect 10 "$VEIL" camera --input clip.avi -o taken.avi --no-preview --frames 3
[ ! -e taken.avi ] && PASSED=$((PASSED + 1)) || { echo "FAIL: recorded over a taken sidecar name"; FAILED=$((FAILED + 1)); }
no_leftovers .
finish
