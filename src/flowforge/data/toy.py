"""Toy 2-D data sets with fixed-seed splits (train 3000, validation 5000, test 20000).

``moons`` is the classic Real NVP example (``make_moons(3000, noise=0.05)``);
its train (seed 0) and test (seed 1) splits are exactly those of the shared
benchmark (../shared/bench), so test NLLs compare directly. The validation
split is large on purpose: with a few hundred points a single point in a
gap of the density dominates the mean and makes early stopping erratic. ``8gaussians`` and ``checkerboard`` also
have exact log-densities (:func:`toy_log_density`), so a trained model's KL to
the truth can be measured.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .dataset import Dataset, register_dataset

__all__ = ["toy_log_density", "TOY_SIZES"]

TOY_SIZES = {"train": 3000, "val": 5000, "test": 20000}
_SEEDS = {"train": 0, "val": 2, "test": 1}


def _eight_gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = rng.integers(0, 8, n)
    centres = 4.0 * np.stack([np.cos(k * np.pi / 4), np.sin(k * np.pi / 4)], 1)
    return centres + 0.5 * rng.standard_normal((n, 2)), k


def _checkerboard(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # uniform on the 8 unit squares of [-2, 2)^2 with floor(x1) + floor(x2) even
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) + rng.integers(-2, 2, n)
    x2 = x2 + ((np.floor(x1) + np.floor(x2)) % 2)  # move odd squares up by one
    x2 = np.where(x2 >= 2, x2 - 4, x2)
    return np.stack([x1, x2], 1), (np.floor(x1) + 2 + 4 * (np.floor(x2) + 2)).astype(int)


def _sample(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name in ("moons", "circles"):
        from sklearn import datasets  # imported on use: it is slow to import

        if name == "moons":
            return datasets.make_moons(n, noise=0.05, random_state=seed)
        return datasets.make_circles(n, noise=0.05, factor=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    return _eight_gaussians(n, rng) if name == "8gaussians" else _checkerboard(n, rng)


def _toy(name: str) -> Dataset:
    splits, labels = {}, {}
    for split, n in TOY_SIZES.items():
        x, y = _sample(name, n, _SEEDS[split])
        splits[split] = torch.as_tensor(x, dtype=torch.float32)
        labels[split] = torch.as_tensor(y, dtype=torch.long)
    return Dataset(name=name, **splits, labels=labels, info={"exact_density": name in ("8gaussians", "checkerboard")})


for _name in ("moons", "circles", "8gaussians", "checkerboard"):
    register_dataset(_name)(lambda _n=_name: _toy(_n))


def toy_log_density(name: str, x: Tensor) -> Tensor:
    """Exact ``log p(x)`` of ``8gaussians`` or ``checkerboard``, shape ``(B,)``."""
    if name == "8gaussians":
        k = torch.arange(8, dtype=x.dtype, device=x.device) * math.pi / 4
        centres = 4.0 * torch.stack([torch.cos(k), torch.sin(k)], 1)
        sq = ((x[:, None, :] - centres) ** 2).sum(-1) / (2 * 0.25)
        log_norm = -math.log(2 * math.pi * 0.25)
        return torch.logsumexp(-sq, 1) + log_norm - math.log(8)
    if name == "checkerboard":
        inside = (x.abs() < 2).all(1) & ((torch.floor(x[:, 0]) + torch.floor(x[:, 1])) % 2 == 0)
        return torch.where(inside, x.new_tensor(-math.log(8)), x.new_tensor(-math.inf))
    raise ValueError(f"no exact density for {name!r}; available for 8gaussians, checkerboard")
