#!/usr/bin/env bash
# anonymize -> request -> approvals -> exact restore, and every refusal on the way, with the real
# binary on the face-api demo photos. Usage: anonymize_restore_walk.sh VEIL DEMO_DIR IMAGE_PIXELS_HELPER
DEMO=$(realpath "${2:?usage: $0 VEIL DEMO_DIR HELPER}")
PIXELS=$(realpath "${3:?usage: $0 VEIL DEMO_DIR HELPER}")
MODELS=$(realpath "$(dirname "$0")/../../models")
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
# Metadata of every kind is dropped and EXIF orientation applied first: a JPEG with an EXIF
# orientation of 6 (rotate 90 degrees), a comment, XMP with a GPS position and an IPTC caption; a
# PNG with text chunks; a TIFF with a description and an orientation of 6.
python3 - "$DEMO/sample1.jpg" <<'PY'
import struct, sys, zlib
jpeg = open(sys.argv[1], "rb").read()
def seg(marker, payload): return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
exif = b"Exif\0\0" + b"II*\0" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>48,51.4N</exif:GPSLatitude></x:xmpmeta>"
caption = b"secret caption"
iptc = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
app13 = b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iptc)) + iptc
open("meta.jpg", "wb").write(jpeg[:2] + seg(0xE1, exif) + seg(0xE1, xmp) + seg(0xFE, b"secret comment") + seg(0xED, app13) + jpeg[2:])
def chunk(kind, data): return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
png += chunk(b"tEXt", b"Comment\0secret comment") + chunk(b"IDAT", zlib.compress(b"\0" + b"\x80" * 6 + b"\0" + b"\x80" * 6))
open("meta.png", "wb").write(png + chunk(b"IEND", b""))
# TIFF, 4x2 RGB, uncompressed: ImageDescription "secret comment", Orientation 6.
w, h, note = 4, 2, b"secret comment\0"
tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2), (270, 2, len(note), None),
        (273, 4, 1, None), (274, 3, 1, 6), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, 3 * w * h)]
bps_at = 8 + 2 + 12 * len(tags) + 4
note_at, pixels_at = bps_at + 6, bps_at + 6 + len(note)
where = {258: bps_at, 270: note_at, 273: pixels_at}
tif = b"II*\0" + struct.pack("<IH", 8, len(tags))
for tag, kind, count, value in tags:
    value = where.get(tag, value)
    tif += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value))
open("meta.tif", "wb").write(tif + struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + note + bytes(range(3 * w * h)))
PY
expect 0 "$VEIL" anonymize meta.jpg -o meta-out.png --quiet
expect 0 "$VEIL" anonymize meta.png -o meta-png-out.png --quiet
expect 0 "$VEIL" anonymize meta.tif -o meta-tif-out.png --quiet
for f in meta-out.png meta-png-out.png meta-tif-out.png; do
  grep -q -a -e "secret comment" -e "secret caption" -e "GPSLatitude" -e "Exif" -e "tEXt" -e "Photoshop" "$f" \
    && { echo "FAIL: metadata survived in $f"; FAILED=$((FAILED + 1)); } || PASSED=$((PASSED + 1))
done
python3 - "$DEMO/sample1.jpg" meta-out.png <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: EXIF orientation not applied"; FAILED=$((FAILED + 1)); }
import struct, sys
def jpeg_size(b):
    i = 2
    while i < len(b):
        marker, length = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9]); return w, h
        i += 2 + length
w, h = jpeg_size(open(sys.argv[1], "rb").read())
ow, oh = struct.unpack(">II", open(sys.argv[2], "rb").read()[16:24])
sys.exit(0 if (ow, oh) == (h, w) and w != h else 1)
PY
python3 - meta-tif-out.png <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: TIFF orientation not applied"; FAILED=$((FAILED + 1)); }
import struct, sys
sys.exit(0 if struct.unpack(">II", open(sys.argv[1], "rb").read()[16:24]) == (2, 4) else 1)
PY

# One worker, two workers, and LibTorch on 1 (raised to 2), 3 or 5 threads: the same bytes.
same_as_out() {  # same_as_out DIR WHAT
  cmp -s out/in/sample1.jpg "$1/in/sample1.jpg" && cmp -s out/in/sub/sample2.jpg "$1/in/sub/sample2.jpg" \
    && PASSED=$((PASSED + 1)) || { echo "FAIL: $2 changed the output"; FAILED=$((FAILED + 1)); }
}
expect 0 "$VEIL" anonymize in -o out2 --quiet --jobs 2
same_as_out out2 "--jobs 2"
expect 0 "$VEIL" anonymize in -o out3 --quiet --jobs 1 --json
contains '"workers": 1' "$OUT"
same_as_out out3 "--jobs 1"
for t in 1 3 5; do
  expect 0 env VEIL_THREADS=$t OMP_WAIT_POLICY=PASSIVE "$VEIL" anonymize in -o out-t$t --quiet
  same_as_out out-t$t "VEIL_THREADS=$t"
done
# The same for synthesized faces (E, F, G and the identity check, whose gain choice a last-bit
# difference could flip): 1 or 3 threads, one worker or two, the same bytes.
SYNTH="--replace synthesized --experimental --quiet"
expect 0 env VEIL_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$VEIL" anonymize in -o syn-t1 $SYNTH --jobs 1
expect 0 env VEIL_THREADS=3 OMP_WAIT_POLICY=PASSIVE "$VEIL" anonymize in -o syn-t3 $SYNTH --jobs 1
expect 0 env OMP_WAIT_POLICY=PASSIVE "$VEIL" anonymize in -o syn-j2 $SYNTH --jobs 2
for d in syn-t3 syn-j2; do
  cmp -s syn-t1/in/sample1.jpg $d/in/sample1.jpg && cmp -s syn-t1/in/sub/sample2.jpg $d/in/sub/sample2.jpg \
    && PASSED=$((PASSED + 1)) || { echo "FAIL: synthesized output differs between syn-t1 and $d"; FAILED=$((FAILED + 1)); }
done
cmp -s syn-t1/in/sample1.jpg out/in/sample1.jpg && { echo "FAIL: synthesized = pixelated"; FAILED=$((FAILED + 1)); } || PASSED=$((PASSED + 1))
# A folder with an unreadable subfolder stops the batch (exit 4) rather than leaving its photos
# unanonymized; root reads every folder, so this runs for other users only.
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p locked/a locked/b && cp in/sample1.jpg locked/a/ && cp in/sample1.jpg locked/b/ && chmod 000 locked/a
  expect 4 "$VEIL" anonymize locked -o locked-out --quiet
  contains "cannot list all of locked" "$ERR"
  chmod 755 locked/a
fi
expect 2 "$VEIL" anonymize in -o out4 --quiet --jobs 0
expect 2 "$VEIL" anonymize in -o out4 --quiet --jobs many
# Resume: finished files are skipped.
expect 0 "$VEIL" anonymize in -o out --quiet
contains "2 skipped" "$OUT"
# However the folder is spelled ("in/", "./in"), the tree is the same and the batch resumes.
expect 0 "$VEIL" anonymize in/ -o out --quiet
contains "2 skipped" "$OUT"
expect 0 "$VEIL" anonymize ./in/ -o out --quiet
contains "2 skipped" "$OUT"
# Files Veil does not read are left out of the tree, and said so: a .heic photo is not anonymized.
mkdir -p mixed/deep && cp in/sample1.jpg mixed/ && echo "not a photo Veil reads" > mixed/deep/IMG_1.HEIC && echo notes > mixed/notes.txt
expect 0 "$VEIL" anonymize mixed -o mixed-out --quiet
contains "warning: 2 file(s) in the input folders are not photos or videos Veil reads (1 .heic, 1 .txt)" "$ERR"
contains "mixed/deep/IMG_1.HEIC" "$ERR"
contains "anonymized 1 file(s)" "$OUT"
contains "2 not read" "$OUT"
[ -f mixed-out/mixed/sample1.jpg ] && [ ! -e mixed-out/mixed/deep ] && [ ! -e mixed-out/mixed/notes.txt ] \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: files Veil does not read reached the output tree"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize mixed -o mixed-out --json
contains '"not_read": [' "$OUT"
contains '"mixed/deep/IMG_1.HEIC"' "$OUT"
# Only such files: nothing to anonymize is an error (an empty tree with exit 0 would pass for done),
# found before the key is released.
log_bytes=$(wc -c < "$VEIL_STORE/audit.log")
expect 11 "$VEIL" anonymize mixed/deep -o heic-out --quiet
contains "nothing to anonymize: 1 file(s) in the input folders are not photos or videos Veil reads (1 .heic)" "$ERR"
[ ! -e heic-out ] && [ "$log_bytes" = "$(wc -c < "$VEIL_STORE/audit.log")" ] \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: a folder with nothing to anonymize wrote output or released the key"; FAILED=$((FAILED + 1)); }
mkdir -p empty-card/DCIM
expect 11 "$VEIL" anonymize empty-card -o empty-out --quiet
contains "nothing to anonymize: the input folders hold no photos or videos" "$ERR"
[ ! -e empty-out ] && [ "$log_bytes" = "$(wc -c < "$VEIL_STORE/audit.log")" ] \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: an empty folder wrote output or released the key"; FAILED=$((FAILED + 1)); }

# One file to PNG, twice: identical bytes.
expect 0 "$VEIL" anonymize in/sample1.jpg -o a.png
expect 0 "$VEIL" anonymize in/sample1.jpg -o b.png
cmp -s a.png b.png && PASSED=$((PASSED + 1)) || { echo "FAIL: outputs differ between runs"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize in/sample1.jpg -o a.png    # never overwrites: an existing output is skipped
contains "1 skipped" "$OUT"
# Resumed only with the options that made it: an output without its originals is no resume of a
# run that keeps them (nor of another scope).
expect 0 "$VEIL" anonymize in/sample1.jpg -o none.png --payload none
expect 0 "$VEIL" anonymize in/sample1.jpg -o none.png --payload none
contains "1 skipped" "$OUT"
expect 10 "$VEIL" anonymize in/sample1.jpg -o none.png
contains "made with other options (scope image, no originals kept)" "$ERR"
expect 10 "$VEIL" anonymize in/sample1.jpg -o a.png --scope deployment
contains "made with other options (scope image)" "$ERR"
expect 2 "$VEIL" anonymize in/sample1.jpg -o in/sample1.jpg
expect 2 "$VEIL" anonymize in/sample1.jpg -o photo.mp4   # a photo is not written under a video's name
[ ! -e photo.mp4 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: photo.mp4 was written"; FAILED=$((FAILED + 1)); }
expect 2 "$VEIL" anonymize in/sample1.jpg -o a.gif     # a name Veil cannot write: refused, not renamed
[ -z "$(ls a.gif* a.png.tmp* 2>/dev/null)" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: a.gif was written"; FAILED=$((FAILED + 1)); }
expect 2 "$VEIL" anonymize in/sample1.jpg -o a.jpg --format png   # the name and --format disagree
# A folder anonymized into itself (-o FOLDER): refused, since its tree FOLDER/FOLDER would lie
# among the originals; a subfolder as OUT is walked around.
cp -r in self && expect 2 "$VEIL" anonymize self -o self/ --quiet
[ ! -e self/self ] && PASSED=$((PASSED + 1)) || { echo "FAIL: self/self was made"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize self -o self/anon --quiet
expect 0 "$VEIL" anonymize self -o self/anon --quiet
contains "2 skipped" "$OUT"
echo "someone else's file" > theirs.png                 # not Veil's output: refused, not skipped
expect 10 "$VEIL" anonymize in/sample1.jpg -o theirs.png
[ "$(cat theirs.png)" = "someone else's file" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: theirs.png replaced"; FAILED=$((FAILED + 1)); }
# Veil's output of another photo (or of an older version of this one) is not this job done.
expect 10 "$VEIL" anonymize in/sub/sample2.jpg -o a.png
contains "made from another version" "$ERR"
# The folder's parent as -o would mirror the tree onto the input folder itself (a BMP's output,
# p.png, among the originals): refused.
expect 0 "$VEIL" anonymize in/sample1.jpg -o nest-src.bmp --manifest sidecar --quiet
mkdir -p nest/photos && cp nest-src.bmp nest/photos/p.bmp && expect 2 "$VEIL" anonymize nest/photos -o nest --quiet
[ "$(ls nest/photos)" = "p.bmp" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: written into the input folder: $(ls nest/photos)"; FAILED=$((FAILED + 1)); }
# Links inside an input folder: a linked photo is anonymized where the link stands (never outside
# -o); a linked folder or a looping link is refused with one line, not a crash or a silent skip.
mkdir -p linked/deep/er && cp "$DEMO/sample2.jpg" linked/deep/er/target.jpg && mkdir links
ln -s ../linked/deep/er/target.jpg links/photo.jpg
expect 0 "$VEIL" anonymize links -o links-out --quiet
[ "$(find links-out -type f)" = "links-out/links/photo.jpg" ] && [ "$(find . -name 'target.*' | wc -l)" -eq 1 ] &&
  PASSED=$((PASSED + 1)) || { echo "FAIL: a linked photo was written outside its tree"; find . -name 'target.*'; FAILED=$((FAILED + 1)); }
ln -s ../linked links/folder && expect 2 "$VEIL" anonymize links -o links-out2 --quiet && rm links/folder
contains "link to a folder" "$ERR"
ln -s loop.jpg links/loop.jpg && expect 4 "$VEIL" anonymize links -o links-out3 --quiet
[ "$(echo "$ERR" | wc -l)" -eq 1 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: not one line: $ERR"; FAILED=$((FAILED + 1)); }
rm links/loop.jpg
# A file name with a line break and an escape: the error stays one line, without control characters.
bad=$(printf 'in\nveil: ok\033[2J.jpg') && printf 'not a photo' > "$bad"
expect 2 "$VEIL" anonymize "$bad" -o bad-name.png --quiet
[ "$(echo "$ERR" | wc -l)" -eq 1 ] && ! printf '%s' "$ERR" | grep -q $'\033' && PASSED=$((PASSED + 1)) ||
  { echo "FAIL: control characters in the error: $ERR"; FAILED=$((FAILED + 1)); }
rm -f "$bad"

# Restore needs m-of-n approvals; every attempt is logged.
expect 0 "$VEIL" request create --requester op --case C-1 --purpose "test" --target-file a.png -o req
expect 0 "$VEIL" request approve req --principal-key alice.key
expect 7 "$VEIL" restore a.png --request req -o r.png
[ ! -e r.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: output written without approval"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" request approve req --principal-key bob.key
expect 3 "$VEIL" restore missing.png --request req -o r.png
log_bytes=$(wc -c < "$VEIL_STORE/audit.log")
expect 2 "$VEIL" restore a.png --request req -o r.jpg      # lossy: would not give the pixels back
[ ! -e r.jpg ] && PASSED=$((PASSED + 1)) || { echo "FAIL: a lossy restore was written"; FAILED=$((FAILED + 1)); }
# A usage error, found before the passphrase: no grant released, nothing logged.
[ "$log_bytes" = "$(wc -c < "$VEIL_STORE/audit.log")" ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: a lossy restore output was authorized and logged"; FAILED=$((FAILED + 1)); }
expect 2 "$VEIL" restore a.png --request req -o r.xyz      # a format OpenCV cannot write: refused, no crash
[ ! -e r.xyz ] && PASSED=$((PASSED + 1)) || { echo "FAIL: r.xyz was written"; FAILED=$((FAILED + 1)); }
# An output that cannot be written: exit 4, and the record says failed, with no success before it.
expect 4 "$VEIL" restore a.png --request req -o nodir/r.png
expect 0 "$VEIL" audit show --json
echo "$OUT" | python3 -c '
import json, sys
records = json.load(sys.stdin)
records = records["records"] if isinstance(records, dict) else records
last, before = json.dumps(records[-1]), json.dumps(records[-2])
sys.exit(0 if "failed" in last and "nodir" in last and "restore-performed" not in before else 1)' \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: the unwritable restore left a success record"; FAILED=$((FAILED + 1)); }
# Another file than the request names: denied by the authorization (7), on record as denied.
expect 7 "$VEIL" restore out/in/sample1.jpg --request req -o r-other.png
contains "does not name this file" "$ERR"
expect 0 "$VEIL" audit show --json
echo "$OUT" | python3 -c '
import json, sys
records = json.load(sys.stdin)
records = records["records"] if isinstance(records, dict) else records
sys.exit(0 if "denied" in json.dumps(records[-1]) else 1)' \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: the restore of another file was not denied on record"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" restore a.png --request req -o r.png
contains "restored 3 face(s)" "$OUT"
expect 0 "$PIXELS" same r.png in/sample1.jpg                # bit for bit the photo as Veil read it

# A fully approved request that has expired: refused (9), nothing written, the denial on record.
expect 0 "$VEIL" request create --requester op --case C-5 --purpose "test" --target-file a.png --expires-in 10s -o req5
expect 0 "$VEIL" request approve req5 --principal-key alice.key
expect 0 "$VEIL" request approve req5 --principal-key bob.key
expect 0 "$VEIL" request show req5 --json
req5_id=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')
req5_expires=$(echo "$OUT" | python3 -c 'import json,sys,datetime
print(int(datetime.datetime.strptime(json.load(sys.stdin)["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()))')
while [ "$(date +%s)" -le "$req5_expires" ]; do sleep 1; done   # (10 s: time for both approvals on a busy machine)
expect 9 "$VEIL" request approve req5 --principal-key carol.key             # too late to approve: on record
expect 9 "$VEIL" request approve req5 --principal-key carol.key --offline   # offline too
expect 9 "$VEIL" restore a.png --request req5 -o r5.png
contains "expired" "$ERR"
[ ! -e r5.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: output written for an expired request"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" audit show --json
echo "$OUT" | python3 -c '
import json, sys
want = sys.argv[1]
records = json.load(sys.stdin)
records = records["records"] if isinstance(records, dict) else records
sys.exit(0 if any(want in json.dumps(r) and "denied" in json.dumps(r) and "restore-authorization" in json.dumps(r) for r in records) else 1)' "$req5_id" \
  && PASSED=$((PASSED + 1)) || { echo "FAIL: no denied audit record for the expired request"; FAILED=$((FAILED + 1)); }

# A sidecar manifest altered anywhere: refused (5 or 6), nothing written, the attempt on record.
expect 0 "$VEIL" anonymize in/sample1.jpg -o c.png --manifest sidecar --quiet
expect 0 "$VEIL" anonymize in/sample1.jpg -o c.png --manifest sidecar   # its own output: skipped
contains "1 skipped" "$OUT"
cp "$DEMO/sample2.jpg" foreign.png && cp c.png.veil foreign.png.veil    # someone else's file beside a sidecar
expect 10 "$VEIL" anonymize in/sample1.jpg -o foreign.png --manifest sidecar --quiet
cmp -s foreign.png "$DEMO/sample2.jpg" && PASSED=$((PASSED + 1)) || { echo "FAIL: foreign.png replaced"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" request create --requester op --case C-4 --purpose "test" --target-file c.png -o req4
expect 0 "$VEIL" request approve req4 --principal-key alice.key
expect 0 "$VEIL" request approve req4 --principal-key bob.key
cp c.png.veil c.png.veil.good
for at in 0.1 0.35 0.5 0.75 0.95; do
  python3 - c.png.veil "$at" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[int(len(data) * float(sys.argv[2]))] ^= 0x04
open(sys.argv[1], "wb").write(bytes(data))
PY
  got=0; "$VEIL" restore c.png --request req4 -o c-back.png >/dev/null 2>&1 || got=$?
  # Altered, not a wrong key: 6 (7 where the flip renamed the keyring or version the request must release).
  { [ "$got" -eq 6 ] || [ "$got" -eq 7 ]; } && [ ! -e c-back.png ] && PASSED=$((PASSED + 1)) \
    || { echo "FAIL: manifest altered at $at: exit $got"; FAILED=$((FAILED + 1)); rm -f c-back.png; }
  cp c.png.veil.good c.png.veil
done
expect 0 "$VEIL" restore c.png --request req4 -o c-back.png

# Veil's own model files are checked before use: a corrupt generator (one byte flipped) is refused
# (6) and one of another kind under its name (2), before anything is written.
mkdir bad-models && cp "$MODELS"/*.veilmodel bad-models/
flip_byte bad-models/veil-generator-v1.veilmodel 4000
VEIL_MODELS_DIR=$WORK/bad-models expect 6 "$VEIL" anonymize in/sample1.jpg -o bad-model.png --replace synthesized --experimental
cp bad-models/veil-encoder-v1.veilmodel bad-models/veil-generator-v1.veilmodel
VEIL_MODELS_DIR=$WORK/bad-models expect 2 "$VEIL" anonymize in/sample1.jpg -o bad-model.png --replace synthesized --experimental
[ ! -e bad-model.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: written with a bad model file"; FAILED=$((FAILED + 1)); }

# Synthesized faces without payloads: an approximate restore re-renders them and its output's own
# manifest says so (restored_from: the anonymized image's manifest, the request, approximate).
expect 0 "$VEIL" anonymize in/sample1.jpg -o syn.png --replace synthesized --experimental --payload none
# The identity check: a distance no face reaches pixelates every face and the manifest says why;
# a distance that is not a number in [0, 2], or one given without synthesized faces, is refused.
expect 0 "$VEIL" anonymize in/sample1.jpg -o strict.png --replace synthesized --experimental --verify-distance 2 --json
contains '"pixelate": 3' "$OUT"
expect 2 "$VEIL" anonymize in/sample1.jpg -o bad.png --replace synthesized --experimental --verify-distance 2.5
expect 2 "$VEIL" anonymize in/sample1.jpg -o bad.png --verify-distance x
expect 2 "$VEIL" anonymize in/sample1.jpg -o bad.png --verify-distance 0.7     # pixelate: nothing to check
# The turn gate: sample2.jpg's profile face is pixelated by default and drawn with the gate off
# (0.5); a turn outside [0, 0.5], or one given without synthesized faces, is refused.
expect 0 "$VEIL" anonymize in/sub/sample2.jpg -o turned.png --replace synthesized --experimental --verify-distance 0 --json
contains '"pixelate": 1' "$OUT"
expect 0 "$VEIL" anonymize in/sub/sample2.jpg -o ungated.png --replace synthesized --experimental --verify-distance 0 --max-turn 0.5 --json
contains '"synthesized": 3' "$OUT"
expect 2 "$VEIL" anonymize in/sample1.jpg -o bad.png --replace synthesized --experimental --max-turn 0.6
expect 2 "$VEIL" anonymize in/sample1.jpg -o bad.png --max-turn 0.2     # pixelate: nothing to gate
expect 0 "$VEIL" request create --requester op --case C-3 --purpose "test" --target-file syn.png -o req3
expect 0 "$VEIL" request approve req3 --principal-key alice.key
expect 0 "$VEIL" request approve req3 --principal-key bob.key
expect 8 "$VEIL" restore syn.png --request req3 -o syn-exact.png          # no sealed originals
expect 0 "$VEIL" restore syn.png --request req3 -o syn-back.png --approximate
contains "approximate, not evidence" "$OUT"
expect 0 "$VEIL" inspect syn-back.png           # the restore's own manifest says what it is
contains "approximate: faces re-rendered, not evidence" "$OUT"
expect 0 "$VEIL" request show req3 --json
req3_id=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')
python3 - syn-back.png "$req3_id" <<'PY' && PASSED=$((PASSED + 1)) || { echo "FAIL: the approximate restore carries no manifest saying so"; FAILED=$((FAILED + 1)); }
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if b"veIL" in data and sys.argv[2].encode() in data else 1)
PY
expect 0 "$VEIL" inspect syn-back.png           # and names the request as request show and the audit log do
contains "by request $req3_id" "$OUT"
# A restore's output is no anonymized image: restoring it again is refused (8), on record.
expect 0 "$VEIL" request create --requester op --case C-3b --purpose "test" --target-file syn-back.png -o req3b
expect 0 "$VEIL" request approve req3b --principal-key alice.key
expect 0 "$VEIL" request approve req3b --principal-key bob.key
expect 8 "$VEIL" restore syn-back.png --request req3b -o again.png --approximate
contains "output of a restore" "$ERR"
[ ! -e again.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: a restore's output was restored again"; FAILED=$((FAILED + 1)); }

# Payloads kept by the key store, for one photo anonymized twice (PNG, JPEG): both restore. The
# format OUT names is written (lossless WebP, which holds no embedded manifest: a sidecar).
expect 0 "$VEIL" anonymize in/sample1.jpg -o k1.png --payload store --quiet
expect 0 "$VEIL" anonymize in/sample1.jpg -o k2.jpg --payload store --quiet
expect 11 "$VEIL" anonymize in/sample1.jpg -o w.webp --quiet
[ ! -e w.webp ] && PASSED=$((PASSED + 1)) || { echo "FAIL: a WebP with no room for its manifest was written"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize in/sample1.jpg -o w.webp --manifest sidecar --quiet
[ "$(head -c 4 w.webp)" = "RIFF" ] && [ -s w.webp.veil ] && PASSED=$((PASSED + 1)) || { echo "FAIL: w.webp is not a WebP with its sidecar"; FAILED=$((FAILED + 1)); }
# inspect prints an unsealed manifest's text as printable ASCII only (a keyring name with an escape).
cp w.webp hostile.webp && python3 - w.webp.veil hostile.webp.veil <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"default")
open(sys.argv[2], "wb").write(d[:i] + b"\x1b[31mXY" + d[i + 7:])
PY
expect 0 "$VEIL" inspect hostile.webp
contains "keyring ?[31mXY" "$OUT"
expect 0 "$VEIL" request create --requester op --case C-6 --purpose "test" --target-file k1.png --target-file k2.jpg \
                                 --target-file w.webp -o req6
expect 0 "$VEIL" request approve req6 --principal-key alice.key
expect 0 "$VEIL" request approve req6 --principal-key bob.key
expect 0 "$VEIL" restore k1.png --request req6 -o k1-back.png
expect 0 "$PIXELS" same k1-back.png in/sample1.jpg
expect 0 "$VEIL" restore k2.jpg --request req6 -o k2-back.png
contains "restored 3 face(s)" "$OUT"
expect 0 "$VEIL" restore w.webp --request req6 -o w-back.png
expect 0 "$PIXELS" same w-back.png in/sample1.jpg

# Another store's key of the same name: the manifest's key check names other key material, so the
# restore says "wrong key" (5), not "altered"; nothing written.
export VEIL_STORE=$WORK/store2
expect 0 "$VEIL" keys init $FAST
for p in dave erin; do expect 0 "$VEIL" principal add $p --role approver --key-out $p.key $FAST; done
expect 0 "$VEIL" principal add op --role operator --key-out op2.key $FAST
expect 0 "$VEIL" request create --requester op --case C-7 --purpose "test" --target-file a.png -o req7
expect 0 "$VEIL" request approve req7 --principal-key dave.key
expect 0 "$VEIL" request approve req7 --principal-key erin.key
expect 5 "$VEIL" restore a.png --request req7 -o wrong-key.png
contains "wrong key" "$ERR"
[ ! -e wrong-key.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: a wrong-key restore was written"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" audit show --json
contains '"outcome": "failed"' "$OUT"
export VEIL_STORE=$WORK/store

# Refusals: an image the request does not name; an edited image; a request for a destroyed key.
# The edit: one pixel byte of a.png changed and the PNG written again, its manifest chunk kept.
python3 - a.png edited.png <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
chunks, i = [], 8
while i < len(data):
    n = struct.unpack(">I", data[i:i + 4])[0]
    chunks.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
    i += 12 + n
w, h = struct.unpack(">II", chunks[0][1][:8])
raw = bytearray(zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT")))
raw[(h // 2) * (1 + 3 * w) + 1 + 3 * (w // 2)] ^= 0x40
out, first = data[:8], True
for k, d in chunks:
    if k == b"IDAT":  # the edited rows, compressed again, in place of the first
        if not first:
            continue
        d, first = zlib.compress(bytes(raw)), False
    out += struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
open(sys.argv[2], "wb").write(out)
PY
expect 1 "$PIXELS" same a.png edited.png
# veil inspect reads the manifest without a key and tells the edit (14) from the untouched image.
expect 0 "$VEIL" inspect a.png
contains "pixels: as the manifest describes" "$OUT"
expect 14 "$VEIL" inspect edited.png
contains "NOT as the manifest describes" "$OUT"
contains "edited" "$ERR"
expect 0 "$VEIL" inspect a.png --json
contains '"pixels_match": true' "$OUT"
expect 3 "$VEIL" inspect in/sample1.jpg            # never anonymized: no manifest
expect 0 "$VEIL" request create --requester op --case C-2 --purpose "test" --target-file edited.png -o req2
expect 0 "$VEIL" request approve req2 --principal-key alice.key
expect 0 "$VEIL" request approve req2 --principal-key carol.key
expect 14 "$VEIL" restore edited.png --request req2 -o r2.png
[ ! -e r2.png ] && PASSED=$((PASSED + 1)) || { echo "FAIL: an edited image was restored"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" audit show --json                 # the refused restore is on record too
contains "$(sha256sum edited.png | cut -c1-64)" "$OUT"
# An unreadable request is an attempt too: on record.
echo "not a request" > junk.veilreq
expect 6 "$VEIL" restore a.png --request junk.veilreq -o r6.png
expect 0 "$VEIL" audit show --json
contains "junk.veilreq" "$OUT"
expect 7 "$VEIL" restore out/in/sample1.jpg --request req -o r3.png   # req names a.png only
expect 0 "$VEIL" keys rotate
expect 0 "$VEIL" keys destroy --keyring default --version 1 --yes
expect 8 "$VEIL" restore a.png --request req -o r4.png
# Streams: the camera command on a file, headless; the written clip goes through anonymize as a video.
DISPLAY= expect 2 "$VEIL" camera --input in/sample1.jpg --no-preview
DISPLAY= WAYLAND_DISPLAY= expect 2 "$VEIL" camera --input in/sample1.jpg          # no display named
# A display named but not there: a recording goes on headless; a preview alone is refused.
DISPLAY=:97 WAYLAND_DISPLAY= expect 0 "$VEIL" camera --input in/sample1.jpg -o clip-headless.avi
contains "no preview" "$OUT"
DISPLAY=:97 WAYLAND_DISPLAY= expect 2 "$VEIL" camera --input in/sample1.jpg
expect 0 "$VEIL" camera --input in/sample1.jpg -o clip.avi --no-preview
contains "3 faces replaced" "$OUT"
# Refused before the key is released (no record): a missing input (3), a non-video (2), --device
# with --input (2); and an anonymize whose output folder cannot be written (4).
expect 0 "$VEIL" audit verify --json
records_before=$(echo "$OUT" | tr -d ' \n' | sed -n 's/.*"records":\([0-9]*\).*/\1/p')
echo "not a video" > junk-cam.mp4
expect 3 "$VEIL" camera --input missing.avi -o nope.avi --no-preview
expect 2 "$VEIL" camera --input junk-cam.mp4 -o nope.avi --no-preview
contains "is not a readable video" "$ERR"
expect 2 "$VEIL" camera --device 0 --input in/sample1.jpg -o nope.avi --no-preview
touch notdir                                   # an output that cannot be written: refused up front (4)
expect 4 "$VEIL" anonymize in/sample1.jpg -o notdir/sub/a.png
contains "notdir is not a folder" "$ERR"
expect 0 "$VEIL" audit verify --json
records_after=$(echo "$OUT" | tr -d ' \n' | sed -n 's/.*"records":\([0-9]*\).*/\1/p')
[ -n "$records_before" ] && [ "$records_before" = "$records_after" ] && [ ! -e nope.avi ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: a refused camera start left a record or a file ($records_before -> $records_after)"; FAILED=$((FAILED + 1)); }
# Each run is a pseudonym scope of its own unless --scope-id names one.
expect 0 "$VEIL" camera --input in/sample1.jpg -o clip2.avi --no-preview
expect 0 "$VEIL" camera --input in/sample1.jpg -o clip3.avi --no-preview --scope-id lobby
expect 0 "$VEIL" camera --input in/sample1.jpg -o clip4.avi --no-preview --scope-id lobby
scope_of() { "$VEIL" inspect "$1" --json | tr -d ' \n' | sed -n 's/.*"scope_id":"\([^"]*\)".*/\1/p'; }
s1=$(scope_of clip.avi); s2=$(scope_of clip2.avi); s3=$(scope_of clip3.avi); s4=$(scope_of clip4.avi)
case "$s1" in camera-*) ;; *) s1="";; esac
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ] && [ "$s3" = lobby ] && [ "$s4" = lobby ] && PASSED=$((PASSED + 1)) \
  || { echo "FAIL: camera scope ids: '$s1' '$s2' '$s3' '$s4'"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" anonymize clip.avi -o vids --quiet
[ -s vids/clip.avi ] && [ -s vids/clip.avi.veil ] && PASSED=$((PASSED + 1)) || { echo "FAIL: video or its manifest missing"; FAILED=$((FAILED + 1)); }
expect 0 "$VEIL" inspect clip.avi               # the recording's frames against its manifest (INPUT.veil)
contains "frame 0 face 0" "$OUT"
echo "not a video" > junk.mp4
expect 2 "$VEIL" anonymize junk.mp4 -o junk-out.mp4
[ ! -e junk-out.mp4 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: junk video produced output"; FAILED=$((FAILED + 1)); }

expect 0 "$VEIL" audit verify
expect 0 "$VEIL" audit show --json
contains '"action": "restore-performed"' "$OUT"
finish
