#!/usr/bin/env bash
# The Quick start's main job on a sample: a demo key store (passphrase-free key file) with two
# approvers and an operator; with the engine built, one of the face-api demo photos anonymized
# (faces replaced, metadata gone, originals sealed in the manifest), a restore request approved 2 of
# 2 and the exact original pixels restored; the audit log verified at the end.
# Usage: tools/demo.sh [BUILD_DIR]   (writes into BUILD_DIR/demo)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
veil="$build/tools/veil"
demo="$build/demo"
rm -rf "$demo" && mkdir -p "$demo"
export VEIL_STORE="$demo/store" VEIL_ACTOR=demo

"$veil" keys init --new-key-file "$demo/store.key" --approvals 2
"$veil" keys list --key-file "$demo/store.key"
"$veil" audit verify

photo=$(ls "$repo"/.cache/face-api/package/demo/*.jpg 2>/dev/null | head -n 1 || true)
if "$veil" help | grep -q '^  anonymize' && [ -z "$photo" ]; then
  echo "demo.sh: no demo photo in $repo/.cache/face-api/package/demo (tools/setup.sh fetches it)" >&2
  exit 1
fi
if "$veil" help | grep -q '^  anonymize'; then
  keyopt="--key-file $demo/store.key"
  export VEIL_PRINCIPAL_PASSPHRASE=demo-only
  for p in alice bob; do
    "$veil" principal add "$p" --role approver --key-out "$demo/$p.key" --kdf-ops 1 --kdf-mem-mib 8 $keyopt >/dev/null
  done
  "$veil" principal add op --role operator --key-out "$demo/op.key" --kdf-ops 1 --kdf-mem-mib 8 $keyopt >/dev/null
  "$veil" detect "$photo" --draw "$demo/detected.png" >/dev/null
  "$veil" anonymize "$photo" -o "$demo/anonymized.png" $keyopt
  "$veil" inspect "$demo/anonymized.png"    # what was done, from its manifest (no key needed)
  "$veil" request create --requester op --case DEMO-1 --purpose "Quick start" --target-file "$demo/anonymized.png" \
    -o "$demo/request" $keyopt
  "$veil" request approve "$demo/request" --principal-key "$demo/alice.key" $keyopt
  "$veil" request approve "$demo/request" --principal-key "$demo/bob.key" $keyopt
  "$veil" restore "$demo/anonymized.png" --request "$demo/request" -o "$demo/restored.png" $keyopt
  echo "faces found: $demo/detected.png; anonymized: $demo/anonymized.png; restored (exact pixels): $demo/restored.png"
  "$veil" audit verify $keyopt
fi
