#!/usr/bin/env bash
# Formats every C source and header of the tree with clang-format (.clang-format at the root).
# Usage: scripts/format.sh           rewrite files in place
#        scripts/format.sh --check   change nothing; list unformatted files, exit 1 if any
set -euo pipefail

cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
DIRS=(runtime kernels sidecar operator kube bench tests)

check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v "$CLANG_FORMAT" >/dev/null || { echo "format: $CLANG_FORMAT not found; run scripts/install-deps.sh" >&2; exit 2; }

existing=()
for d in "${DIRS[@]}"; do
    [ -d "$d" ] && existing+=("$d")
done
[ ${#existing[@]} -gt 0 ] || { echo "format: no source directories"; exit 0; }

# Files git knows about (tracked or new), never build trees or vendored copies.
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${existing[@]}" |
                     grep -E '\.(c|h|cu|cuh)$' | sort -u)
[ ${#files[@]} -gt 0 ] || { echo "format: no C files"; exit 0; }

if [ $check -eq 0 ]; then
    printf '%s\0' "${files[@]}" | xargs -0 -n 50 "$CLANG_FORMAT" -i --style=file
    echo "format: ${#files[@]} files formatted"
    exit 0
fi

bad=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "format: ${#bad[@]} of ${#files[@]} files need formatting (run scripts/format.sh):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "format: ${#files[@]} files clean"
