#!/usr/bin/env bash
# The GPU check, in one go and without network: configures with the
# header-only dependencies taken from a folder (tools/vendor-deps.sh fills it
# on a machine that has them), builds the CUDA tests, bench_gpu_loss and
# bench_gpu_train, runs the tests, times the fused loss and the PyTorch peer on
# the same GPU, a few GPU training steps of ResNet-18 and the same steps in
# PyTorch (float32, TF32, bf16, bf16 channels-last), and prints a short table
# last.
#
#   bench/gpu/run.sh [DEPS_DIR]          default DEPS_DIR: .deps
#
# Environment: PYTHON (default python3, needs torch with CUDA), SUPCON_GPU_N
# (comma-separated sizes), SUPCON_GPU_BUDGET_S (seconds per size the benchmark
# may predict before it skips one, default 120), CMAKE_CUDA_ARCHITECTURES
# (default 80;90), BUILD_DIR (default build-gpu), SUPCON_GPU_TRAIN_BATCH
# (samples per training step, default 256).
# Exit status: 0 when the CUDA tests pass, 1 when one fails, 3 when they were
# skipped (no CUDA device), 2 for a missing dependency folder.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
deps=${1:-$root/.deps}
if [[ ! -d "$deps" ]]; then
  echo "run.sh: no dependency folder $deps (make it with tools/vendor-deps.sh on a machine that has the packages)" >&2
  exit 2
fi
deps=$(cd "$deps" && pwd)
build=${BUILD_DIR:-$root/build-gpu}
out=$build/gpu-results
sizes=${SUPCON_GPU_N:-4096,16384,65536,262144,1048576}
python=${PYTHON:-python3}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
arch=()
[[ -n "${CMAKE_CUDA_ARCHITECTURES:-}" ]] && arch=(-DCMAKE_CUDA_ARCHITECTURES="$CMAKE_CUDA_ARCHITECTURES")

set -e
echo "== configure ($build, dependencies from $deps)"
cmake -S "$root" -B "$build" "${generator[@]}" "${arch[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DSUPCON_DEPS_DIR="$deps" -DSUPCON_CUDA=ON -DSUPCON_BUILD_GPU_BENCH=ON \
  -DSUPCON_BUILD_CLI=OFF -DSUPCON_BUILD_EXAMPLES=OFF -DSUPCON_BUILD_BENCHMARKS=OFF
echo "== build"
cmake --build "$build" -j"$(nproc)" --target test_cuda_math test_cuda_losses test_cuda_layer_math test_cuda_layers \
  test_cuda_train_math test_cuda_train bench_gpu_loss bench_gpu_train
set +e
mkdir -p "$out"

echo "== CUDA tests"
ctest --test-dir "$build" -R '^cuda_' --output-on-failure | tee "$out/ctest.log"
tests_rc=${PIPESTATUS[0]}
tests="passed"
if [[ $tests_rc != 0 ]]; then
  tests="FAILED (see above)"
  tests_rc=1
elif grep -q 'Skipped' "$out/ctest.log"; then
  tests="SKIPPED: no CUDA device"
  tests_rc=3
fi

rm -f "$out/fused.csv" "$out/torch.json" "$out/train.csv" "$out/torch_train.json"  # no stale figures in the table
echo "== fused loss (bench_gpu_loss)"
"$build/bench/gpu/bench_gpu_loss" --n "$sizes" --budget-s "${SUPCON_GPU_BUDGET_S:-120}" --csv "$out/fused.csv"
echo "== PyTorch peer"
"$python" "$root/bench/gpu/pytorch_peer.py" --n "$sizes" --json "$out/torch.json"
train_batch=${SUPCON_GPU_TRAIN_BATCH:-256}
echo "== GPU training steps (bench_gpu_train)"
"$build/bench/gpu/bench_gpu_train" --batch "$train_batch" --steps 20 --csv "$out/train.csv"
echo "== PyTorch peer of the training steps"
"$python" "$root/bench/gpu/pytorch_train_peer.py" --batch "$train_batch" --steps 20 \
  --modes fp32,tf32,bf16,bf16-cl --json "$out/torch_train.json"

"$python" - "$out/fused.csv" "$out/torch.json" "$tests" "$out/train.csv" "$out/torch_train.json" <<'PY'
import csv, json, os, sys
fused = {int(r["n"]): r for r in csv.DictReader(open(sys.argv[1]))} if os.path.exists(sys.argv[1]) else {}
torch = {r["n"]: r for r in json.load(open(sys.argv[2]))} if os.path.exists(sys.argv[2]) else {}
def num(x):
    try:
        v = float(x)
        return v if v >= 0 else None
    except (TypeError, ValueError):
        return None
def cell(v, fmt):
    return fmt.format(v) if v is not None else "-".rjust(len(fmt.format(0.0)))
print()
print("CUDA tests: " + sys.argv[3])
print(f"{'N':>9} | {'fused ms':>9} | {'floor ms':>9} | {'x floor':>7} | {'fused GB':>8} | {'blocked ms':>10} | {'x floor':>7}"
      f" | {'blocked GB':>10} | {'torch ms':>9} | {'torch GB':>8} | {'torch/blocked':>13}")
if not fused and not torch:
    print("(no timings: see the errors above)")
for n in sorted(set(fused) | set(torch)):
    f, t = fused.get(n, {}), torch.get(n, {})
    fm, fl, fg = num(f.get("fused_ms")), num(f.get("floor_ms")), num(f.get("mem_gb"))
    bm, bg = num(f.get("blocked_ms")), num(f.get("blocked_gb"))
    tm, tg = num(t.get("ms")), num(t.get("peak_gb"))
    note = " ".join(x for x in (f.get("note") or "", t.get("note") or "") if x)
    print(f"{n:>9} | {cell(fm, '{:9.2f}')} | {cell(fl, '{:9.2f}')} | {cell(fm / fl if fm and fl else None, '{:7.2f}')}"
          f" | {cell(fg, '{:8.3f}')} | {cell(bm, '{:10.2f}')} | {cell(bm / fl if bm and fl else None, '{:7.2f}')}"
          f" | {cell(bg, '{:10.3f}')} | {cell(tm, '{:9.2f}')} | {cell(tg, '{:8.3f}')}"
          f" | {cell(tm / bm if tm and bm else None, '{:13.2f}')} {note}")
train = list(csv.DictReader(open(sys.argv[4]))) if os.path.exists(sys.argv[4]) else []
try:  # a peer that died while writing leaves "-" in the table
    peer = {r["mode"]: r for r in json.load(open(sys.argv[5]))}
except (OSError, ValueError, KeyError, TypeError):
    peer = {}
def peer_ips(mode):
    r = peer.get(mode, {})
    v = num(r.get("images_per_s"))
    return v, f"{v:.0f}" if v is not None else "-" + (f" ({r['note']})" if r.get("note") else "")
# images = samples (of 2 views each); ours includes its CPU loader, PyTorch starts from images on the GPU
tf, tf_text = peer_ips("fp32")
for r in train:
    ours = num(r.get("images_per_s"))
    print(f"training ({r['arch']} width {r['width']}, CIFAR stem, SupCon, batch {r['batch']} x 2 views, float32): "
          f"ours {cell(ours, '{:.0f}')} images/s ({float(r['ms_per_step']):.1f} ms/step, CPU loader "
          f"{float(r['loader_ms']):.1f} ms of it) | PyTorch {tf_text} images/s (TF32 off)"
          f" | ours/PyTorch {f'{ours / tf:.2f}' if ours and tf else '-'}")
if not train:
    print(f"training: no timing of ours (see above) | PyTorch float32 {tf_text} images/s (TF32 off)")
print("  PyTorch for reference, images/s (no loader): " +
      ", ".join(f"{m} {peer_ips(m)[1]}" for m in ("tf32", "bf16", "bf16-cl")))
PY
exit "$tests_rc"
