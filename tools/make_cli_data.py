#!/usr/bin/python3
"""Writes the small input files the `supcon` CLI tests run on, into tests/data/cli/.

Good inputs: features (4 samples, 2 views, 3 dims) in float32 and float64, a
2-D (4, 3) one-view file, labels (4,) int64 and a (4, 4) 0/1 mask. Bad inputs,
one defect each: a NaN feature, 3 labels for 4 samples, float labels, a mask
entry of 2, a text file named .npy, and a .npy whose data is cut short.

Run with Debian's Python: /usr/bin/python3 tools/make_cli_data.py
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "cli")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2020)
    f = rng.standard_normal((4, 2, 3))
    f /= np.linalg.norm(f, axis=2, keepdims=True)
    np.save(os.path.join(OUT, "features.npy"), f.astype(np.float32))
    np.save(os.path.join(OUT, "features_f64.npy"), f)
    np.save(os.path.join(OUT, "features_2d.npy"), f[:, 0, :].astype(np.float32))
    np.save(os.path.join(OUT, "labels.npy"), np.array([0, 1, 0, 1], dtype=np.int64))
    mask = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=np.float64)
    np.save(os.path.join(OUT, "mask.npy"), mask)

    bad = f.astype(np.float32).copy()
    bad[2, 1, 0] = np.nan
    np.save(os.path.join(OUT, "features_nan.npy"), bad)
    np.save(os.path.join(OUT, "labels_short.npy"), np.array([0, 1, 0], dtype=np.int64))
    np.save(os.path.join(OUT, "labels_float.npy"), np.array([0.0, 1.0, 0.0, 1.0]))
    bad_mask = mask.copy()
    bad_mask[0, 3] = 2
    np.save(os.path.join(OUT, "mask_bad.npy"), bad_mask)
    with open(os.path.join(OUT, "not_npy.npy"), "w") as fh:
        fh.write("this is a text file, not a NumPy array\n")
    path = os.path.join(OUT, "truncated.npy")
    np.save(path, f.astype(np.float32))
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data[:-10])


if __name__ == "__main__":
    main()
