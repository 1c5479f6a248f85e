#!/usr/bin/env bash
# The demo: run each example in turn, with a heading that says what it shows. Leaves nothing running.
# usage: examples/demo.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
ran=0
while IFS='|' read -r name args title; do
  case $name in ''|'#'*) continue ;; esac
  [ -x "$build/examples/$name" ] || continue
  echo
  echo "== $name: $title"
  # shellcheck disable=SC2086
  "$build/examples/$name" $args
  ran=$((ran + 1))
done <"$here/demo.list"
echo
echo "demo: $ran example(s) ran"
