#!/usr/bin/env bash
# Install the built library into a scratch prefix, then build and run a consumer against it both ways a user
# would: with pkg-config and with CMake's find_package.
# usage: consume.sh BUILD_DIR CONSUMER_SOURCE_DIR SCRATCH_DIR
set -euo pipefail
build=$1 source=$2 scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >"$scratch/install.log"
libdir=$(find "$prefix" -name ztwist.pc -printf '%h\n' | head -n 1)
[ -n "$libdir" ] || { echo "FAIL: ztwist.pc was not installed"; exit 1; }
libdir=${libdir%/pkgconfig}
grep -q "zmq.h\|czmq.h" -r "$prefix/include" && { echo "FAIL: a public header includes zmq.h or czmq.h"; exit 1; }

# pkg-config: the .pc file was written for the build's prefix, so point it at the scratch prefix.
sed -i "s|^prefix=.*|prefix=$prefix|" "$libdir/pkgconfig/ztwist.pc"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 -Wall -Werror "$source/consumer.c" -o "$scratch/consumer-pkgconfig" \
  $(pkg-config --cflags --libs ztwist)
LD_LIBRARY_PATH=$libdir "$scratch/consumer-pkgconfig"

# find_package
cmake -S "$source" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/configure.log"
cmake --build "$scratch/cmake-build" >"$scratch/build.log"
LD_LIBRARY_PATH=$libdir "$scratch/cmake-build/consumer"
echo "ok: consumed through pkg-config and find_package"
