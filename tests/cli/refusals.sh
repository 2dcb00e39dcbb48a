#!/usr/bin/env bash
# Bad input gets a one-line error and its documented exit code, and leaves the files untouched.
source "$(dirname "$0")/lib.sh"
export VEIL_STORE=$WORK/store VEIL_PASSPHRASE=secret VEIL_ACTOR=admin
FAST="--kdf-ops 1 --kdf-mem-mib 8"

expect 2 "$VEIL"
expect 2 "$VEIL" frobnicate
expect 2 "$VEIL" keys
expect 2 "$VEIL" keys list --no-such-option
expect 3 "$VEIL" keys list                       # no store yet
expect 0 "$VEIL" keys init $FAST
expect 10 "$VEIL" keys init $FAST                 # already exists
before=$(sha256sum store/keystore.veil store/audit.log)
VEIL_PASSPHRASE=wrong expect 5 "$VEIL" keys rotate
[ "$(echo "$ERR" | wc -l)" -eq 1 ] && PASSED=$((PASSED + 1)) || { echo "FAIL: error is not one line: $ERR"; FAILED=$((FAILED + 1)); }
case "$ERR" in *wrong*) PASSED=$((PASSED + 1)) ;; *) echo "FAIL: $ERR"; FAILED=$((FAILED + 1)) ;; esac
after=$(sha256sum store/keystore.veil store/audit.log)
[ "$before" = "$after" ] && PASSED=$((PASSED + 1)) || { echo "FAIL: wrong passphrase changed files"; FAILED=$((FAILED + 1)); }

# The secret never appears in errors or the audit log.
expect 0 "$VEIL" audit show --json
case "$OUT$ERR" in *secret*) echo "FAIL: passphrase leaked"; FAILED=$((FAILED + 1)) ;; *) PASSED=$((PASSED + 1)) ;; esac

# Passphrase from a file; a key-file store.
printf 'secret\n' > pass.txt
VEIL_PASSPHRASE= expect 0 env -u VEIL_PASSPHRASE "$VEIL" keys list --passphrase-file pass.txt
expect 0 "$VEIL" keys init --store svc --new-key-file svc.key
expect 0 "$VEIL" keys rotate --store svc --key-file svc.key
expect 5 "$VEIL" keys rotate --store svc --passphrase-file pass.txt
expect 2 "$VEIL" keys rotate --store svc --key-file svc.key --passphrase-file pass.txt

# Tampered audit log: verify says corrupt (6), and writers refuse (6).
cp store/audit.log audit.good
flip_byte store/audit.log 100
expect 6 "$VEIL" audit verify
expect 6 "$VEIL" keys rotate
cp audit.good store/audit.log
expect 0 "$VEIL" audit verify
contains "it extends the store's head file" "$OUT"
# Records cut from the log's end, after the store's last change (a checkpoint's export is logged
# and changes nothing in the store file): the head file shows it to verify (6) and to writers (6).
expect 0 "$VEIL" audit checkpoint -o cp-cut
cp store/audit.log audit.longer
cp audit.good store/audit.log
expect 6 "$VEIL" audit verify
contains "cut short" "$ERR"
expect 6 "$VEIL" keys rotate
cp audit.longer store/audit.log
expect 0 "$VEIL" audit verify
# An emptied head file is damage: show still lists the records, and both fail (6).
cp store/audit.log.head head.good
: > store/audit.log.head
expect 6 "$VEIL" audit show
contains "store-created" "$OUT"
expect 6 "$VEIL" audit verify --json
contains '"valid": false' "$OUT"
cp head.good store/audit.log.head

# Tampered store: 6 with a pointer to the backup, then recovered.
expect 0 "$VEIL" keys rotate
cp store/keystore.veil ks.good
flip_byte store/keystore.veil 200
expect 6 "$VEIL" keys list
contains "veil keys recover" "$ERR"
expect 0 "$VEIL" keys recover
expect 0 "$VEIL" keys list
# Recovery is for a damaged file only: with the store intact it would undo the last change.
expect 8 "$VEIL" keys recover
contains "replaces only a damaged file" "$ERR"

# An older store file put back: one change behind is logged as failed and warned about (an
# interrupted save looks the same); two or more behind refuse every change (6).
cp store/keystore.veil ks.old
expect 0 "$VEIL" keys rotate
cp ks.old store/keystore.veil
expect 0 "$VEIL" keys rotate
contains "warning: the change logged as record" "$ERR"
expect 0 "$VEIL" keys rotate
[ -z "$ERR" ] || { echo "FAIL: the interrupted change was reported twice: $ERR"; FAILED=$((FAILED + 1)); }
cp store/keystore.veil ks.old
expect 0 "$VEIL" keys rotate
expect 0 "$VEIL" keys rotate
cp store/keystore.veil ks.new
cp ks.old store/keystore.veil
expect 6 "$VEIL" keys rotate
contains "an older store file was put back" "$ERR"
expect 0 "$VEIL" keys list                     # read-only: shows what the old file holds
cp ks.new store/keystore.veil
expect 0 "$VEIL" keys rotate
# The credential holder's way out when no newer file exists: keep the old one, the loss on record.
cp ks.old store/keystore.veil
expect 6 "$VEIL" keys rotate
expect 8 "$VEIL" keys recover
contains "(keep it with --accept-loss)" "$ERR"
expect 8 "$VEIL" keys recover --accept-loss    # the backup lacks less: it goes first
contains "lacks fewer changes" "$ERR"
rm store/keystore.veil.bak
expect 0 "$VEIL" keys recover --accept-loss
contains "lost (logged as failed): record" "$OUT"
expect 0 "$VEIL" keys rotate
expect 0 "$VEIL" audit show
contains "accepted as lost" "$OUT"
expect 2 "$VEIL" keys rotate --accept-loss

# Malformed requests and expired ones.
echo "garbage" > bad.veilreq
expect 6 "$VEIL" request show bad.veilreq
expect 3 "$VEIL" request show missing.veilreq
expect 2 "$VEIL" request create --requester nobody --case c --purpose p --target abc -o r1
VEIL_PRINCIPAL_PASSPHRASE=p expect 0 "$VEIL" principal add op --role operator --key-out op.key $FAST
expect 2 "$VEIL" request create --requester op --case c --purpose p --target-file pass.txt --expires-in 0s -o r2
expect 0 "$VEIL" request create --requester op --case c --purpose p --target-file pass.txt --expires-in 1s -o r3
expect 10 "$VEIL" request create --requester op --case c --purpose p --target-file pass.txt -o r3   # never overwrites
expect 2 "$VEIL" request create --requester op --case c --purpose "$(printf 'p\nexpires: never')" --target-file pass.txt -o r4
contains "control character" "$ERR"
sleep 2
expect 9 "$VEIL" request authorize r3
expect 2 "$VEIL" principal add x --role king --public-key 00
finish
