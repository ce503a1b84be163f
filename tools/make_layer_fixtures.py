#!/usr/bin/env python3
"""Writes the PyTorch reference values that tests/layers_pytorch.test.cpp
compares the C++ layers against, into tests/data/layers/.

Every case stores its inputs, parameters, a given output gradient dy, and
what PyTorch computes from them: the output y and the gradients dx, dweight,
dbias (autograd of <y, dy>). Batch norm cases also store the running
statistics after one and two training steps and an evaluation step.
All arrays are float64. File names: <case>_<tensor>.npy.

Run with a Python that has torch and numpy:  /usr/bin/python3 tools/make_layer_fixtures.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "layers")
torch.manual_seed(20200707)
torch.set_default_dtype(torch.float64)


def save(case, **arrays):
    for name, a in arrays.items():
        if isinstance(a, torch.Tensor):
            a = a.detach().numpy()
        np.save(os.path.join(OUT, f"{case}_{name}.npy"), np.ascontiguousarray(a, dtype=np.float64))


def leaf(*shape):
    return torch.randn(*shape).requires_grad_(True)


def backward_of(y, dy, *leaves):
    y.backward(dy)
    return [t.grad.detach().clone() for t in leaves]


def linear():
    x, w, b = leaf(3, 5), leaf(4, 5), leaf(4)
    y = F.linear(x, w, b)
    dy = torch.randn_like(y)
    dx, dw, db = backward_of(y, dy, x, w, b)
    save("linear", x=x, weight=w, bias=b, y=y, dy=dy, dx=dx, dweight=dw, dbias=db)


def conv(case, x_shape, w_shape, stride, padding, bias):
    x, w = leaf(*x_shape), leaf(*w_shape)
    b = leaf(w_shape[0]) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    dy = torch.randn_like(y)
    leaves = [x, w] + ([b] if bias else [])
    grads = backward_of(y, dy, *leaves)
    arrays = dict(x=x, weight=w, y=y, dy=dy, dx=grads[0], dweight=grads[1])
    if bias:
        arrays.update(bias=b, dbias=grads[2])
    save(case, **arrays)


def batchnorm(case, module, shape):
    c = shape[1]
    bn = module(c)  # eps 1e-5, momentum 0.1, affine
    with torch.no_grad():
        bn.weight.copy_(1 + 0.5 * torch.randn(c))
        bn.bias.copy_(0.5 * torch.randn(c))
    arrays = dict(weight=bn.weight.detach().clone(), bias=bn.bias.detach().clone())
    bn.train()
    # Step 1: training, with gradients.
    x1 = (2 * torch.randn(*shape) + 1).requires_grad_(True)
    y1 = bn(x1)
    dy1 = torch.randn_like(y1)
    y1.backward(dy1)
    arrays.update(x1=x1, y1=y1, dy1=dy1, dx1=x1.grad, dweight1=bn.weight.grad.clone(),
                  dbias1=bn.bias.grad.clone(), running_mean1=bn.running_mean.clone(),
                  running_var1=bn.running_var.clone())
    # Step 2: training again, the running statistics move on.
    x2 = 3 * torch.randn(*shape) - 1
    y2 = bn(x2)
    arrays.update(x2=x2, y2=y2, running_mean2=bn.running_mean.clone(),
                  running_var2=bn.running_var.clone())
    # Step 3: evaluation with the running statistics, with gradients.
    bn.eval()
    bn.weight.grad = None
    bn.bias.grad = None
    x3 = torch.randn(*shape).requires_grad_(True)
    y3 = bn(x3)
    dy3 = torch.randn_like(y3)
    y3.backward(dy3)
    arrays.update(x3=x3, y3=y3, dy3=dy3, dx3=x3.grad, dweight3=bn.weight.grad,
                  dbias3=bn.bias.grad)
    save(case, **arrays)


def pool(case, fn, x_shape):
    x = leaf(*x_shape)
    y = fn(x)
    dy = torch.randn_like(y)
    (dx,) = backward_of(y, dy, x)
    save(case, x=x, y=y, dy=dy, dx=dx)


def l2_normalize():
    x = torch.randn(5, 6)
    x[2] = 0.0           # a zero row: y = 0, dx = dy / eps
    x[3] *= 1e-14        # a row shorter than eps: divided by eps, not its norm
    x.requires_grad_(True)
    y = F.normalize(x, dim=1, eps=1e-12)
    dy = torch.randn_like(y)
    (dx,) = backward_of(y, dy, x)
    save("l2normalize", x=x, y=y, dy=dy, dx=dx)


def main():
    os.makedirs(OUT, exist_ok=True)
    linear()
    conv("conv_k3s1p1_bias", (2, 3, 6, 5), (4, 3, 3, 3), 1, 1, True)
    conv("conv_k3s2p1", (2, 3, 7, 6), (4, 3, 3, 3), 2, 1, False)
    conv("conv_k1s2p0", (2, 3, 5, 7), (5, 3, 1, 1), 2, 0, False)
    conv("conv_k3s2p0_bias", (1, 2, 7, 5), (3, 2, 3, 3), 2, 0, True)
    batchnorm("bn2d", torch.nn.BatchNorm2d, (4, 3, 3, 2))
    batchnorm("bn1d", torch.nn.BatchNorm1d, (6, 4))
    pool("maxpool_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), (2, 2, 7, 6))
    pool("maxpool_k2s2p0", lambda x: F.max_pool2d(x, 2, 2, 0), (2, 2, 5, 4))
    pool("avgpool_k3s2p1", lambda x: F.avg_pool2d(x, 3, 2, 1), (2, 2, 7, 6))
    pool("avgpool_k2s1p1", lambda x: F.avg_pool2d(x, 2, 1, 1), (1, 2, 4, 3))
    pool("globalavgpool", lambda x: x.mean(dim=(2, 3)), (2, 3, 4, 5))
    pool("relu", F.relu, (3, 4, 2))
    l2_normalize()


if __name__ == "__main__":
    main()
