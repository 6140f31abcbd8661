"""The ``Dataset`` record and the registry of named data sets.

A data set is held in memory as float tensors in the user's original units,
already split into train / validation / test with fixed seeds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import DataError
from ..registry import Registry

__all__ = [
    "Dataset", "DataError", "RECORDED_OPTIONS", "register_dataset", "load_dataset", "available_datasets",
    "datasets_taking", "SPLITS",
]

SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """In-memory data set, split three ways.

    Attributes:
        name: data set name or file path.
        train, val, test: ``(N, *event_shape)`` float tensors in original units.
        labels: per split an ``(N,)`` integer tensor or None (used for plots).
        context: per split an ``(N, context_dim)`` tensor or None (conditional flows).
        kind: ``"vector"`` or ``"image"``.
        levels: number of discrete values per dimension (images: 17 for digits,
            256 for 8-bit), None for continuous data. Quantized data are
            dequantized with uniform noise in training and evaluation.
        columns: column names of tabular data (for messages), if known.
        info: extra JSON-able facts stored in checkpoints (e.g. class names).
    """

    name: str
    train: Tensor
    val: Tensor
    test: Tensor
    labels: dict[str, Tensor | None] = field(default_factory=lambda: dict.fromkeys(SPLITS))
    context: dict[str, Tensor | None] = field(default_factory=lambda: dict.fromkeys(SPLITS))
    kind: str = "vector"
    levels: int | None = None
    columns: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    @property
    def context_dim(self) -> int:
        c = self.context.get("train")
        return 0 if c is None else int(c.shape[1])

    def split(self, name: str) -> Tensor:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}")
        return getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary stored with checkpoints."""
        return {
            "name": self.name,
            "kind": self.kind,
            "event_shape": list(self.event_shape),
            "levels": self.levels,
            "context_dim": self.context_dim,
            "columns": self.columns,
            "sizes": {s: int(self.split(s).shape[0]) for s in SPLITS},
            **self.info,
        }


DATASETS: Registry[Callable[..., Dataset]] = Registry("data set")


def register_dataset(name: str) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator: make ``loader(**options) -> Dataset`` loadable as ``load_dataset(name)``."""
    return DATASETS.register(name)


def available_datasets() -> list[str]:
    return DATASETS.names()


def datasets_taking(option: str) -> list[str]:
    """Built-in data sets whose loader accepts the keyword ``option`` (e.g. ``"path"``)."""
    return [name for name in DATASETS.names() if option in DATASETS.options(name)]


#: Loader options a data set records in ``Dataset.info`` (hence in every run that reads it), so that later
#: commands and ``--resume`` reload the same data whether the run started from Python or the command line.
RECORDED_OPTIONS = ("context_cols", "path")


def load_dataset(name_or_path: str | Path, **options: Any) -> Dataset:
    """A built-in data set by name, a user file (``.csv``, ``.npy``, ``.npz``) or a folder of images.

    File options: ``context_cols`` (CSV column names or indices used as the
    context), ``val_fraction``, ``test_fraction``, ``seed``. The options in
    :data:`RECORDED_OPTIONS` are recorded in ``Dataset.info`` (a ``path`` as an absolute path).
    """
    dataset = _load(str(name_or_path), options)
    for key in RECORDED_OPTIONS:  # what the loader resolved itself wins
        if options.get(key):
            value = options[key]
            dataset.info.setdefault(key, str(Path(value).expanduser().resolve()) if key == "path" else value)
    return dataset


def _load(key: str, options: dict[str, Any]) -> Dataset:
    if key in DATASETS:
        return DATASETS[key](**options)
    from .tabular import TABULAR_SUFFIXES, load_table

    path = Path(key)
    if path.is_dir():  # a folder of images (one sub-folder per class, optional)
        return DATASETS["image-folder"](path=path, **options)
    if path.suffix.lower() in TABULAR_SUFFIXES or path.exists():
        return load_table(path, **options)
    raise DataError(
        f"unknown data set {key!r}: not a built-in name ({', '.join(available_datasets())}), "
        f"not a file ({', '.join(TABULAR_SUFFIXES)}) and not a folder of images"
    )
