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

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
