#!/usr/bin/env bash
# anonymize -> request -> approvals -> exact restore, and every refusal on the way, with the real
# binary on the face-api demo photos. Usage: anonymize_restore_walk.sh VEIL DEMO_DIR
DEMO=$(realpath "${2:?usage: $0 VEIL DEMO_DIR}")
source "$(dirname "$0")/lib.sh"
export VEIL_STORE=$WORK/store VEIL_PASSPHRASE=pw VEIL_ACTOR=admin VEIL_PRINCIPAL_PASSPHRASE=pp
FAST="--kdf-ops 1 --kdf-mem-mib 8"
expect 0 "$VEIL" keys init $FAST
for p in alice bob carol; do expect 0 "$VEIL" principal add $p --role approver --key-out $p.key $FAST; done
expect 0 "$VEIL" principal add op --role operator --key-out op.key $FAST

mkdir -p in/sub && cp "$DEMO/sample1.jpg" in/ && cp "$DEMO/sample2.jpg" in/sub/
grep -q Exif in/sample1.jpg && PASSED=$((PASSED + 1)) || { echo "FAIL: the demo photo should carry EXIF"; FAILED=$((FAILED + 1)); }

# A folder: the tree is mirrored, JPEG stays JPEG, metadata is gone, inputs untouched.
before=$(sha256sum in/sample1.jpg in/sub/sample2.jpg)
expect 0 "$VEIL" anonymize in -o out --quiet
contains "anonymized 2 file(s)" "$OUT"
[ -f out/in/sample1.jpg ] && [ -f out/in/sub/sample2.jpg ] && PASSED=$((PASSED + 1)) || { echo "FAIL: tree not mirrored"; ls -R out; FAILED=$((FAILED + 1)); }
grep -q Exif out/in/sample1.jpg && { echo "FAIL: EXIF survived"; FAILED=$((FAILED + 1)); } || PASSED=$((PASSED + 1))
[ "$before" = "$(sha256sum in/sample1.jpg in/sub/sample2.jpg)" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: input changed"; FAILED=$((FAILED + 1)); }
# Two workers write the same bytes as one.
expect 0 "$VEIL" anonymize in -o out2 --quiet --jobs 2
cmp -s out/in/sample1.jpg out2/in/sample1.jpg && cmp -s out/in/sub/sample2.jpg out2/in/sub/sample2.jpg \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: --jobs 2 changed the output"; FAILED=$((FAILED + 1)); }
# Resume: finished files are skipped.
expect 0 "$VEIL" anonymize in -o out --quiet
contains "2 skipped" "$OUT"
# However the folder is spelled ("in/", "./in"), the tree is the same and the batch resumes.
expect 0 "$VEIL" anonymize in/ -o out --quiet
contains "2 skipped" "$OUT"
expect 0 "$VEIL" anonymize ./in/ -o out --quiet
contains "2 skipped" "$OUT"

# One file to PNG, twice: identical bytes.
expect 0 "$VEIL" anonymize in/sample1.jpg -o a.png
expect 0 "$VEIL" anonymize in/sample1.jpg -o b.png
cmp -s a.png b.png && PASSED=$((PASSED + 1)) || { echo "FAIL: outputs differ between runs"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize in/sample1.jpg -o a.png    # never overwrites: an existing output is skipped
contains "1 skipped" "$OUT"
expect 2 "$VEIL" anonymize in/sample1.jpg -o in/sample1.jpg

# Restore needs m-of-n approvals; every attempt is logged.
expect 0 "$VEIL" request create --requester op --case C-1 --purpose "test" --target-file a.png -o req
expect 0 "$VEIL" request approve req --principal-key alice.key
expect 7 "$VEIL" restore a.png --request req -o r.png
[ ! -e r.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: output written without approval"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" request approve req --principal-key bob.key
expect 3 "$VEIL" restore missing.png --request req -o r.png
expect 0 "$VEIL" restore a.png --request req -o r.png
contains "restored 3 face(s)" "$OUT"

# Synthesized faces without payloads: an approximate restore re-renders them and its output's own
# manifest says so (restored_from: the anonymized image's manifest, the request, approximate).
expect 0 "$VEIL" anonymize in/sample1.jpg -o syn.png --replace synthesized --experimental --payload none
expect 0 "$VEIL" request create --requester op --case C-3 --purpose "test" --target-file syn.png -o req3
expect 0 "$VEIL" request approve req3 --principal-key alice.key
expect 0 "$VEIL" request approve req3 --principal-key bob.key
expect 8 "$VEIL" restore syn.png --request req3 -o syn-exact.png          # no sealed originals
expect 0 "$VEIL" restore syn.png --request req3 -o syn-back.png --approximate
contains "approximate, not evidence" "$OUT"
expect 0 "$VEIL" request show req3 --json
req3_id=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')
python3 - syn-back.png "$req3_id" <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: the approximate restore carries no manifest saying so"; FAILED=$((FAILED + 1)); }
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if b"veIL" in data and sys.argv[2].encode() in data else 1)
PY

# Refusals: an image the request does not name; an edited image; a request for a destroyed key.
cp a.png edited.png && printf '\x00' | dd of=edited.png bs=1 seek=5000 conv=notrunc status=none
expect 0 "$VEIL" request create --requester op --case C-2 --purpose "test" --target-file edited.png -o req2
expect 0 "$VEIL" request approve req2 --principal-key alice.key
expect 0 "$VEIL" request approve req2 --principal-key carol.key
got=0; "$VEIL" restore edited.png --request req2 -o r2.png 2>/dev/null || got=$?
[ "$got" -eq 6 ] || [ "$got" -eq 2 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: edited image gave $got"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" audit show --json                 # the refused restore is on record too
contains "$(sha256sum edited.png | cut -c1-64)" "$OUT"
expect 7 "$VEIL" restore out/in/sample1.jpg --request req -o r3.png   # req names a.png only
expect 0 "$VEIL" keys rotate
expect 0 "$VEIL" keys destroy --keyring default --version 1 --yes
expect 8 "$VEIL" restore a.png --request req -o r4.png
# Streams: the camera command on a file, headless; the written clip goes through anonymize as a video.
DISPLAY= expect 2 "$VEIL" camera --input in/sample1.jpg --no-preview
expect 0 "$VEIL" camera --input in/sample1.jpg -o clip.avi --no-preview
contains "3 faces replaced" "$OUT"
expect 0 "$VEIL" anonymize clip.avi -o vids --quiet
[ -s vids/clip.avi ] && [ -s vids/clip.avi.veil ] && PASSED=$((PASSED + 1)) || { echo "FAIL: video or its manifest missing"; FAILED=$((FAILED + 1)); }
echo "not a video" > junk.mp4
expect 2 "$VEIL" anonymize junk.mp4 -o junk-out.mp4
[ ! -e junk-out.mp4 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: junk video produced output"; FAILED=$((FAILED + 1)); }

expect 0 "$VEIL" audit verify
expect 0 "$VEIL" audit show --json
contains '"action": "restore-performed"' "$OUT"
finish
