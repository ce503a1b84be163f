#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSUPCON_BUILD_BENCHMARKS=ON
cmake --build build -j"$jobs"
# Test processes run side by side on few cores: threads that sleep at a barrier
# instead of spinning keep them from starving each other.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
ctest --test-dir build --output-on-failure -j"$jobs"
