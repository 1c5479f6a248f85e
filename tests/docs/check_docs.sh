#!/usr/bin/env bash
# The documentation check. Every public function -- each ZT_EXPORT declaration and each static inline function in
# include/ztwist.h and include/ztwist/*.h -- must have a /** */ doc comment right before it in its header and must
# be named in at least one docs/*.md page. Then every ```c block in docs/*.md and README.md that includes
# <ztwist.h> must compile (syntax only, with the project's warnings). Prints each problem; exits 1 when any.
#
# Names reserved for internals (zt__*, exported only for a macro, such as the failure types behind ZT_ERROR) are
# skipped. A function that a macro wraps, named with a trailing underscore (zt_failure_check_), counts as
# documented in docs/ when the macro's name (zt_failure_check) appears there.
#
# usage: check_docs.sh [--self-test] [ROOT]    ROOT holds include/ and docs/; the default is the repository of this
# script. --self-test first runs the check on a scratch tree with planted faults and fails unless each is reported.
set -euo pipefail
if [ "${1:-}" = --self-test ]; then
    shift
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/include/ztwist" "$scratch/docs"
    cat >"$scratch/include/ztwist/planted.h" <<'HEADER'
#define ZT_EXPORT
/* A plain comment is not a doc comment. */
ZT_EXPORT int zt_planted_undocumented(int x);

/** Documented, but named on no page. */
ZT_EXPORT int
zt_planted_unnamed(int x,
                   int y);

/** Documented and named. */
static inline int
zt_planted_fine(void)
{
    return 0;
}
HEADER
    # shellcheck disable=SC2016 # backquotes are Markdown here
    printf '# planted\n\n`zt_planted_undocumented` `zt_planted_fine`\n\n```c\n#include <ztwist.h>\nint f(void) { return zt_planted_missing; }\n```\n' \
        >"$scratch/docs/planted.md"
    printf '#include <ztwist/planted.h>\n' >"$scratch/include/ztwist.h"
    if out=$("$0" "$scratch" 2>&1); then
        echo "check_docs self-test: the check passed a tree with planted faults"
        exit 1
    fi
    for expect in "no /\*\* \*/ doc comment before it: zt_planted_undocumented" \
        "not named in any docs/\*.md page: zt_planted_unnamed" "does not compile"; do
        if ! grep -q "$expect" <<<"$out"; then
            echo "check_docs self-test: not reported: $expect"
            echo "$out"
            exit 1
        fi
    done
    if grep -Eq "^(no |not named).*zt_planted_fine" <<<"$out"; then
        echo "check_docs self-test: a documented, named function was reported"
        exit 1
    fi
    echo "check_docs self-test: the planted faults were reported"
    rm -rf "$scratch"
    trap - EXIT
fi
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -d "$root/include" ] || { echo "check_docs: no include/ under $root"; exit 2; }
[ -d "$root/docs" ] || { echo "check_docs: no docs/ under $root"; exit 2; }

headers=()
[ -f "$root/include/ztwist.h" ] && headers+=("$root/include/ztwist.h")
while IFS= read -r h; do headers+=("$h"); done < <(find "$root/include" -path '*/ztwist/*' -name '*.h' | sort)
pages=()
while IFS= read -r p; do pages+=("$p"); done < <(find "$root/docs" -name '*.md' | sort)
[ "${#pages[@]}" -gt 0 ] || { echo "check_docs: no docs/*.md page under $root"; exit 1; }

# One line per public function: "<file>:<line> <name> <doc|nodoc>". A declaration counts as documented when the
# last thing before it (blank lines aside) is the end of a comment that opened with /**.
list=$(perl -e '
    for my $file (@ARGV) {
        open(my $fh, "<", $file) or die "check_docs: cannot read $file\n";
        my @lines = <$fh>;
        close $fh;
        my ($in_comment, $is_doc, $doc_before) = (0, 0, 0);
        for (my $i = 0; $i < @lines; $i++) {
            my $line = $lines[$i];
            if ($in_comment) {
                if ($line =~ m{\*/}) { $in_comment = 0; $doc_before = $is_doc; }
                next;
            }
            next if $line =~ /^\s*$/;
            if ($line =~ m{^\s*/\*}) {
                $is_doc = ($line =~ m{^\s*/\*\*(?!\*)}) ? 1 : 0;
                # a comment that closes on its own line
                if ($line =~ m{^\s*/\*.*?\*/\s*$}) { $doc_before = $is_doc; }
                else { $in_comment = 1; }
                next;
            }
            my $decl;
            if ($line =~ /^\s*ZT_EXPORT\b/) {
                $decl = $line;
                my $j = $i;
                while ($decl !~ /;/ && $j + 1 < @lines) { $decl .= $lines[++$j]; }
            } elsif ($line =~ /^\s*static\s+inline\b/) {
                # the name is on this line or the next (return type on its own line, as clang-format puts it)
                $decl = $line . ($i + 1 < @lines ? $lines[$i + 1] : "");
            }
            if (defined $decl) {
                my $name;
                if ($decl =~ /^[^(;]*?\b([A-Za-z_]\w*)\s*\(/s) { $name = $1; }
                elsif ($decl =~ /\b([A-Za-z_]\w*)\s*;/) { $name = $1; }
                if (defined $name && $name !~ /^zt__/) {
                    printf "%s:%d %s %s\n", $file, $i + 1, $name, $doc_before ? "doc" : "nodoc";
                }
            }
            $doc_before = 0;
        }
    }' "${headers[@]}")

status=0
checked=0
while read -r where name doc; do
    [ -n "$where" ] || continue
    checked=$((checked + 1))
    rel=${where#"$root"/}
    if [ "$doc" != doc ]; then
        echo "no /** */ doc comment before it: $name ($rel)"
        status=1
    fi
    if ! grep -qw -- "$name" "${pages[@]}"; then
        short=${name%_}
        if [ "$short" = "$name" ] || ! grep -qw -- "$short" "${pages[@]}"; then
            echo "not named in any docs/*.md page: $name ($rel)"
            status=1
        fi
    fi
done <<<"$list"
echo "check_docs: $checked public functions in ${#headers[@]} headers, ${#pages[@]} pages"
[ "$checked" -gt 0 ] || { echo "check_docs: found no public function at all"; status=1; }

# The code samples: each ```c block that includes <ztwist.h> must compile against the headers.
cc=${CC:-cc}
if command -v "$cc" >/dev/null 2>&1; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    samples=0
    for page in "${pages[@]}" "$root/README.md"; do
        [ -f "$page" ] || continue
        awk -v out="$scratch/sample" '
            /^```c[[:space:]]*$/ { n++; inblock = 1; file = out "-" n ".c"; printf "" > file; next }
            /^```/ && inblock { inblock = 0; close(file); next }
            inblock { print >> file }' "$page"
        for sample in "$scratch"/sample-*.c; do
            [ -e "$sample" ] || continue
            if grep -q '#include <ztwist.h>' "$sample"; then
                samples=$((samples + 1))
                if ! "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Wshadow \
                    -Wstrict-prototypes -Werror -fsyntax-only -I "$root/include" "$sample" \
                    >"$scratch/cc.log" 2>&1; then
                    echo "a code sample in ${page#"$root"/} does not compile (code block $(basename "$sample" .c | cut -d- -f2)):"
                    sed 's/^/    /' "$scratch/cc.log"
                    status=1
                fi
            fi
            rm -f "$sample"
        done
    done
    echo "check_docs: $samples code samples compile-checked"
else
    echo "check_docs: no C compiler ($cc): code samples not compiled"
fi
exit "$status"
