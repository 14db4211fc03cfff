#!/bin/sh
# The example's test suite: one test of the built program.
out="$("$1")"
case "$out" in
  "hello from version "*) echo "PASS hello prints its version" ;;
  *) echo "FAIL hello printed: $out"; exit 1 ;;
esac
