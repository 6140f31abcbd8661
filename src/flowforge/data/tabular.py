"""User tables: ``.csv`` (header optional), ``.npy`` (2-D array), ``.npz``
(one array, or arrays named ``train``/``val``/``test``).

Rows are shuffled with a fixed seed and split into train / validation / test
unless the file provides the splits.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from .dataset import SPLITS, DataError, Dataset
from .validate import check_table

__all__ = ["load_table", "table_dataset", "TABULAR_SUFFIXES"]

TABULAR_SUFFIXES = (".csv", ".npy", ".npz")


def load_table(
    path: str | Path,
    context_cols: list[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Load a user table as a :class:`Dataset`.

    Args:
        path: the file.
        context_cols: CSV column names (or 0-based indices as strings) that form
            the context of a conditional flow; the rest are the data.
        val_fraction, test_fraction: split sizes when the file has no splits.
        seed: seed of the split permutation.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a {'/'.join(TABULAR_SUFFIXES)} file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table, columns = _read_csv(path)
    elif suffix in (".npy", ".npz"):
        table, columns = _read_numpy(path)
        if isinstance(table, dict):
            return _from_splits(path, table, context_cols)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use {', '.join(TABULAR_SUFFIXES)}")
    table = check_table(table, str(path), columns)
    data, context, columns = _split_context(table, columns, context_cols, path)
    return table_dataset(data, str(path), context, columns, val_fraction, test_fraction, seed)


def table_dataset(
    data: np.ndarray,
    name: str,
    context: np.ndarray | None = None,
    columns: list[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """A checked ``(N, D)`` array (and optional ``(N, C)`` context) shuffled with
    ``seed`` and split into train / validation / test."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"split fractions must be in [0, 1) and sum below 1, got {val_fraction}, {test_fraction}")
    n = data.shape[0]
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 2:
        raise DataError(f"{name}: only {n} row(s); need at least 2 training rows after the split")
    order = np.random.default_rng(seed).permutation(n)
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    tensors = {s: torch.as_tensor(data[idx], dtype=torch.float32) for s, idx in parts.items()}
    ctx = dict.fromkeys(SPLITS)
    if context is not None:
        ctx = {s: torch.as_tensor(context[idx], dtype=torch.float32) for s, idx in parts.items()}
    return Dataset(name=name, **tensors, context=ctx, columns=columns)


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: file has no rows")
    header = None
    if any(not _is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise DataError(f"{path}: file has a header but no data rows")
    width = len(header) if header else len(rows[0])
    columns = header or [f"column {i}" for i in range(width)]
    values = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        line = i + (2 if header else 1)
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} fields, expected {width}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}: column {columns[j]!r} is not numeric (line {line} has {cell.strip()!r})"
                ) from None
    return values, columns


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_numpy(path: Path):
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001  numpy raises several types for a bad file
        raise DataError(f"{path}: cannot read as {path.suffix} ({type(e).__name__}: {e})") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        names = list(loaded.files)
        if set(names) >= {"train", "val", "test"}:
            return {n: loaded[n] for n in ("train", "val", "test")}, None
        if len(names) != 1:
            raise DataError(f"{path}: expected one array or arrays named train/val/test, found {names}")
        return loaded[names[0]], None


def _split_context(table, columns, context_cols, path):
    if not context_cols:
        return table, None, columns
    names = columns or [f"column {i}" for i in range(table.shape[1])]
    idx = []
    for c in context_cols:
        if c in names:
            idx.append(names.index(c))
        elif str(c).isdigit() and int(c) < table.shape[1]:
            idx.append(int(c))
        else:
            raise DataError(f"{path}: no context column {c!r}; columns are {', '.join(names)}")
    keep = [j for j in range(table.shape[1]) if j not in idx]
    if not keep:
        raise DataError(f"{path}: every column is a context column; nothing is left to model")
    return table[:, keep], table[:, idx], [names[j] for j in keep]


def _from_splits(path: Path, arrays: dict, context_cols) -> Dataset:
    if context_cols:
        raise DataError(f"{path}: context columns are only supported for CSV files")
    tensors = {s: torch.as_tensor(check_table(arrays[s], f"{path}[{s}]"), dtype=torch.float32) for s in SPLITS}
    widths = {s: t.shape[1] for s, t in tensors.items()}
    if len(set(widths.values())) != 1:
        raise DataError(f"{path}: splits have different widths {widths}")
    return Dataset(name=str(path), **tensors)
