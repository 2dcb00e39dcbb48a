# Helpers for the CLI tests: run a command and check its exit code.
set -u
VEIL=$(realpath "${1:?usage: $0 PATH_TO_VEIL}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILED=0
PASSED=0

# expect CODE CMD...: runs CMD, checks the exit code, keeps stdout in $OUT and stderr in $ERR.
expect() {
  local want=$1; shift
  OUT=$("$@" 2>"$WORK/.err"); local got=$?
  ERR=$(cat "$WORK/.err")
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: '$*' exited $got, expected $want"; echo "  stdout: $OUT"; echo "  stderr: $ERR"
    FAILED=$((FAILED + 1))
  else
    PASSED=$((PASSED + 1))
  fi
}

# contains TEXT HAYSTACK
contains() {
  case "$2" in
    *"$1"*) PASSED=$((PASSED + 1)) ;;
    *) echo "FAIL: expected '$1' in: $2"; FAILED=$((FAILED + 1)) ;;
  esac
}

# flip_byte FILE OFFSET: inverts every bit of one byte in place. Writing a fixed value instead would
# leave the file unchanged whenever the byte already held it (1 run in 256 on random ciphertext).
flip_byte() {
  local old
  old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [ -n "$old" ] || { echo "FAIL: flip_byte: $1 has no byte at $2"; FAILED=$((FAILED + 1)); return 1; }
  printf "\\$(printf '%03o' $((255 - old)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# toy_training_set VEIL_TRAIN_PREP DEMO_DIR: prepares ./data from the demo photos, each copied 4 times
# (prefixes 1_ to 4_), with 2 held out: the trainers' tests run on it.
toy_training_set() {
  mkdir img
  for i in 1 2 3 4; do for f in "$2"/sample*.jpg; do cp "$f" "img/${i}_$(basename "$f")"; done; done
  expect 0 "$1" --images img --out data --failures fail.tsv --landmarks detect --holdout 2 --no-flip
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
