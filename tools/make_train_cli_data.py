#!/usr/bin/env python3
"""Writes the tiny IDX data set of the training CLI tests into tests/data/train/.

Four classes of 8x8 grayscale images: a bright quadrant (top-left, top-right,
bottom-left, bottom-right) on a dark background, with pixel noise. 64 training
and 32 test images, in the MNIST file layout (uncompressed), so that
`supcon train --data mnist --data-dir tests/data/train` runs in about a second.
Also writes train_bad/ with a truncated image file, for the error tests.
Needs only the standard library.
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "train")


def images(n, seed):
    rnd = random.Random(seed)
    pixels, labels = bytearray(), bytearray()
    for i in range(n):
        c = i % 4
        for y in range(8):
            for x in range(8):
                bright = (y < 4) == (c < 2) and (x < 4) == (c % 2 == 0)
                pixels.append((180 if bright else 30) + rnd.randrange(60))
        labels.append(c)
    return pixels, labels


def write(path, magic, dims, payload):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(payload)


def main():
    os.makedirs(OUT, exist_ok=True)
    bad = os.path.join(OUT, "bad")
    os.makedirs(bad, exist_ok=True)
    for prefix, n, seed in (("train", 64, 1), ("t10k", 32, 2)):
        px, lb = images(n, seed)
        write(os.path.join(OUT, prefix + "-images-idx3-ubyte"), 2051, (n, 8, 8), px)
        write(os.path.join(OUT, prefix + "-labels-idx1-ubyte"), 2049, (n,), lb)
        # The damaged copy: image data cut short, labels intact.
        write(os.path.join(bad, prefix + "-images-idx3-ubyte"), 2051, (n, 8, 8), px[: len(px) // 2])
        write(os.path.join(bad, prefix + "-labels-idx1-ubyte"), 2049, (n,), lb)
    with open(os.path.join(OUT, "not_a_checkpoint.ckpt"), "wb") as f:
        f.write(b"this is not a checkpoint\n")


if __name__ == "__main__":
    main()
