"""Defaults that make ``flowforge train --data X --model Y`` work well out of
the box: which preprocessing a data kind needs, and per-model training
settings. The CLI and Python users share them.
"""
from __future__ import annotations

from typing import Any

from ..data import Dataset
from ..distributions import Flow
from ..models import build, model_options

__all__ = ["DEFAULT_MODELS", "RECIPES", "recipe", "build_for_data", "default_preprocess"]

#: The model used when none is named, per data kind (``flowforge.sklearn.FlowDensity`` reads it).
DEFAULT_MODELS: dict[str, str] = {"vector": "realnvp", "image": "glow"}

_IMAGE_TRAIN: dict[str, Any] = {"steps": 3000, "batch_size": 64, "lr": 1e-3, "eval_every": 100, "patience": 5}

#: Per ``(model, data kind)``: ``train`` (TrainConfig fields) and ``model`` (build options).
#: Entries are looked up by ``(model, kind)``, then ``(model, "*")``.
RECIPES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("realnvp", "vector"): {"train": {"steps": 1000, "batch_size": None, "lr": 1e-3, "eval_every": 100}, "model": {}},
    # image flows: mini-batches, early stopping on validation bits/dim (small image sets overfit fast)
    ("glow", "image"): {"train": _IMAGE_TRAIN, "model": {}},
    ("realnvp", "image"): {"train": _IMAGE_TRAIN, "model": {"hidden": 32}},
    ("nice", "image"): {"train": _IMAGE_TRAIN, "model": {}},
    # MAF paper recipe on digits (issue 4): random orders and batch norm between MADEs
    ("maf", "image"): {
        "train": {"steps": 3000, "batch_size": 128, "lr": 1e-3, "eval_every": 50, "patience": 10},
        "model": {"hidden": 256, "permutation": "random", "batch_norm": True},
    },
}
_FALLBACK: dict[str, dict[str, Any]] = {"train": {"steps": 2000, "eval_every": 100}, "model": {}}


def recipe(model: str, kind: str) -> dict[str, dict[str, Any]]:
    """The defaults for ``model`` on data of ``kind`` (``"vector"`` or ``"image"``)."""
    return RECIPES.get((model, kind)) or RECIPES.get((model, "*")) or _FALLBACK


def default_preprocess(dataset: Dataset) -> list[Any]:
    """Continuous data are standardized; quantized data (images) are scaled and
    logit-transformed (Real NVP) -- both as bijections inside the flow."""
    if dataset.levels:
        return [{"type": "logit", "levels": dataset.levels}]
    return ["standardize"]


def build_for_data(model: str, dataset: Dataset, **options: Any) -> Flow:
    """Build ``model`` sized for ``dataset`` (``dim`` or ``shape``, ``context_dim``),
    with the recipe's options, then ``options`` on top."""
    config = {**recipe(model, dataset.kind)["model"], **options}
    accepted = model_options(model)
    if dataset.kind == "image" and "shape" in accepted:
        config.setdefault("shape", list(dataset.event_shape))
    elif "dim" in accepted:
        config.setdefault("dim", int(dataset.train[0].numel()))
    if dataset.context_dim:
        if "context_dim" not in accepted:
            raise ValueError(f"model {model!r} cannot be conditioned on a context")
        config.setdefault("context_dim", dataset.context_dim)
    config.setdefault("preprocess", default_preprocess(dataset))
    return build(model, **config)
