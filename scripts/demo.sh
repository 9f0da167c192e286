#!/usr/bin/env bash
# The main job on the embedded default: builds kccl (installing what it needs),
# then runs the demo under the local launcher: N ranks bootstrap, all-gather
# every rank's host id and address, run a barrier and print the bootstrap time.
# Usage: scripts/demo.sh [N]   (default 4 ranks)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-4}
"$top/scripts/install-deps.sh" >/dev/null
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" kccl-run kccl-demo >/dev/null
exec "$top/build/runtime/tools/kccl-run" -n "$n" -- "$top/build/runtime/tools/kccl-demo"
