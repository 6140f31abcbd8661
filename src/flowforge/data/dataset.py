"""The ``Dataset`` record and the registry of named data sets.

A data set is held as float tensors in the user's original units (or, for a
table larger than memory, as rows of a file read on demand), already split
into train / validation / test with fixed seeds.

Statistics and figures over a split longer than ``SAMPLE_ROWS`` use its first
``SAMPLE_ROWS`` rows: splits are stored in seeded random order (see
``data.tabular``), so these are a random subsample.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import DataError
from ..registry import Registry
from .dequantize import dequantize

if TYPE_CHECKING:
    from .disk_rows import DiskRows

__all__ = [
    "Dataset", "DataError", "RECORDED_OPTIONS", "register_dataset", "load_dataset", "available_datasets",
    "datasets_taking", "SPLITS", "SAMPLE_ROWS",
]

SPLITS = ("train", "val", "test")
#: Rows of a split used for statistics and figures when the split is longer.
SAMPLE_ROWS = 200_000


@dataclass
class Dataset:
    """In-memory data set, split three ways.

    Attributes:
        name: data set name or file path.
        train, val, test: ``(N, *event_shape)`` float tensors in original units,
            or :class:`~flowforge.data.disk_rows.DiskRows` of a table read
            from disk (indexing one returns tensors).
        labels: per split an ``(N,)`` integer tensor or None (used for plots).
        context: per split an ``(N, context_dim)`` tensor or None (conditional flows).
        kind: ``"vector"`` or ``"image"``.
        levels: number of discrete values per dimension (images: 17 for digits,
            256 for 8-bit), None for continuous data. Quantized data are
            dequantized with uniform noise in training and evaluation.
        resolution: per column of a table, the width of the uniform noise that
            dequantizes it (its recording resolution; 0 = continuous), or None.
        columns: column names of tabular data (for messages), if known.
        info: extra JSON-able facts stored in checkpoints (e.g. class names).
    """

    name: str
    train: Tensor | DiskRows
    val: Tensor | DiskRows
    test: Tensor | DiskRows
    labels: dict[str, Tensor | None] = field(default_factory=lambda: dict.fromkeys(SPLITS))
    context: dict[str, Tensor | None] = field(default_factory=lambda: dict.fromkeys(SPLITS))
    kind: str = "vector"
    levels: int | None = None
    columns: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    resolution: list[float] | None = None

    @property
    def quantized(self) -> bool:
        """Whether training and evaluation add dequantization noise."""
        return bool(self.levels) or self.resolution is not None

    def dequantize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``x`` (a batch in original units) plus this data set's dequantization
        noise: ``U[0, 1)`` per pixel of quantized images, ``U[0, r_j)`` per grid
        column ``j`` of a table; ``x`` itself for continuous data."""
        if self.levels:
            return dequantize(x, generator)
        if self.resolution is not None:
            return dequantize(x, generator, torch.tensor(self.resolution, dtype=x.dtype, device=x.device))
        return x

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    @property
    def context_dim(self) -> int:
        c = self.context.get("train")
        return 0 if c is None else int(c.shape[1])

    def split(self, name: str) -> Tensor | DiskRows:
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
            "grid": None if self.resolution is None else {
                (self.columns[j] if self.columns else f"column {j}"): r for j, r in enumerate(self.resolution) if r
            },
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
RECORDED_OPTIONS = ("context_cols", "path", "dequantize")


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
