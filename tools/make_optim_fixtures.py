#!/usr/bin/env python3
"""Reference trajectories of the optimizers and schedules, from PyTorch.

Writes tests/data/optim/*.npy, read by tests/optim_*.test.cpp:

  init_p0.npy (3, 4), init_p1.npy (5,)      starting values of two parameters
  grads_p0.npy (S, 3, 4), grads_p1.npy (S, 5) the gradient given at each step
  lrs.npy (S,)                              the learning rate of each step
  <case>_p0.npy (S+1, 3, 4), <case>_p1.npy (S+1, 5)
                                            values before the first step and after each step
  sched_cosine.npy, sched_multistep.npy     learning rates of torch's schedulers, per epoch

Parameter p1 plays a bias: in the cases named *_groups (and in LARS) it is
excluded from weight decay, through a second torch param group. SGD and AdamW
are torch.optim's own; LARS is written below from its update rule (docs/optim.md).
Everything is float64. Run with Debian's Python: /usr/bin/python3 tools/make_optim_fixtures.py
"""
import os

import numpy as np
import torch

STEPS = 6
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "optim")


class Lars(torch.optim.Optimizer):
    """LARS with the SimCLR trust ratio; groups with decay=False skip decay and adaptation."""

    def __init__(self, params, lr, momentum, weight_decay, trust_coefficient):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, decay=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for w in group["params"]:
                g = w.grad.clone()
                ratio = 1.0
                if group["decay"]:
                    g = g + group["weight_decay"] * w
                    w_norm, g_norm = torch.linalg.norm(w), torch.linalg.norm(g)
                    if w_norm > 0 and g_norm > 0:
                        ratio = (group["trust_coefficient"] * w_norm / g_norm).item()
                state = self.state[w]
                if "v" not in state:
                    state["v"] = torch.zeros_like(w)
                v = state["v"]
                v.mul_(group["momentum"]).add_(g, alpha=group["lr"] * ratio)
                w.sub_(v)


def make_params(gen):
    p0 = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    p1 = torch.randn(5, generator=gen, dtype=torch.float64)
    return p0, p1


def run(case, init, grads, lrs, make_opt, groups):
    p0 = init[0].clone().requires_grad_(True)
    p1 = init[1].clone().requires_grad_(True)
    opt = make_opt(groups(p0, p1))
    traj0, traj1 = [p0.detach().clone()], [p1.detach().clone()]
    for s in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = float(lrs[s])
        p0.grad = grads[0][s].clone()
        p1.grad = grads[1][s].clone()
        opt.step()
        traj0.append(p0.detach().clone())
        traj1.append(p1.detach().clone())
    np.save(os.path.join(OUT, case + "_p0.npy"), torch.stack(traj0).numpy())
    np.save(os.path.join(OUT, case + "_p1.npy"), torch.stack(traj1).numpy())


def one_group(p0, p1):
    return [p0, p1]


def two_groups(p0, p1):
    # p1 is not decayed (and, for LARS, not adapted).
    return [{"params": [p0]}, {"params": [p1], "weight_decay": 0.0, "decay": False}]


def schedules():
    # One dummy parameter; record the rate used in each epoch 0..E-1 and at E.
    def record(make_sched, epochs, lr):
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=lr)
        sched = make_sched(opt)
        out = []
        for _ in range(epochs + 1):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return np.array(out, dtype=np.float64)

    np.save(os.path.join(OUT, "sched_cosine.npy"),
            record(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.002),
                   20, 0.5))
    np.save(os.path.join(OUT, "sched_multistep.npy"),
            record(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[5, 12], gamma=0.2),
                   16, 0.5))


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20200611)
    init = make_params(gen)
    grads = (torch.randn(STEPS, 3, 4, generator=gen, dtype=torch.float64),
             torch.randn(STEPS, 5, generator=gen, dtype=torch.float64))
    lrs = np.array([0.1, 0.1, 0.05, 0.05, 0.2, 0.02], dtype=np.float64)
    np.save(os.path.join(OUT, "init_p0.npy"), init[0].numpy())
    np.save(os.path.join(OUT, "init_p1.npy"), init[1].numpy())
    np.save(os.path.join(OUT, "grads_p0.npy"), grads[0].numpy())
    np.save(os.path.join(OUT, "grads_p1.npy"), grads[1].numpy())
    np.save(os.path.join(OUT, "lrs.npy"), lrs)

    sgd = torch.optim.SGD
    run("sgd_plain", init, grads, lrs, lambda p: sgd(p, lr=0.1), one_group)
    run("sgd_momentum", init, grads, lrs,
        lambda p: sgd(p, lr=0.1, momentum=0.9, dampening=0.25, weight_decay=0.01), one_group)
    run("sgd_nesterov", init, grads, lrs,
        lambda p: sgd(p, lr=0.1, momentum=0.8, nesterov=True, weight_decay=5e-3), one_group)
    run("sgd_groups", init, grads, lrs,
        lambda p: sgd(p, lr=0.1, momentum=0.9, weight_decay=0.1), two_groups)
    adamw = torch.optim.AdamW
    run("adamw", init, grads, lrs, lambda p: adamw(p, lr=0.1), one_group)
    run("adamw_groups", init, grads, lrs,
        lambda p: adamw(p, lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3), two_groups)
    run("lars", init, grads, lrs,
        lambda p: Lars(p, lr=0.1, momentum=0.9, weight_decay=0.05, trust_coefficient=0.02),
        two_groups)
    schedules()


if __name__ == "__main__":
    main()
