#!/usr/bin/python3
"""Writes PyTorch reference values of t-SNE's pieces into tests/data/tsne/.

Independent torch versions of what include/supcon/train/tsne.hpp computes:
  p.npy      the symmetric affinities P (N, N) of x for perplexity 4: each
             row's precision found by bisection on the entropy (here on
             log(beta), a different search from the library's), then
             P = (P_cond + P_cond^T) / (2N)
  cost.npy   KL(P || Q) of the map y, Q from the Student-t kernel
  grad.npy   its gradient with respect to y, by torch autograd
Inputs: x.npy (16, 5) and y.npy (16, 2), float64.
Run with Debian's Python: /usr/bin/python3 tools/make_tsne_fixtures.py
"""
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tsne")
PERPLEXITY = 4.0


def save(name, t):
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(t.detach().cpu().numpy(), dtype=np.float64))


def affinities(x, perplexity):
    n = x.shape[0]
    d2 = torch.cdist(x, x) ** 2
    off = ~torch.eye(n, dtype=torch.bool)
    rows = []
    for i in range(n):
        d = d2[i][off[i]]
        lo, hi = -30.0, 30.0  # log(beta)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            p = torch.softmax(-math.exp(mid) * d, dim=0)
            h = -(p * torch.log(p.clamp_min(1e-300))).sum()
            if h > math.log(perplexity):
                lo = mid
            else:
                hi = mid
        row = torch.zeros(n, dtype=x.dtype)
        row[off[i]] = p
        rows.append(row)
    pc = torch.stack(rows)
    return (pc + pc.T) / (2 * n)


def kl(p, y):
    n = y.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    w = 1.0 / (1.0 + torch.cdist(y, y) ** 2)
    q = w[off] / w[off].sum()
    pp = p[off]
    return (pp * torch.log(pp / q)).sum()


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    # two groups of eight points, so P has structure
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    x[8:] += 3.0
    y = torch.randn(16, 2, generator=g, dtype=torch.float64, requires_grad=True)
    p = affinities(x, PERPLEXITY)
    cost = kl(p, y)
    cost.backward()
    save("x", x)
    save("y", y)
    save("p", p)
    save("cost", cost.reshape(1))
    save("grad", y.grad)


if __name__ == "__main__":
    main()
