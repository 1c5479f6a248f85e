#!/usr/bin/env bash
# Install the built library into a fresh prefix under /tmp, the way the README says, then prove the tree works
# from there without help: the installed program starts with no LD_LIBRARY_PATH, ztwist.pc and the CMake package
# describe the prefix they are in (not the one configured), and a consumer builds against it both ways a user
# would: with pkg-config and with CMake's find_package. The tree is then moved, and used again from its new place.
# usage: consume.sh BUILD_DIR CONSUMER_SOURCE_DIR SCRATCH_DIR
set -euo pipefail
build=$1 source=$2 scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch"
root=$(mktemp -d /tmp/ztwist-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

prefix=$root/prefix
cmake --install "$build" --prefix "$prefix" >"$scratch/install.log"
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH

check_prefix() { # check_prefix PREFIX TAG: the installed tree at PREFIX works from there
  local prefix=$1 tag=$2
  local pc libdir
  pc=$(find "$prefix" -name ztwist.pc | head -n 1)
  [ -n "$pc" ] || fail "ztwist.pc was not installed"
  libdir=$(dirname "$(dirname "$pc")")
  grep -q "zmq.h\|czmq.h" -r "$prefix/include" && fail "a public header includes zmq.h or czmq.h"

  # The installed program finds its library through its RPATH.
  "$prefix/bin/ztwist-broker" --keygen "$scratch/keygen-$tag.cert" >"$scratch/keygen-$tag.out" 2>&1 ||
    fail "$prefix/bin/ztwist-broker does not start: $(cat "$scratch/keygen-$tag.out")"

  # The API reference, when the build made it: a man page per function, found through the prefix's share/man.
  if [ -f "$build/docs/api/html/index.html" ]; then
    [ -f "$prefix/share/man/man3/zt_deferred_add_callbacks.3" ] || fail "no man page for zt_deferred_add_callbacks"
    if command -v man >/dev/null; then
      MANPATH=$prefix/share/man man -w zt_deferred_add_callbacks >/dev/null ||
        fail "MANPATH=$prefix/share/man man zt_deferred_add_callbacks finds nothing"
    fi
  fi

  # pkg-config: the prefix it reports is this one, and Cflags name only its include directory, even with
  # --static (libzmq's and libczmq's include directories are none of a user's business).
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  [ "$(realpath "$(pkg-config --variable=prefix ztwist)")" = "$(realpath "$prefix")" ] ||
    fail "ztwist.pc's prefix is $(pkg-config --variable=prefix ztwist), not $prefix"
  local opt flags
  for opt in "" --static; do
    # shellcheck disable=SC2086
    flags=$(pkg-config --cflags $opt ztwist)
    read -r -a words <<<"$flags"
    [ "${#words[@]}" -eq 1 ] && [ "${words[0]#-I}" != "${words[0]}" ] &&
      [ "$(realpath "${words[0]#-I}")" = "$(realpath "$prefix/include")" ] ||
      fail "pkg-config --cflags $opt ztwist prints '$flags', not only -I$prefix/include"
  done
  pkg-config --libs --static ztwist | grep -q -- "-lzmq" || fail "pkg-config --libs --static lacks libzmq"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Werror "$source/consumer.c" -o "$scratch/consumer-pkgconfig-$tag" \
    $(pkg-config --cflags --libs ztwist)
  # The consumer is the user's program, linked with no RPATH: the user says where the library is.
  LD_LIBRARY_PATH=$libdir "$scratch/consumer-pkgconfig-$tag"
  unset PKG_CONFIG_PATH

  # find_package: CMake gives the consumer an RPATH to the imported library, so it runs as built.
  rm -rf "$scratch/cmake-build-$tag"
  cmake -S "$source" -B "$scratch/cmake-build-$tag" -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/configure-$tag.log"
  cmake --build "$scratch/cmake-build-$tag" >"$scratch/build-$tag.log"
  "$scratch/cmake-build-$tag/consumer"
}

check_prefix "$prefix" installed
# Relocation: the same tree, moved, still describes itself.
mv "$prefix" "$root/moved"
check_prefix "$root/moved" moved
echo "ok: installed to a fresh prefix, moved it, and consumed it through pkg-config and find_package"
