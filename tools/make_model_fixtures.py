#!/usr/bin/python3
"""Writes the PyTorch reference dumps of the ResNet models into tests/data/models/.

Run with Debian's Python, which has torch:  /usr/bin/python3 tools/make_model_fixtures.py

The networks are defined here, independently of the C++ code, with the
state_dict names of the widely used SupCon ResNet (encoder.*, head.*, fc.*).
For each case the directory tests/data/models/<case>/ receives

  weights/<key>.npy      the state_dict as float32 (num_batches_tracked left out)
  input.npy              the input batch (float32), (N, C, H, W)
  eval_output.npy        output in evaluation mode (float64)
  eval_features.npy      encoder features in evaluation mode (float64)
  train_output.npy       output in training mode, batch statistics (float64)
  train_dy.npy           a fixed tensor R; the scalar checked is f = sum(output * R)
  train_dx.npy           df/dinput in training mode (float64)
  train_grad/<key>.npy   df/dparameter for a few parameters (float64)
  train_running/<key>.npy a running statistic after the one training forward (float64)

The references are computed in float64 from float32-rounded weights and
inputs, so a C++ run in double that reads the float32 files should agree to
about 1e-12 and a run in float32 to about 1e-5.

param_counts.txt lists, for full-size configurations, the parameter count
PyTorch reports and the FLOPs per image (2 per multiply-accumulate of every
convolution and linear layer, counted with forward hooks).
"""
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "models")


def conv(cin, cout, k, stride=1, padding=0):
    return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=padding, bias=False)


class Basic(nn.Module):
    """Two 3x3 convolutions; identity or 1x1-projection shortcut."""
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = conv(cin, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = projection(cin, planes, stride)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class Bottle(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4."""
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, 4 * planes, 1)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = projection(cin, 4 * planes, stride)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + self.shortcut(x))


def projection(cin, cout, stride):
    if stride == 1 and cin == cout:
        return nn.Sequential()
    return nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


ARCHS = {
    "resnet18": (Basic, [2, 2, 2, 2]),
    "resnet34": (Basic, [3, 4, 6, 3]),
    "resnet50": (Bottle, [3, 4, 6, 3]),
    "resnet101": (Bottle, [3, 4, 23, 3]),
}


class Encoder(nn.Module):
    def __init__(self, arch, in_channels=3, width=64, stem="cifar"):
        super().__init__()
        block, counts = ARCHS[arch]
        if stem == "cifar":
            self.conv1 = conv(in_channels, width, 3, 1, 1)
        else:
            self.conv1 = conv(in_channels, width, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(width)
        self.pool = stem == "imagenet"
        cin = width
        for stage, n in enumerate(counts):
            planes = width << stage
            blocks = []
            for j in range(n):
                stride = 2 if (stage > 0 and j == 0) else 1
                blocks.append(block(cin, planes, stride))
                cin = planes * block.expansion
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))
        self.dim = cin

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.pool:
            h = F.max_pool2d(h, 3, 2, 1)
        for k in range(1, 5):
            h = getattr(self, "layer%d" % k)(h)
        return h.mean(dim=(2, 3))


class SupConNet(nn.Module):
    def __init__(self, encoder, head="mlp", feat_dim=128):
        super().__init__()
        self.encoder = encoder
        d = encoder.dim
        if head == "mlp":
            self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, feat_dim))
        else:
            self.head = nn.Linear(d, feat_dim)

    def forward(self, x):
        return F.normalize(self.head(self.encoder(x)), dim=1)


class CENet(nn.Module):
    def __init__(self, encoder, num_classes):
        super().__init__()
        self.encoder = encoder
        self.fc = nn.Linear(encoder.dim, num_classes)

    def forward(self, x):
        return self.fc(self.encoder(x))


def build(cfg):
    enc = Encoder(cfg["arch"], cfg["in_channels"], cfg["width"], cfg["stem"])
    if cfg["kind"] == "supcon":
        return SupConNet(enc, cfg["head"], cfg["feat_dim"])
    return CENet(enc, cfg["num_classes"])


def randomise(model, gen):
    """Non-trivial batch-norm affine parameters and running statistics, so that
    evaluation and training mode differ and every tensor matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
        # Round everything to float32 so both sides start from identical numbers.
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.float().double())


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)


def dump_case(name, cfg, input_shape, grad_keys, running_key, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(cfg).double()
    randomise(model, gen)
    case = os.path.join(OUT, name)
    shutil.rmtree(case, ignore_errors=True)
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        save(os.path.join(case, "weights", key + ".npy"), t.float().numpy())

    x = torch.randn(input_shape, generator=gen).float().double()
    save(os.path.join(case, "input.npy"), x.float().numpy())

    model.eval()
    with torch.no_grad():
        save(os.path.join(case, "eval_output.npy"), model(x).numpy())
        save(os.path.join(case, "eval_features.npy"), model.encoder(x).numpy())

    model.train()
    xg = x.clone().requires_grad_(True)
    y = model(xg)
    r = torch.randn(y.shape, generator=gen).float().double()
    (y * r).sum().backward()
    save(os.path.join(case, "train_output.npy"), y.detach().numpy())
    save(os.path.join(case, "train_dy.npy"), r.numpy())
    save(os.path.join(case, "train_dx.npy"), xg.grad.numpy())
    params = dict(model.named_parameters())
    for key in grad_keys:
        save(os.path.join(case, "train_grad", key + ".npy"), params[key].grad.numpy())
    save(os.path.join(case, "train_running", running_key + ".npy"),
         model.state_dict()[running_key].numpy())


def count(cfg, image_size):
    model = build(cfg)
    params = sum(p.numel() for p in model.parameters())
    flops = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            per_out = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            flops[0] += 2 * per_out * out[0].numel()
        elif isinstance(m, nn.Linear):
            flops[0] += 2 * m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, cfg["in_channels"], image_size, image_size))
    return params, flops[0]


def main():
    dump_case("resnet18_supcon_mlp",
              dict(arch="resnet18", in_channels=3, width=4, stem="cifar", kind="supcon",
                   head="mlp", feat_dim=8),
              (4, 3, 16, 16),
              ["encoder.conv1.weight", "encoder.layer2.0.shortcut.0.weight",
               "encoder.layer4.1.bn2.weight", "head.0.weight", "head.2.bias"],
              "encoder.layer3.0.bn1.running_var", seed=1)
    dump_case("resnet50_ce_imagenet",
              dict(arch="resnet50", in_channels=1, width=2, stem="imagenet", kind="ce",
                   num_classes=5),
              (8, 1, 32, 32),
              ["encoder.conv1.weight", "encoder.layer1.0.conv3.weight",
               "encoder.layer3.2.bn3.bias", "fc.weight"],
              "encoder.bn1.running_mean", seed=2)
    dump_case("resnet18_supcon_linear",
              dict(arch="resnet18", in_channels=1, width=2, stem="cifar", kind="supcon",
                   head="linear", feat_dim=4),
              (4, 1, 16, 16),
              ["head.weight", "encoder.layer1.1.conv2.weight"],
              "encoder.layer1.0.bn2.running_mean", seed=3)

    rows = []
    base = dict(in_channels=3, width=64, stem="cifar")
    for arch in ARCHS:
        for kind, extra in [("supcon", dict(head="mlp", feat_dim=128, num_classes=0)),
                            ("supcon", dict(head="linear", feat_dim=128, num_classes=0)),
                            ("ce", dict(head="none", feat_dim=0, num_classes=10))]:
            cfg = dict(base, arch=arch, kind=kind, **extra)
            rows.append((cfg, 32))
    rows.append((dict(arch="resnet18", in_channels=1, width=16, stem="imagenet", kind="ce",
                      head="none", feat_dim=0, num_classes=10), 64))
    rows.append((dict(arch="resnet50", in_channels=3, width=64, stem="imagenet", kind="ce",
                      head="none", feat_dim=0, num_classes=1000), 224))
    with open(os.path.join(OUT, "param_counts.txt"), "w") as f:
        f.write("# arch kind head feat_dim num_classes in_channels width stem image_size"
                " params flops_per_image\n")
        for cfg, size in rows:
            params, flops = count(cfg, size)
            f.write("%s %s %s %d %d %d %d %s %d %d %d\n" % (
                cfg["arch"], cfg["kind"], cfg["head"], cfg["feat_dim"], cfg["num_classes"],
                cfg["in_channels"], cfg["width"], cfg["stem"], size, params, flops))


if __name__ == "__main__":
    main()
