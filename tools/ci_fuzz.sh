#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 20), seeded with real
# files made by the veil CLI. Exits non-zero on the first crash, leak or sanitizer report.
set -euo pipefail
seconds="${1:-20}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build-fuzz"
CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -DVEIL_FUZZ=ON -DVEIL_BUILD_ENGINE=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target veil_fuzzers veil >/dev/null

# Seeds: a real store, log, request, checkpoint.
seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
veil="$build/tools/veil"
export VEIL_STORE="$seeds/store" VEIL_ACTOR=fuzz VEIL_PASSPHRASE=fuzz VEIL_PRINCIPAL_PASSPHRASE=fuzz
"$veil" keys init --kdf-ops 1 --kdf-mem-mib 8 >/dev/null
"$veil" principal add op --role operator --key-out "$seeds/op.key" --kdf-ops 1 --kdf-mem-mib 8 >/dev/null
"$veil" principal add ann --role approver --key-out "$seeds/ann.key" --kdf-ops 1 --kdf-mem-mib 8 >/dev/null
echo x > "$seeds/x"
"$veil" request create --requester op --case c --purpose p --target-file "$seeds/x" -o "$seeds/req" >/dev/null
"$veil" request approve "$seeds/req" --principal-key "$seeds/ann.key" >/dev/null
"$veil" audit checkpoint -o "$seeds/cp" >/dev/null

# A payload container with one record (magic, header with a 16-byte id, one record).
printf 'VEILPAY\n\x14\x00\x00\x00\x08\x01\x12\x10ABCDEFGHIJKLMNOP\x0b\x00\x00\x00\x08\x00\x10\x00\x1a\x05VPL1x' \
  > "$seeds/payloads.veilpay"

declare -A seed=(
  [store_file]="$seeds/store/keystore.veil" [store_body]="" [audit_log]="$seeds/store/audit.log"
  [restore_request]="$seeds/req" [checkpoint]="$seeds/cp" [sealed_payload]="" [manifest]="$repo/tests/fuzz/seeds/manifest.png"
  [payload_container]="$seeds/payloads.veilpay" [image_containers]="$repo/tests/fuzz/seeds/manifest.png"
)
for name in store_file store_body audit_log restore_request checkpoint sealed_payload manifest payload_container image_containers; do
  corpus="$repo/tests/fuzz/corpus-$name"
  mkdir -p "$corpus"
  [ -n "${seed[$name]}" ] && cp "${seed[$name]}" "$corpus/seed"
  echo "fuzz_$name: ${seconds}s"
  rc=0
  (cd "$seeds" && "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
     "$corpus" > "$seeds/fuzz.log" 2>&1) || rc=$?
  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' "$seeds/fuzz.log" || true
  # libFuzzer exits non-zero and writes crash-*/leak-*/timeout-*/oom-* files where it runs on a
  # failure; a fuzzer that does not start at all exits non-zero too.
  if [ "$rc" -ne 0 ] || ls "$seeds"/crash-* "$seeds"/leak-* "$seeds"/timeout-* "$seeds"/oom-* >/dev/null 2>&1; then
    echo "fuzz_$name failed (exit $rc):"; tail -n 20 "$seeds/fuzz.log"
    ls "$seeds"/crash-* "$seeds"/leak-* "$seeds"/timeout-* "$seeds"/oom-* 2>/dev/null || true
    exit 1
  fi
done
echo "fuzzing: no failures"
