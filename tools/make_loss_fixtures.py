#!/usr/bin/python3
"""Writes the PyTorch reference values of the losses into tests/data/losses/.

An independent PyTorch implementation of the SupCon loss with the semantics of
the widely used PyTorch code (features of shape (bsz, views, dim), labels or a
(bsz, bsz) mask, contrast modes 'all' and 'one', loss scaled by
temperature / base_temperature, anchors without positives counted as 0) and the
options of the paper's TensorFlow code (L_in, denominator modes, positives cap),
plus cross-entropy with label smoothing. Gradients come from autograd.

Layout note: features are stored as the PyTorch code takes them, (bsz, views,
dim); the C++ library wants view-major rows, row v * bsz + b = features[b, v].
The gradient is stored in the same (bsz, views, dim) layout, per_anchor in
anchor-row order (view-major, as the PyTorch code orders its anchors).

Files, for a case NAME listed in cases.txt:
  NAME_features.npy (bsz, views, dim) float64
  NAME_labels.npy   (bsz,) int64        when has_labels
  NAME_mask.npy     (bsz, bsz) float64  when has_mask (neither: SimCLR)
  NAME_loss.npy     (1,) float64
  NAME_grad.npy     (bsz, views, dim) float64
  NAME_per_anchor.npy (anchors,) float64
cases.txt has one case per line (after '#' comment lines), fields separated by
single spaces:
  name variant temperature base_temperature contrast_mode denominator
  positives_cap no_positives has_labels has_mask
with variant 'out' (L_out) or 'in' (L_in), contrast_mode all|one, denominator
all|one_positive|only_negatives, positives_cap -1 for none, no_positives
count_zero|exclude, has_labels and has_mask 0 or 1.
Cross-entropy cases are in ce_cases.txt: 'name label_smoothing' per line, with
NAME_logits.npy (n, c), NAME_labels.npy (n,) int64, NAME_loss.npy (1,),
NAME_grad.npy (n, c).

Run from anywhere with Debian's Python: /usr/bin/python3 tools/make_loss_fixtures.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "losses")


def supcon_torch(features, labels=None, mask=None, temperature=0.07, base_temperature=0.07,
                 contrast_mode="all", variant="out", denominator="all", positives_cap=-1,
                 no_positives="count_zero"):
    """Returns (loss, per_anchor) for features (bsz, views, dim)."""
    bsz, views, _ = features.shape
    if labels is None and mask is None:
        mask = torch.eye(bsz, dtype=torch.float64)
    elif labels is not None:
        mask = (labels.view(-1, 1) == labels.view(1, -1)).to(torch.float64)
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)  # (views * bsz, dim)
    anchor, anchor_views = (contrast, views) if contrast_mode == "all" else (features[:, 0], 1)
    n_anchor, n = anchor.shape[0], contrast.shape[0]

    logits = anchor @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()

    not_self = torch.ones(n_anchor, n, dtype=torch.float64)
    not_self[torch.arange(n_anchor), torch.arange(n_anchor)] = 0
    paired = mask.repeat(anchor_views, views) * not_self
    negative = (1 - mask).repeat(anchor_views, views) * not_self
    if positives_cap >= 0:
        # keep the own sample and the first cap / views other paired samples
        others = mask * (1 - torch.eye(bsz, dtype=torch.float64))
        keep = others * (torch.cumsum(others, dim=1) <= positives_cap // views) + mask * torch.eye(bsz)
        positive = keep.repeat(anchor_views, views) * not_self
    else:
        positive = paired

    e = torch.exp(logits)
    if denominator == "all":
        den = (e * (positive + negative)).sum(1, keepdim=True)
    elif denominator == "one_positive":
        den = e + (e * negative).sum(1, keepdim=True)
    else:
        den = (e * negative).sum(1, keepdim=True)
    log_prob = logits - torch.log(den)

    n_pos = positive.sum(1)
    has_pos = n_pos > 0
    safe_n = torch.where(has_pos, n_pos, torch.ones_like(n_pos))
    if variant == "out":
        per = -(positive * log_prob).sum(1) / safe_n
    else:
        masked = torch.where(positive > 0, log_prob, torch.full_like(log_prob, -1e300))
        masked = torch.where(has_pos.view(-1, 1), masked, torch.zeros_like(masked))
        per = -(torch.logsumexp(masked, dim=1) - torch.log(safe_n))
        per = torch.where(has_pos, per, torch.zeros_like(per))
    per = per * (temperature / base_temperature)
    if no_positives == "count_zero":
        loss = per.mean()
    else:
        loss = per.sum() / max(int(has_pos.sum()), 1)
    return loss, per


def save(name, **arrays):
    for key, value in arrays.items():
        np.save(os.path.join(OUT, f"{name}_{key}.npy"), value)


def supcon_case(index, name, bsz, views, dim, seed, labels=None, mask=None, **opt):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(bsz, views, dim, generator=g, dtype=torch.float64)
    f = f / f.norm(dim=2, keepdim=True)
    f.requires_grad_(True)
    lab = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    msk = None if mask is None else torch.tensor(mask, dtype=torch.float64)
    loss, per = supcon_torch(f, lab, msk, **opt)
    loss.backward()
    arrays = dict(features=f.detach().numpy(), loss=np.array([loss.item()]),
                  grad=f.grad.numpy(), per_anchor=per.detach().numpy())
    if lab is not None:
        arrays["labels"] = lab.numpy()
    if msk is not None:
        arrays["mask"] = msk.numpy()
    save(name, **arrays)
    o = dict(temperature=0.07, base_temperature=0.07, contrast_mode="all", variant="out",
             denominator="all", positives_cap=-1, no_positives="count_zero")
    o.update(opt)
    index.append(f"{name} {o['variant']} {o['temperature']!r} {o['base_temperature']!r} "
                 f"{o['contrast_mode']} {o['denominator']} {o['positives_cap']} {o['no_positives']} "
                 f"{int(lab is not None)} {int(msk is not None)}")


def ce_case(index, name, n, c, smoothing, seed):
    g = torch.Generator().manual_seed(seed)
    z = (3 * torch.randn(n, c, generator=g, dtype=torch.float64)).requires_grad_(True)
    y = torch.randint(0, c, (n,), generator=g)
    loss = torch.nn.functional.cross_entropy(z, y, label_smoothing=smoothing)
    loss.backward()
    save(name, logits=z.detach().numpy(), labels=y.numpy(), loss=np.array([loss.item()]),
         grad=z.grad.numpy())
    index.append(f"{name} {smoothing!r}")


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    lab8 = [0, 1, 0, 2, 1, 0, 3, 2]
    supcon_case(cases, "simclr_v2", 6, 2, 5, 1, temperature=0.5, base_temperature=0.5)
    supcon_case(cases, "supcon_v2", 8, 2, 6, 2, lab8, temperature=0.1, base_temperature=0.07)
    supcon_case(cases, "supcon_v1_singletons", 8, 1, 6, 3, lab8, temperature=0.2)
    supcon_case(cases, "supcon_v1_exclude", 8, 1, 6, 3, lab8, temperature=0.2,
                no_positives="exclude")
    supcon_case(cases, "supcon_v3_one", 6, 3, 4, 4, [0, 1, 1, 0, 2, 1], contrast_mode="one",
                temperature=0.3, base_temperature=0.1)
    supcon_case(cases, "supcon_v3_in", 6, 3, 4, 5, [0, 1, 1, 0, 2, 1], variant="in",
                temperature=0.25)
    supcon_case(cases, "simclr_v3_one", 5, 3, 4, 6, contrast_mode="one", temperature=0.15)
    asym = [[1, 1, 0, 0, 1], [0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]]
    supcon_case(cases, "mask_asym_v2", 5, 2, 4, 7, mask=asym, temperature=0.2)
    supcon_case(cases, "mask_asym_in", 5, 2, 4, 8, mask=asym, variant="in", temperature=0.2,
                no_positives="exclude")
    supcon_case(cases, "den_one_positive", 8, 2, 5, 9, lab8, denominator="one_positive",
                temperature=0.2)
    supcon_case(cases, "den_one_positive_in", 8, 2, 5, 10, lab8, denominator="one_positive",
                variant="in", temperature=0.2)
    supcon_case(cases, "den_only_negatives", 8, 2, 5, 11, lab8, denominator="only_negatives",
                temperature=0.2)
    supcon_case(cases, "den_only_negatives_in", 8, 2, 5, 12, lab8,
                denominator="only_negatives", variant="in", temperature=0.2)
    lab_big = [0, 0, 1, 0, 1, 0, 1, 0]
    supcon_case(cases, "cap_v2", 8, 2, 5, 13, lab_big, positives_cap=2, temperature=0.2)
    supcon_case(cases, "cap_v2_in_one_positive", 8, 2, 5, 14, lab_big, positives_cap=4,
                variant="in", denominator="one_positive", temperature=0.2)
    supcon_case(cases, "cap_zero_v3_one", 6, 3, 4, 15, [0, 0, 0, 1, 1, 1], positives_cap=0,
                contrast_mode="one", temperature=0.2)
    header = ("# name variant temperature base_temperature contrast_mode denominator "
              "positives_cap no_positives has_labels has_mask\n")
    with open(os.path.join(OUT, "cases.txt"), "w") as fh:
        fh.write(header + "\n".join(cases) + "\n")

    ce = []
    ce_case(ce, "ce_plain", 6, 4, 0.0, 21)
    ce_case(ce, "ce_smooth", 7, 5, 0.1, 22)
    ce_case(ce, "ce_heavy_smooth", 4, 3, 0.6, 23)
    with open(os.path.join(OUT, "ce_cases.txt"), "w") as fh:
        fh.write("# name label_smoothing\n" + "\n".join(ce) + "\n")


if __name__ == "__main__":
    main()
