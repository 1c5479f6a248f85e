#!/usr/bin/env bash
# ztwist's one entry point: ./build.sh demo | test | bench [--quick] | build
# Each verb installs what is missing (scripts/bootstrap), configures and builds into build/, then does its job.
set -euo pipefail
cd "$(dirname "$0")"
verb=${1:-build}
shift || true

scripts/bootstrap
jobs=$(nproc 2>/dev/null || echo 2)

configure_and_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || { cat "$dir.build.log"; exit 1; }
}

case $verb in
  build)
    configure_and_build build
    echo "built into build/"
    ;;
  demo)
    configure_and_build build
    exec examples/demo.sh build
    ;;
  test)
    configure_and_build build
    cd build
    exec ctest --output-on-failure -j "$jobs" "$@"
    ;;
  bench)
    configure_and_build build-bench -DCMAKE_BUILD_TYPE=Release -DZT_BUILD_TESTS=OFF
    exec bench/run.sh build-bench "$@"
    ;;
  *)
    echo "usage: ./build.sh demo | test | bench [--quick] | build" >&2
    exit 2
    ;;
esac
