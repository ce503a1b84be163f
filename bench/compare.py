#!/usr/bin/env python3
"""Runs our benchmarks and the PyTorch peer in one go and prints, per workload,
our time, PyTorch's time and their ratio; for the loss also the floor (its
three N x N x D products at the GEMM rates measured in the same run).

  python3 bench/compare.py --build build-perf --max-n 16384 --batch 128
  python3 bench/compare.py --build build-perf --workloads step --nets demo --rounds 6

With --rounds R the two sides run R times in turn (ours first in even rounds,
PyTorch first in odd ones), so that both see the same hours of a shared
machine; each row then gives the medians over the rounds and the range of the
per-round ratios, which is what a ratio on such a machine can be quoted as.

Needs the benchmarks built (-DSUPCON_BUILD_BENCHMARKS=ON), Debian's
/usr/bin/python3 with python3-torch, and libopenblas0-pthread. Both sides get
2 threads and GLIBC_TUNABLES=glibc.malloc.hugetlb=1; the peer also runs with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset. Timings only; nothing is asserted.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ours(exe, bench_filter, env, repeat, min_time=None):
    """{name: (seconds, items)} from a Google Benchmark program (median of repeats)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [exe, f"--benchmark_filter={bench_filter}", f"--benchmark_out={f.name}",
               "--benchmark_out_format=json", f"--benchmark_repetitions={repeat}",
               "--benchmark_report_aggregates_only=true"]
        if min_time is not None:
            cmd.append(f"--benchmark_min_time={min_time}")
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(f.name))
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") not in (None, "median"):
            continue
        name = re.sub(r"(/process_time)?/real_time.*$", "", b["run_name"])
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        out[name.replace("SupConFused/", "SupCon/")] = b["real_time"] * scale
    return out


def measure_ours(args, env):
    """Our side of every requested workload: {name: seconds}."""
    todo = args.workloads.split(",")
    ours = {}
    if "loss" in todo:
        ours.update(run_ours(os.path.join(args.build, "bench", "bench_loss"),
                             "Gemm|SupConFused/(L_out|anchors_one)/", env, args.repeat))
    if "layers" in todo:
        ours.update(run_ours(os.path.join(args.build, "bench", "bench_train"), "/(forward|backward)", env, args.repeat))
    if "step" in todo:
        nets = "|".join(args.nets.split(","))
        # steps for at least --step-min-time seconds, averaged: several steps, as on PyTorch's side
        ours.update(run_ours(os.path.join(args.build, "bench", "bench_train"), f"({nets})/supcon_step", env, 1,
                             args.step_min_time))
    return ours


def run_peer(args, env):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = ["/usr/bin/python3", os.path.join(HERE, "pytorch_peer.py"), "--workloads", args.workloads,
               "--max-n", str(args.max_n), "--batch", str(args.batch), "--repeat", str(args.repeat),
               "--step-repeat", str(args.step_repeat), "--nets", args.nets, "--json", f.name]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(f.name))
    return {r["name"]: r for r in data["results"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(HERE, "..", "build-perf"), help="build directory")
    p.add_argument("--workloads", default="loss,layers,step", help="comma-separated: loss, layers, step")
    p.add_argument("--max-n", type=int, default=16384)
    p.add_argument("--batch", type=int, default=128, help="samples per step (two views each)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--step-repeat", type=int, default=5, help="timed training steps per network on PyTorch's side")
    p.add_argument("--step-min-time", type=float, default=3.0, help="seconds of training steps on our side")
    p.add_argument("--nets", default="resnet18,demo", help="comma-separated networks of the step workload")
    p.add_argument("--rounds", type=int, default=1, help="runs of both sides, in turn (see above)")
    args = p.parse_args()
    if args.rounds < 1 or args.repeat < 1 or args.step_repeat < 1 or not args.step_min_time > 0:
        p.error("--rounds, --repeat and --step-repeat must be at least 1, --step-min-time above 0")
    base = dict(os.environ, OMP_NUM_THREADS="2", GLIBC_TUNABLES="glibc.malloc.hugetlb=1",
                SUPCON_BENCH_MAX_N=str(args.max_n), SUPCON_BENCH_BATCH=str(args.batch))
    peer_env = dict(base, OPENBLAS_NUM_THREADS="2")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        peer_env.pop(k, None)

    rounds = []  # (ours, peer) per round
    for r in range(args.rounds):
        if r % 2 == 0:
            ours = measure_ours(args, base)
            peer = run_peer(args, peer_env)
        else:
            peer = run_peer(args, peer_env)
            ours = measure_ours(args, base)
        rounds.append((ours, peer))
        if args.rounds > 1:
            print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    ours = {k: statistics.median(o[k] for o, _ in rounds) for k in rounds[0][0]}
    peer = {k: dict(rounds[0][1][k], seconds=statistics.median(p[k]["seconds"] for _, p in rounds))
            for k in rounds[0][1]}
    spread = {}  # workload: (lowest, highest) per-round PyTorch/ours
    for k in ours:
        ratios = [p[k]["seconds"] / o[k] for o, p in rounds if k in p and p[k].get("seconds")]
        if len(ratios) > 1:
            spread[k] = (min(ratios), max(ratios))

    gemm_ours = 2 * 2048 ** 3 / ours["Gemm/2048"] if "Gemm/2048" in ours else None
    gemm_peer = 2 * 2048 ** 3 / peer["Gemm/2048"]["seconds"] if "Gemm/2048" in peer else None
    if gemm_ours:
        print(f"GEMM 2048^3: ours (Eigen) {gemm_ours / 1e9:.0f} GFLOP/s, PyTorch (OpenBLAS) {gemm_peer / 1e9:.0f} GFLOP/s")
    print(f"{'workload':44s} {'ours ms':>10s} {'PyTorch ms':>11s} {'PyTorch/ours':>12s} {'floor ms':>9s} {'ours/floor':>10s}")
    for name, t in ours.items():
        if name == "Gemm/2048":
            continue
        pt = peer.get(name, {}).get("seconds")
        row = f"{name:44s} {t * 1e3:10.1f} " + (f"{pt * 1e3:11.1f} {pt / t:12.2f}" if pt else f"{'-':>11s} {'-':>12s}")
        m = re.match(r"SupCon/(\w+)/(\d+)$", name)
        if m and gemm_peer:
            n = int(m.group(2))
            anchors = n if m.group(1) == "L_out" else n // 2
            floor = 3 * 2 * anchors * n * 128 / max(gemm_ours, gemm_peer)  # the faster GEMM
            row += f" {floor * 1e3:9.1f} {t / floor:10.2f}"
        if "step" in name:
            items = peer.get(name, {}).get("items", 2 * args.batch)
            row += f"   images/s: ours {items / t:.1f}" + (f", PyTorch {items / pt:.1f}" if pt else "")
        if name in spread:
            row += f"   per-round PyTorch/ours {spread[name][0]:.2f}-{spread[name][1]:.2f}"
        print(row)
    if "SupCon/peak_rss_mib" in peer:
        print(f"PyTorch peak RSS over the loss runs: {peer['SupCon/peak_rss_mib']['rss_mib']:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
