"""Defaults that make ``flowforge train --data X --model Y`` work well out of
the box: which preprocessing a data kind needs, and per-model training
settings. The CLI and Python users share them.
"""
from __future__ import annotations

from typing import Any

from ..data import Dataset
from ..distributions import Flow
from ..errors import ConfigError
from ..models import build, model_options

__all__ = [
    "DEFAULT_MODELS", "RECIPES", "recipe", "train_defaults", "build_for_data", "default_preprocess",
    "mixture_components",
]

#: The model used when none is named, per data kind: spline flows for vectors
#: (toy sets and tables alike), the multiscale Real NVP for images.
DEFAULT_MODELS: dict[str, str] = {"vector": "nsf", "image": "realnvp"}

#: Vector data: mini-batches of 512, linear warm-up then cosine decay, clipping and a moving
#: average of the weights (validated and kept: no spikes after warm-up, no dependence on the
#: last step's noise), early stopping; ``steps`` is scaled with the table (see train_defaults).
_VECTOR_TRAIN: dict[str, Any] = {
    "epochs": 100, "min_steps": 1000, "max_steps": 10000, "batch_size": 512, "lr": 1e-3, "warmup": 200,
    "schedule": "cosine", "ema": 0.995, "clip_grad": 5.0, "eval_every": 250, "patience": 10,
}

_IMAGE_TRAIN: dict[str, Any] = {"steps": 3000, "batch_size": 64, "lr": 1e-3, "eval_every": 100, "patience": 5}

#: Per ``(model, data kind)``: ``train`` (TrainConfig fields) and ``model`` (build options).
#: Entries are looked up by ``(model, kind)``, then ``(model, "*")``.
RECIPES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    # a mixture base under the splines: EM-fitted when training starts, at most mixture_components(rows)
    # components, as many as the validation split supports
    ("nsf", "vector"): {"train": _VECTOR_TRAIN, "model": {"bins": 32, "base": "gmm"}},
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
    """The defaults for ``model`` on data of ``kind`` (``"vector"`` or ``"image"``); every
    vector model trains as the vector recipe does unless it has its own entry."""
    fallback = {"train": _VECTOR_TRAIN, "model": {}} if kind == "vector" else _FALLBACK
    return RECIPES.get((model, kind)) or RECIPES.get((model, "*")) or fallback


def train_defaults(model: str, dataset: Dataset, steps: int | None = None) -> dict[str, Any]:
    """The recipe's TrainConfig fields for ``dataset``: a recipe given in ``epochs`` gets
    ``steps = epochs * n_train / batch_size``, clamped to ``[min_steps, max_steps]``; ``steps``
    given by the user replace it, with the warm-up cut to a tenth of them at most."""
    train = dict(recipe(model, dataset.kind)["train"])
    if "epochs" in train:
        epochs, lo, hi = train.pop("epochs"), train.pop("min_steps"), train.pop("max_steps")
        per_epoch = dataset.train.shape[0] / (train.get("batch_size") or dataset.train.shape[0])
        train["steps"] = int(min(max(epochs * per_epoch, lo), hi))
    if steps is not None:
        train["steps"] = steps
        train["warmup"] = min(train.get("warmup", 0), steps // 10)
    return train


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
            raise ConfigError(f"model {model!r} cannot be conditioned on a context")
        config.setdefault("context_dim", dataset.context_dim)
    if dataset.context_dim and "base" not in options and config.get("base") == "gmm":
        config["base"] = "normal"  # the mixture is unconditional: it would model x over all contexts at once
    if config.get("base") == "gmm" and "components" in accepted:
        config.setdefault("components", mixture_components(dataset.train.shape[0]))
    config.setdefault("preprocess", default_preprocess(dataset))
    return build(model, **config)


def mixture_components(rows: int) -> int:
    """The most components a mixture base may get from ``rows`` training rows: the largest
    power of two with at least 32 rows each, between 1 and 512. Training starts by choosing
    how many of them to keep on the validation split (``GaussianMixture.fit``): real tables
    are often many tight clusters (the weather table's hours) that a flow alone fits poorly,
    smooth ones need few."""
    return min(512, 1 << (max(rows // 32, 1).bit_length() - 1))
