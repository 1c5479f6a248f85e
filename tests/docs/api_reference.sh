#!/usr/bin/env bash
# Build the API reference from the configured Doxyfile into a scratch directory, and check that a C programmer's
# `man zt_deferred_add_callbacks` finds a page that documents the function and each of its parameters.
# Exits 77 (skipped) when doxygen is not installed.
# usage: api_reference.sh BUILD_DOXYFILE SCRATCH_DIR
set -euo pipefail
doxyfile=$1 scratch=$2
command -v doxygen >/dev/null || { echo "SKIP: doxygen is not installed (Debian: apt-get install doxygen)"; exit 77; }
fail() {
  echo "FAIL: $*"
  exit 1
}
rm -rf "$scratch"
mkdir -p "$scratch"
{ cat "$doxyfile"; echo "OUTPUT_DIRECTORY = $scratch"; echo "WARN_LOGFILE = $scratch/warnings.log"; } |
  doxygen - >"$scratch/doxygen.log" 2>&1 || { cat "$scratch/doxygen.log"; fail "doxygen failed"; }
[ -f "$scratch/html/index.html" ] || fail "no HTML reference"

# MAN_LINKS: the function's own page is a link (.so) to the page of the header that declares it.
page=$scratch/man/man3/zt_deferred_add_callbacks.3
[ -f "$page" ] || fail "no man page for zt_deferred_add_callbacks"
target=$(sed -n 's/^\.so //p' "$page")
[ -z "$target" ] || page=$scratch/man/$target
[ -f "$page" ] || fail "zt_deferred_add_callbacks.3 links to $target, which does not exist"

# The function's section of that page: from its heading to the next function's.
section=$(awk '/^\.SS "int zt_deferred_add_callbacks *\(/ { on = 1; print; next } on && /^\.SS / { exit } on' "$page")
[ -n "$section" ] || fail "$page has no section for zt_deferred_add_callbacks"
for param in callback errback arg; do
  grep -q "\\\\fI$param\\\\fP" <<<"$section" || fail "the page for zt_deferred_add_callbacks does not describe '$param'"
done
grep -q "ZT_EINVAL" <<<"$section" || fail "the page for zt_deferred_add_callbacks does not list its return codes"
grep -q "ZT_EXPORT\|ZT_NODISCARD" "$page" && fail "a signature on $page shows ZT_EXPORT or ZT_NODISCARD"

# And man itself finds it, as a user would with MANPATH set to the share/man of a prefix.
if command -v man >/dev/null; then
  MANPATH=$scratch/man man -w zt_deferred_add_callbacks >/dev/null || fail "man -w zt_deferred_add_callbacks finds nothing"
fi
echo "ok: man zt_deferred_add_callbacks documents its parameters"
