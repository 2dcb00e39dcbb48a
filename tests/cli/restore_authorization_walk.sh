#!/usr/bin/env bash
# The README's restore-authorization walk: init, three approvers, a request, two approvals, a
# logged denial and a logged grant, then `veil audit verify`.
source "$(dirname "$0")/lib.sh"
export VEIL_STORE=$WORK/store VEIL_PASSPHRASE='correct horse battery staple' VEIL_ACTOR=admin
FAST="--kdf-ops 1 --kdf-mem-mib 8"

expect 0 "$VEIL" keys init $FAST
contains "keyring default: version 1" "$OUT"
for p in alice bob carol; do
  VEIL_PRINCIPAL_PASSPHRASE="pw-$p" expect 0 "$VEIL" principal add $p --role approver --key-out $p.key $FAST
done
VEIL_PRINCIPAL_PASSPHRASE=pw-olivia expect 0 "$VEIL" principal add olivia --role operator --key-out olivia.key $FAST
expect 0 "$VEIL" principal list --json
contains '"role": "approver"' "$OUT"

echo "a photo" > photo.jpg
expect 0 "$VEIL" request create --requester olivia --case CASE-7 --purpose "court order 123" --target-file photo.jpg -o req.veilreq
VEIL_PRINCIPAL_PASSPHRASE=pw-alice expect 0 "$VEIL" request approve req.veilreq --principal-key alice.key
expect 7 "$VEIL" request authorize req.veilreq
contains "1 of 2 required approvals" "$ERR"
VEIL_PRINCIPAL_PASSPHRASE=wrong expect 5 "$VEIL" request approve req.veilreq --principal-key bob.key
VEIL_PRINCIPAL_PASSPHRASE=pw-bob expect 0 "$VEIL" request approve req.veilreq --principal-key bob.key
expect 0 "$VEIL" request show req.veilreq --json
contains '"approver": "bob"' "$OUT"
expect 0 "$VEIL" request authorize req.veilreq
contains "granted" "$OUT"
# An approver signs with only their own key file (no store credential, no store folder); the
# custodian's authorization counts it and names it on record.
expect 0 "$VEIL" request create --requester olivia --case CASE-8 --purpose "court order 124" --target-file photo.jpg -o req2.veilreq
VEIL_STORE=$WORK/nowhere VEIL_PASSPHRASE= VEIL_PRINCIPAL_PASSPHRASE=pw-alice expect 0 "$VEIL" request approve req2.veilreq --principal-key alice.key --offline
VEIL_STORE=$WORK/nowhere VEIL_PASSPHRASE= VEIL_PRINCIPAL_PASSPHRASE=pw-carol expect 0 "$VEIL" request approve req2.veilreq --principal-key carol.key --offline
expect 0 "$VEIL" request authorize req2.veilreq
contains "granted" "$OUT"
expect 0 "$VEIL" audit show --json
contains "approved by alice, carol" "$OUT"
contains "requester olivia (not signed)" "$OUT"

# A keyring that wants the requester's own signature: without it, two approvals are not enough;
# olivia signs with her principal key (offline too), and the grant says it was signed.
expect 0 "$VEIL" keys policy --keyring default --approvals 2 --requester-signs yes
contains "and the requester's own signature" "$OUT"
expect 2 "$VEIL" keys policy --keyring default --approvals 2 --requester-signs maybe
expect 0 "$VEIL" request create --requester olivia --case CASE-9 --purpose "court order 125" --target-file photo.jpg -o req3.veilreq
for p in alice bob; do VEIL_PRINCIPAL_PASSPHRASE=pw-$p expect 0 "$VEIL" request approve req3.veilreq --principal-key $p.key; done
expect 7 "$VEIL" request authorize req3.veilreq
contains "'olivia' has not signed the request" "$ERR"
VEIL_STORE=$WORK/nowhere VEIL_PASSPHRASE= VEIL_PRINCIPAL_PASSPHRASE=pw-olivia expect 0 "$VEIL" request approve req3.veilreq --principal-key olivia.key --offline
contains "signed, as its requester (not an approval), request" "$OUT"
contains "(2 approvals now)" "$OUT"
expect 0 "$VEIL" request show req3.veilreq
contains "signed     by olivia" "$OUT"
expect 0 "$VEIL" request authorize req3.veilreq
contains "granted" "$OUT"
expect 0 "$VEIL" audit show --json
contains "requester olivia (signed)" "$OUT"
expect 0 "$VEIL" keys list
contains "restores need 2 approvals and the requester's signature" "$OUT"
expect 0 "$VEIL" keys policy --keyring default --approvals 2 --requester-signs no

expect 0 "$VEIL" audit verify
contains "audit log OK" "$OUT"
expect 0 "$VEIL" audit show --json
contains '"outcome": "denied"' "$OUT"
contains '"outcome": "granted"' "$OUT"

# A checkpoint for a witness; the log keeps extending it.
expect 0 "$VEIL" audit checkpoint -o cp1
expect 0 "$VEIL" keys rotate
expect 0 "$VEIL" audit verify --checkpoint cp1
contains "extends the checkpoint" "$OUT"

# Key lifecycle.
expect 0 "$VEIL" keys list --json
contains '"primary_version": 2' "$OUT"
expect 0 "$VEIL" keys disable --keyring default --version 1
expect 2 "$VEIL" keys destroy --keyring default --version 1
expect 0 "$VEIL" keys destroy --keyring default --version 1 --yes
expect 8 "$VEIL" keys enable --keyring default --version 1
expect 0 "$VEIL" principal revoke carol
expect 0 "$VEIL" audit verify
finish
