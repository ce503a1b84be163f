#!/usr/bin/env python3
"""The PyTorch peer of bench_gpu_loss: the standard SupCon loss (the N x N
logits, masks and log-softmax of the widely used reference code, autograd for
the backward pass), forward + backward on the GPU, timed with CUDA events.

  python3 bench/gpu/pytorch_peer.py [--n 4096,16384] [--d 128] [--classes 100] [--json out.json]

Prints and writes one JSON object per N: n, ms (median of --repeat after a
warm-up), peak_gb (torch.cuda.max_memory_allocated), or note = "OOM".
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F


def supcon_standard(rows, labels, temperature):
    """rows (N, D) unit-norm, labels (N,) of each row: L_out, every row an anchor."""
    n = rows.shape[0]
    logits = rows @ rows.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()  # stable exp
    self_mask = torch.eye(n, dtype=torch.bool, device=rows.device)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    denominator = torch.exp(logits).masked_fill(self_mask, 0).sum(dim=1, keepdim=True)
    log_prob = logits - torch.log(denominator)
    per_anchor = (log_prob * positive).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
    return -per_anchor.mean()


def time_one(n, d, classes, repeat, dev):
    torch.manual_seed(0)
    labels = torch.randint(0, classes, (n // 2,), device=dev).repeat(2)  # 2 views, view-major
    rows = F.normalize(torch.randn(n, d, device=dev), dim=1).requires_grad_()

    def step():
        rows.grad = None
        supcon_standard(rows, labels, 0.07).backward()

    step()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return dict(n=n, ms=statistics.median(times), peak_gb=torch.cuda.max_memory_allocated() / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="4096,16384,65536,262144,1048576")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit(f"pytorch_peer: torch {torch.__version__} sees no CUDA device")
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}", flush=True)
    results = []
    for n in (int(s) for s in args.n.split(",")):
        try:
            r = time_one(n, args.d, args.classes, args.repeat, dev)
        except torch.cuda.OutOfMemoryError:
            r = dict(n=n, note="OOM")
        torch.cuda.empty_cache()
        print(json.dumps(r), flush=True)
        results.append(r)
        if r.get("note") == "OOM":
            results += [dict(n=int(m), note="OOM (smaller N did)") for m in args.n.split(",") if int(m) > n]
            break
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
