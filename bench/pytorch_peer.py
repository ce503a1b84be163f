#!/usr/bin/python3
"""The PyTorch side of bench/compare.py: the same workloads as bench_loss and
bench_train, written the standard PyTorch way (autograd, the SupCon loss with
its N x N matrices as in the widely used reference code).

Run with Debian's python3-torch and OpenBLAS (libopenblas0-pthread), 2 threads,
huge pages for malloc and OpenBLAS's own CPU detection:

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \\
      OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/pytorch_peer.py --json out.json

Prints one JSON object per workload: name, seconds (median of --repeat runs
after one warm-up; for a training step, of --step-repeat steps after two
warm-up steps) and items (images, for the per-image rates).
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn


def supcon_loss(features, labels, temperature=0.1, base_temperature=0.1, contrast_mode="all"):
    """features (B, V, D), labels (B,): the SupCon loss as the reference code forms it."""
    b, v, _ = features.shape
    same = torch.eq(labels.view(-1, 1), labels.view(1, -1)).float()
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)  # (V B, D), view-major
    anchor, anchors_per_sample = (contrast, v) if contrast_mode == "all" else (features[:, 0], 1)
    logits = anchor @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = same.repeat(anchors_per_sample, v)
    not_self = torch.scatter(torch.ones_like(mask), 1,
                             torch.arange(b * anchors_per_sample).view(-1, 1), 0)
    mask = mask * not_self
    exp_logits = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchors_per_sample, b).mean()


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = Fn.relu(self.bn1(self.conv1(x)))
        return Fn.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SupConResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem, mlp head to 128, unit-length output."""

    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for i, w in enumerate([width, 2 * width, 4 * width, 8 * width]):
            layers += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, 128))

    def forward(self, x):
        h = self.layers(Fn.relu(self.bn1(self.conv1(x))))
        return Fn.normalize(self.head(torch.flatten(Fn.adaptive_avg_pool2d(h, 1), 1)), dim=1)


def timed(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def unit_rows(n, d):
    f = torch.randn(n, d)
    return f / f.norm(dim=1, keepdim=True)


def loss_workloads(args, out):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out(dict(name="Gemm/2048", seconds=timed(lambda: a @ b, args.repeat)))
    n = 512
    while n <= args.max_n:
        bsz = n // 2
        labels = torch.arange(bsz) % 100
        rows = unit_rows(n, 128)
        feats = torch.stack([rows[:bsz], rows[bsz:]], dim=1).requires_grad_()  # (B, 2, D)
        for mode, name in (("all", "L_out"), ("one", "anchors_one")):
            def step():
                feats.grad = None
                supcon_loss(feats, labels, contrast_mode=mode).backward()
            out(dict(name=f"SupCon/{name}/{n}", seconds=timed(step, args.repeat)))
        n *= 2
    out(dict(name="SupCon/peak_rss_mib", seconds=0, rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


# (net, in, out, kernel, stride, input size): as bench/train.bench.cpp
CONVS = [("resnet18", 3, 64, 3, 1, 32), ("resnet18", 64, 64, 3, 1, 32), ("resnet18", 64, 128, 3, 2, 32),
         ("resnet18", 128, 128, 3, 1, 16), ("resnet18", 128, 256, 3, 2, 16), ("resnet18", 256, 256, 3, 1, 8),
         ("resnet18", 256, 512, 3, 2, 8), ("resnet18", 512, 512, 3, 1, 4), ("resnet18", 64, 128, 1, 2, 32),
         ("demo", 1, 16, 3, 1, 28), ("demo", 16, 16, 3, 1, 28), ("demo", 16, 32, 3, 2, 28),
         ("demo", 32, 32, 3, 1, 14), ("demo", 64, 64, 3, 1, 7), ("demo", 128, 128, 3, 1, 4),
         ("demo", 32, 64, 3, 2, 14), ("demo", 64, 128, 3, 2, 7), ("demo", 16, 32, 1, 2, 28)]


def layer_workloads(args, out):
    images = 2 * args.batch
    for net, c, oc, k, s, hw in CONVS:
        name = f"{net}/conv{c}x{oc}k{k}s{s}@{hw}"
        conv = nn.Conv2d(c, oc, k, s, k // 2, bias=False)
        x = torch.randn(images, c, hw, hw, requires_grad=True)
        with torch.no_grad():
            out(dict(name=name + "/forward", seconds=timed(lambda: conv(x), args.repeat), items=images))
        y = conv(x)
        dy = torch.randn_like(y)
        back = lambda: torch.autograd.grad(y, (x, conv.weight), dy, retain_graph=True)
        out(dict(name=name + "/backward", seconds=timed(back, args.repeat), items=images))
        if k == 3:
            bn = nn.BatchNorm2d(oc)
            ohw = y.shape[-1]  # the convolution's output size
            xb = torch.randn(images, oc, ohw, ohw, requires_grad=True)
            dyb = torch.randn_like(xb)
            both = lambda: torch.autograd.grad(bn(xb), (xb, bn.weight, bn.bias), dyb)
            out(dict(name=f"{net}/bn{oc}@{ohw}/forward_backward", seconds=timed(both, args.repeat), items=images))


def step_workloads(args, out):
    for net, cin, width, hw in (("resnet18", 3, 64, 32), ("demo", 1, 16, 28)):
        if net not in args.nets.split(","):
            continue
        model = SupConResNet18(cin, width)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        b = args.batch
        x = torch.randn(2 * b, cin, hw, hw)
        labels = torch.arange(b) % 10

        def step():
            opt.zero_grad()
            z = model(x)
            supcon_loss(torch.stack([z[:b], z[b:]], dim=1), labels).backward()
            opt.step()
        # the first steps also fill the allocator's caches and oneDNN's primitive caches
        out(dict(name=f"{net}/supcon_step", seconds=timed(step, args.step_repeat, warmup=2), items=2 * b))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="loss,layers,step", help="comma-separated: loss, layers, step")
    p.add_argument("--max-n", type=int, default=4096, help="largest N (rows) of the loss")
    p.add_argument("--batch", type=int, default=8, help="samples per step (two views each)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--step-repeat", type=int, default=5, help="timed training steps per network")
    p.add_argument("--nets", default="resnet18,demo", help="comma-separated networks of the step workload")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []

    def out(r):
        results.append(r)
        print(json.dumps(r), flush=True)
    todo = args.workloads.split(",")
    for w, fn in (("loss", loss_workloads), ("layers", layer_workloads), ("step", step_workloads)):
        if w in todo:
            fn(args, out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=args.threads, results=results), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
