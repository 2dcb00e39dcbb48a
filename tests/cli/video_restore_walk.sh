#!/usr/bin/env bash
# A video through the real binary: anonymize to lossless .mkv with sealed payloads in the sidecar,
# request -> 2 approvals -> restore, the original frames back bit for bit; refusals on the way.
# Usage: video_restore_walk.sh VEIL DEMO_DIR VIDEO_FRAMES_HELPER
DEMO=$(realpath "${2:?usage: $0 VEIL DEMO_DIR HELPER}")
FRAMES=$(realpath "${3:?usage: $0 VEIL DEMO_DIR HELPER}")
source "$(dirname "$0")/lib.sh"
export VEIL_STORE=$WORK/store VEIL_PASSPHRASE=pw VEIL_ACTOR=admin VEIL_PRINCIPAL_PASSPHRASE=pp
FAST="--kdf-ops 1 --kdf-mem-mib 8"
expect 0 "$VEIL" keys init $FAST --approvals 2
for p in alice bob; do expect 0 "$VEIL" principal add $p --role approver --key-out $p.key $FAST; done
expect 0 "$VEIL" principal add op --role operator --key-out op.key $FAST

expect 0 "$FRAMES" make "$DEMO/sample1.jpg" clip.avi 4
expect 0 "$VEIL" anonymize clip.avi -o anon.mkv --detector tiny --quiet
[ -f anon.mkv ] && [ -f anon.mkv.veil ] && [ -f anon.mkv.veilpay ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: no video, sidecar or payload container"; ls; FAILED=$((FAILED + 1)); }
expect 1 "$FRAMES" same clip.avi anon.mkv      # the faces are gone
expect 0 "$VEIL" anonymize clip.avi -o anon.mkv --detector tiny   # its own output, frames as its sidecar says: skipped
contains "1 skipped" "$OUT"
expect 0 "$FRAMES" make "$DEMO/sample2.jpg" foreign.avi 4        # someone else's video beside a copied sidecar
cp anon.mkv.veil foreign.avi.veil
expect 10 "$VEIL" anonymize clip.avi -o foreign.avi --detector tiny --quiet
contains "its frames are not those its manifest (foreign.avi.veil) describes" "$ERR"
# Veil's finished output of another video (or of an edited clip.avi) is not this job's: refused.
expect 0 "$FRAMES" make "$DEMO/sample2.jpg" clip2.avi 4
expect 10 "$VEIL" anonymize clip2.avi -o anon.mkv --detector tiny --quiet
contains "is not Veil's output of this version of clip2.avi under this key" "$ERR"
# inspect: the frames against the manifest (anon.mkv.veil), no key; other frames under that
# manifest read as edited (14); an image's manifest for a video, or the reverse, is refused (2);
# a damaged manifest is corrupt data (6).
expect 0 "$VEIL" inspect anon.mkv
contains "frame 0 face 0" "$OUT"
contains "pixels: as the manifest describes (4 frame(s), manifest 4)" "$OUT"
expect 0 "$FRAMES" make "$DEMO/sample2.jpg" other.avi 4
expect 14 "$VEIL" inspect other.avi --manifest anon.mkv.veil
expect 0 "$VEIL" anonymize "$DEMO/sample1.jpg" -o still.png --manifest sidecar --quiet
expect 0 "$VEIL" inspect still.png
expect 2 "$VEIL" inspect anon.mkv --manifest still.png.veil
expect 2 "$VEIL" inspect still.png --manifest anon.mkv.veil
head -c 100 anon.mkv.veil > cut.veil
expect 6 "$VEIL" inspect anon.mkv --manifest cut.veil

expect 0 "$VEIL" request create --requester op --case V-1 --purpose "test" --target-file anon.mkv -o req
expect 0 "$VEIL" request approve req --principal-key alice.key
expect 7 "$VEIL" restore anon.mkv --request req -o early.mkv          # one approval of two
[ ! -e early.mkv ] && PASSED=$((PASSED + 1)) || { echo "FAIL: wrote a video without approvals"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" request approve req --principal-key bob.key
expect 2 "$VEIL" restore anon.mkv --request req -o back.mkv --approximate   # videos: payloads only
expect 0 "$VEIL" restore anon.mkv --request req -o back.mkv
contains "(lossless: the original frames)" "$OUT"
expect 0 "$FRAMES" same clip.avi back.mkv      # bit for bit
# The store is closed while the video is restored and opened again for the success record.
expect 0 "$VEIL" audit show --json
contains "frame(s) of manifest" "$OUT"
expect 10 "$VEIL" restore anon.mkv --request req -o back.mkv              # never overwrites
contains "exists" "$ERR"

# A sidecar or payload container whose bytes were altered: refused as altered (exit 6; 7 where a flip renamed the keyring),
# nothing is written, and the attempt is in the audit log.
flip() {  # flips one bit of FILE at FRACTION of its length
  python3 - "$1" "$2" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[int(len(data) * float(sys.argv[2]))] ^= 0x01
open(sys.argv[1], "wb").write(bytes(data))
PY
}
for file in anon.mkv.veil anon.mkv.veilpay; do
  for at in 0.3 0.6 0.9; do
    cp $file saved
    flip $file $at
    "$VEIL" restore anon.mkv --request req -o tampered.mkv >/dev/null 2>&1
    code=$?
    { [ "$code" -eq 6 ] || [ "$code" -eq 7 ]; } && [ ! -e tampered.mkv ] && PASSED=$((PASSED + 1)) \
      || { echo "FAIL: $file altered at $at: exit $code"; FAILED=$((FAILED + 1)); }
    cp saved $file
  done
done
mv anon.mkv.veilpay moved.veilpay
expect 3 "$VEIL" restore anon.mkv --request req -o missing.mkv         # no payload container
expect 0 "$VEIL" restore anon.mkv --request req -o named.mkv --payloads moved.veilpay
mv moved.veilpay anon.mkv.veilpay

# --payload store: the container stays with the key store; nothing but the video and the manifest
# is shared, and the restore finds the originals in the store.
expect 0 "$VEIL" anonymize clip.avi -o kept.mkv --detector tiny --quiet --payload store
[ -f kept.mkv.veil ] && [ ! -e kept.mkv.veilpay ] && ls "$VEIL_STORE"/payloads/*.veilpay >/dev/null 2>&1 \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: --payload store left the container beside the video"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" request create --requester op --case V-2 --purpose "test" --target-file kept.mkv -o req2
expect 0 "$VEIL" request approve req2 --principal-key alice.key
expect 0 "$VEIL" request approve req2 --principal-key bob.key
expect 0 "$VEIL" restore kept.mkv --request req2 -o kept-back.mkv
expect 0 "$FRAMES" same clip.avi kept-back.mkv
expect 0 "$VEIL" audit show --json
contains '"failed"' "$OUT"
# No private copies or temporary videos are left behind.
leftovers=$(ls -A | grep -E '^\.veil-(restore|video)-|\.tmp\.' || true)
[ -z "$leftovers" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: left behind: $leftovers"; FAILED=$((FAILED + 1)); }
# Two inputs that would write the same output are refused before any work.
cp clip.avi clip2.avi && mkdir -p two && cp clip.avi two/a.mov && cp clip.avi two/a.mp4
expect 2 "$VEIL" anonymize two -o two-out --quiet
# A key disabled while a video restores (the store is not locked meanwhile) stops the restore
# before its success record (exit 8): no video appears, and the log says it failed.
expect 0 "$FRAMES" make "$DEMO/sample1.jpg" long.avi 300
expect 0 "$VEIL" anonymize long.avi -o long.mkv --detector tiny --quiet
expect 0 "$VEIL" request create --requester op --case V-3 --purpose "test" --target-file long.mkv -o req3
expect 0 "$VEIL" request approve req3 --principal-key alice.key
expect 0 "$VEIL" request approve req3 --principal-key bob.key
"$VEIL" restore long.mkv --request req3 -o long-back.mkv >"$WORK/.rout" 2>"$WORK/.rerr" &
pid=$!
for _ in $(seq 1200); do compgen -G '.veil-video-*/video.mkv' >/dev/null || ! kill -0 $pid 2>/dev/null && break; sleep 0.1; done
# The restored frames are written where no other user can open them.
[ "$(stat -c %a .veil-video-*)" = 700 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: the restore's folder is not private"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" keys disable --keyring default --version 1
wait $pid; got=$?
[ "$got" -eq 8 ] && [ ! -e long-back.mkv ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: a restore went on after its key was disabled: exit $got, $(cat "$WORK/.rerr")"; FAILED=$((FAILED + 1)); }
contains "was disabled during the restore" "$(cat "$WORK/.rerr")"
expect 0 "$VEIL" audit show --json
contains "was disabled during the restore" "$OUT"
expect 0 "$VEIL" keys enable --keyring default --version 1
leftovers=$(ls -A | grep -E '^\.veil-(restore|video)-|\.tmp\.' || true)
[ -z "$leftovers" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: left behind: $leftovers"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" audit verify
finish
