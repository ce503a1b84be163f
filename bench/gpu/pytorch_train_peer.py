#!/usr/bin/env python3
"""The PyTorch peer of bench_gpu_train: SupCon training steps of ResNet-18
(CIFAR stem) in PyTorch eager mode on the same GPU, in several precisions.

  python3 bench/gpu/pytorch_train_peer.py [--batch 256] [--width 64] [--steps 20]
      [--warmup 5] [--modes fp32,bf16,bf16-cl] [--device cuda|cpu] [--json out.json]

The workload is the one bench_gpu_train times (TrainConfig's defaults there):
  model  ResNet-18, base width w: conv 3x3/1 + BN + ReLU (no max-pool), four
         stages of two basic blocks (w, 2w, 4w, 8w channels, strides 1, 2, 2, 2,
         1x1 conv + BN shortcuts where the shape changes), global average pool,
         mlp head Linear(8w, 8w), ReLU, Linear(8w, 128), rows L2-normalised;
         convolutions without bias, as in the reference SupCon code
         (SupConResNet18 of bench/pytorch_peer.py, the CPU benchmarks' peer)
  input  B samples x 2 views = 2B images of 32x32x3, view-major, 10 classes
  loss   SupCon L_out, every view an anchor, tau = base tau = 0.1
         (supcon_standard of bench/gpu/pytorch_peer.py), float32 in every mode
  step   zero grads, forward, loss, backward, SGD (lr 0.1, momentum 0.9,
         weight decay 1e-4 on every parameter)

The images are random and already on the device, so no loader or host copy is
timed (ours includes its CPU loader and the upload in each step; run.sh shows
the loader's share). Images per second count samples, not views, as the
Trainer does: images_per_s = B / seconds per step (views per second are twice
that).

Modes: fp32 (TF32 off for convolutions and products: true float32, as our
kernels), tf32 (TF32 tensor cores for both), bf16 (bf16 autocast for the
network), bf16-cl (bf16 autocast with channels_last tensors). cuDNN's
autotuner is on; --warmup steps run before the --steps timed ones (CUDA
events on the GPU, the wall clock on the CPU).

Prints and writes (after each mode) a JSON list with one object per mode:
mode, batch, steps, images_per_s, ms_per_step, loss (last step's), peak_gb
(GPU only), or mode, batch and note ("OOM", "no CUDA", "error: ...").
--device cpu runs the same steps on the CPU, for a smoke test with a tiny
batch. Exit status 0 when at least one mode was timed, 1 otherwise.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import torch

from pytorch_peer import supcon_standard


def _cpu_peer():
    """bench/pytorch_peer.py (the CPU benchmarks' peer), whose SupConResNet18 is the model here."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pytorch_peer.py")
    spec = importlib.util.spec_from_file_location("supcon_cpu_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SupConResNet18 = _cpu_peer().SupConResNet18

MODES = ("fp32", "tf32", "bf16", "bf16-cl")


def time_mode(mode, args, dev):
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = mode != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    b = args.batch
    model = SupConResNet18(3, args.width).to(dev)
    x = torch.randn(2 * b, 3, 32, 32, device=dev)  # view-major: [view 0 of all samples; view 1]
    labels = (torch.arange(b, device=dev) % args.classes).repeat(2)
    if mode == "bf16-cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    bf16 = mode.startswith("bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            z = model(x)
        loss = supcon_standard(z.float(), labels, args.temperature)  # float32 in every mode
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.steps):
            loss = step()
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop) / args.steps
    else:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        ms = 1e3 * (time.perf_counter() - t0) / args.steps
    r = dict(mode=mode, batch=b, steps=args.steps, images_per_s=1e3 * b / ms, ms_per_step=ms, loss=loss.item())
    if cuda:
        r["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256, help="samples per step (x 2 views)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--modes", default="fp32,bf16,bf16-cl", help="comma-separated: " + ",".join(MODES))
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--json")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or args.batch < 2 or args.width < 1 or args.steps < 1 or args.warmup < 0:
        ap.error(f"unknown mode(s) {unknown}" if unknown else "need --batch >= 2, --width >= 1, --steps >= 1, --warmup >= 0")
    results = []

    def report(r):
        print(json.dumps(r), flush=True)
        results.append(r)
        if args.json:  # rewritten after each mode, so a crash keeps what was timed
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print(f"pytorch_train_peer: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        for m in modes:
            report(dict(mode=m, batch=args.batch, note="no CUDA"))
        return 1
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}; ResNet-18 width {args.width}, batch {args.batch} x 2 views, "
          f"{args.steps} steps after {args.warmup}; random images on the device, no loader", flush=True)
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    for m in modes:
        try:
            r = time_mode(m, args, dev)
        except oom:
            r = dict(mode=m, batch=args.batch, note="OOM")
        except RuntimeError as e:
            r = dict(mode=m, batch=args.batch, note="error: " + (str(e).splitlines() or [""])[0][:120])
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        report(r)
    return 0 if any("images_per_s" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
