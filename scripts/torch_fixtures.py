#!/usr/bin/env python3
"""Writes golden optimizer trajectories from torch.optim (float32, CPU) for the tests.

Each fixture file tests/fixtures/<name>.safetensors holds, for every tensor T:
  T/init          parameters before the first step
  T/grad/K        gradient fed at step K (1-based)
  T/param/K       parameters after step K
and metadata: optimizer kind, its hyperparameters, the learning rate of every step
(halved half-way, to test changing rates), the step count and the torch version.

Usage: python3 scripts/torch_fixtures.py [output_dir]   (needs torch, safetensors, numpy)
"""
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

STEPS = 8
SEED = 20261204

# Parameters at the edges of f32: zero, tiny, huge, the f16 maximum, near f32 max, and
# subnormals (which GPUs may flush to zero).
EXTREME_PARAMS = [0.0, 1e-30, -1e-30, 1e30, -1e30, 65504.0, -65504.0, 3e38, -3e38,
                  1e-40, -1e-40, 1.4e-45, 1.0, -2.0, 0.5, 7.0]
# Per-element gradient scale of the extreme tensor: ordinary, zero, huge (g*g overflows),
# subnormal (where the parameter is 1, so a flushed gradient changes nothing visible).
EXTREME_GRAD_SCALE = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                      1.0, 1.0, 0.0, 1e-40, 1e30, 0.0, 1.0]

SGD_CASES = {
    "sgd_plain": dict(lr=0.1),
    "sgd_weight_decay": dict(lr=0.1, weight_decay=0.1),
    "sgd_momentum": dict(lr=0.1, momentum=0.9),
    "sgd_dampening": dict(lr=0.1, momentum=0.9, dampening=0.5),
    "sgd_nesterov": dict(lr=0.1, momentum=0.9, nesterov=True),
    "sgd_maximize": dict(lr=0.1, momentum=0.5, maximize=True),
    "sgd_all": dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True, maximize=True),
}
ADAM_CASES = {
    "adam_default": dict(lr=0.01),
    "adam_weight_decay": dict(lr=0.01, weight_decay=0.1),
    "adam_amsgrad": dict(lr=0.01, amsgrad=True),
    "adam_maximize": dict(lr=0.01, maximize=True),
    "adam_all": dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05,
                     amsgrad=True, maximize=True),
    "adamw_default": dict(lr=0.01),
    "adamw_amsgrad": dict(lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw_maximize": dict(lr=0.01, maximize=True),
}


def metadata(kind, opt):
    group = opt.param_groups[0]
    meta = {"optimizer": kind, "torch": torch.__version__, "steps": str(STEPS)}
    if kind == "sgd":
        keys = ["momentum", "dampening", "weight_decay", "nesterov", "maximize"]
    else:
        keys = ["eps", "weight_decay", "amsgrad", "maximize"]
        meta["beta1"] = repr(float(group["betas"][0]))
        meta["beta2"] = repr(float(group["betas"][1]))
    for k in keys:
        v = group[k]
        meta[k] = str(v).lower() if isinstance(v, bool) else repr(float(v))
    return meta


def trajectory(name, kind, options, rng):
    random = torch.tensor(rng.standard_normal(37), dtype=torch.float32)
    extreme = torch.tensor(EXTREME_PARAMS, dtype=torch.float32)
    params = {"random": random, "extreme": extreme}
    tensors = {f"{n}/init": p.numpy().copy() for n, p in params.items()}
    leaves = [p.clone().requires_grad_(True) for p in params.values()]

    ctor = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    # The single-tensor path, the one the crate's order of operations follows.
    opt = ctor(leaves, foreach=False, **options)
    meta = metadata(kind, opt)

    rates = []
    for k in range(1, STEPS + 1):
        lr = options["lr"] * (0.5 if k > STEPS // 2 else 1.0)
        for group in opt.param_groups:
            group["lr"] = lr
        rates.append(repr(lr))
        for (n, _), leaf in zip(params.items(), leaves):
            g = rng.standard_normal(leaf.numel())
            if n == "extreme":
                g = g * np.array(EXTREME_GRAD_SCALE)
            leaf.grad = torch.tensor(g, dtype=torch.float32)
            tensors[f"{n}/grad/{k}"] = leaf.grad.numpy().copy()
        opt.step()
        for (n, _), leaf in zip(params.items(), leaves):
            tensors[f"{n}/param/{k}"] = leaf.detach().numpy().copy()
    meta["lr_per_step"] = ",".join(rates)
    return tensors, meta


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    cases = [(n, "sgd", o) for n, o in SGD_CASES.items()]
    cases += [(n, n.split("_")[0], o) for n, o in ADAM_CASES.items()]
    for i, (name, kind, options) in enumerate(cases):
        rng = np.random.default_rng(SEED + i)
        tensors, meta = trajectory(name, kind, options, rng)
        save_file(tensors, str(out / f"{name}.safetensors"), metadata=meta)
        print(f"{name}: {kind} {options}")


if __name__ == "__main__":
    main()
