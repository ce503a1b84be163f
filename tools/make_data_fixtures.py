#!/usr/bin/python3
"""Writes PyTorch reference values of the image operations into tests/data/datasets/.

Independent implementations with torch tensor operations of what
include/supcon/data/image_ops.hpp computes on (C, H, W) float64 images:
  resize_*     F.interpolate(mode='bilinear', align_corners=False), no antialias
  crop_resize  the crop rows 1..5, cols 2..8 resized to 4x3 the same way
  blur         separable Gaussian (sigma 0.8, kernel 5) with reflect padding
  brightness / contrast / saturation  blends as in torchvision's ColorJitter
  hue          RGB -> HSV, hue shifted by 0.2 turn, HSV -> RGB
  gray         0.299 R + 0.587 G + 0.114 B
  normalize    (x - mean) / std per channel

Files: input.npy (3, 7, 9) float64 in [0, 1], and one NAME.npy per output.
Run with Debian's Python: /usr/bin/python3 tools/make_data_fixtures.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "datasets")


def save(name, t):
    np.save(os.path.join(OUT, name + ".npy"), t.detach().cpu().numpy().astype(np.float64))


def resize(x, h, w):
    return F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def gray(x):
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]


def blend(a, b, f):
    return (f * a + (1 - f) * b).clamp(0, 1)


def hue_shift(x, shift):
    r, g, b = x[0], x[1], x[2]
    mx, _ = x.max(0)
    mn, _ = x.min(0)
    d = mx - mn
    safe = torch.where(d > 0, d, torch.ones_like(d))
    h = torch.where(mx == r, ((g - b) / safe) % 6,
                    torch.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = torch.where(d > 0, h, torch.zeros_like(h))
    s = torch.where(mx > 0, d / torch.where(mx > 0, mx, torch.ones_like(mx)), torch.zeros_like(mx))
    v = mx
    h = (h + shift) % 1.0
    # HSV -> RGB via the standard piecewise formula, k = (n + 6 h) mod 6
    def channel(n):
        k = (n + 6 * h) % 6
        return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return torch.stack([channel(5), channel(3), channel(1)])


def blur(x, sigma, k):
    r = k // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    ker = torch.exp(-0.5 * t * t / sigma**2)
    ker = ker / ker.sum()
    c = x.shape[0]
    y = F.pad(x[None], (r, r, 0, 0), mode="reflect")
    y = F.conv2d(y, ker.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode="reflect")
    y = F.conv2d(y, ker.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)
    return y[0]


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(3, 7, 9, generator=g, dtype=torch.float64)
    save("input", x)
    save("resize_4x5", resize(x, 4, 5))
    save("resize_11x13", resize(x, 11, 13))
    save("crop_resize", resize(x[:, 1:6, 2:9], 4, 3))
    save("blur", blur(x, 0.8, 5))
    save("brightness", blend(x, torch.zeros_like(x), 1.3))
    save("contrast", blend(x, gray(x).mean() * torch.ones_like(x), 0.6))
    save("saturation", blend(x, gray(x).expand_as(x), 1.7))
    save("hue", hue_shift(x, 0.2))
    save("gray", gray(x))
    mean = torch.tensor([0.4914, 0.4822, 0.4465], dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010], dtype=x.dtype).view(3, 1, 1)
    save("normalize", (x - mean) / std)


if __name__ == "__main__":
    main()
