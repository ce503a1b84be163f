#!/usr/bin/env bash
# The main job: installs what is missing, builds the supcon program, runs the demo
# (cross-entropy vs SupCon on Fashion-MNIST; table on stdout, build/demo/report.html).
# Extra arguments go to `supcon demo`, e.g. --full or --seed 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSUPCON_NATIVE=ON >/dev/null
cmake --build build -j"$(nproc)" --target supcon_cli
./build/bin/supcon demo --out build/demo "$@"
