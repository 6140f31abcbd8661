"""User tables: ``.csv`` (header optional), ``.npy`` (2-D array), ``.npz``
(one array, or arrays named ``train``/``val``/``test``).

Splits: rows are cut into at most 65,536 contiguous blocks of equal size (one
row per block up to 65,536 rows, so small tables get a plain seeded row
permutation) and a permutation of the blocks seeded with ``seed`` assigns the
first blocks to test, the next to validation, the rest to training
(:func:`split_blocks`). A split is stored in that seeded random order, so its
first rows are a random subsample. Files holding ``train``/``val``/``test``
arrays keep their own splits.

Large ``.npy`` files (over ``ON_DISK_BYTES``) are never loaded: the layout
comes from ``np.load(mmap_mode="r")``, each split is a
:class:`~flowforge.data.disk_rows.DiskRows` read a batch at a time, and the
NaN/inf check streams over the file in chunks.

CSV files are read by pyarrow's multi-threaded reader; a file it refuses is
read again line by line only to name the line, column and cell at fault.

Grid-recorded columns (:func:`~flowforge.data.dequantize.grid_resolution`),
detected on the training split's first ``SAMPLE_ROWS`` rows, are reported
with a warning and, with ``dequantize="auto"`` (the default), dequantized by
their resolution in training and evaluation; the resolutions are recorded in
``Dataset.info["dequantize"]`` so a run reloads its data with the same rule.
"""
from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import torch

from .dataset import SAMPLE_ROWS, SPLITS, DataError, Dataset
from .dequantize import grid_resolution
from .disk_rows import DiskRows
from .validate import check_columns_vary, check_table, check_table_chunks

__all__ = ["load_table", "table_dataset", "split_blocks", "GridWarning", "TABULAR_SUFFIXES", "ON_DISK_BYTES",
           "MAX_BLOCKS"]

TABULAR_SUFFIXES = (".csv", ".npy", ".npz")
#: ``.npy`` files larger than this stay on disk (``load_table(..., on_disk=None)``).
ON_DISK_BYTES = 256 * 2**20
#: Splits assign at most this many contiguous blocks of rows.
MAX_BLOCKS = 1 << 16


class GridWarning(UserWarning):
    """Columns of a table are recorded on a grid (their resolutions are in the message)."""


def load_table(
    path: str | Path,
    context_cols: list[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    dequantize: str | Sequence[float] = "auto",
    on_disk: bool | None = None,
) -> Dataset:
    """Load a user table as a :class:`Dataset`.

    Args:
        path: the file.
        context_cols: CSV column names (or 0-based indices as strings) that form
            the context of a conditional flow; the rest are the data.
        val_fraction, test_fraction: split sizes when the file has no splits.
        seed: seed of the split permutation.
        dequantize: ``"auto"`` detects grid-recorded columns and dequantizes them
            by their resolution; ``"none"`` leaves every value as recorded; a
            list gives each data column's resolution (0 = continuous), as a
            run records it.
        on_disk: leave a ``.npy`` file on disk and read its rows on demand
            (None: when it is larger than ``ON_DISK_BYTES``).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a {'/'.join(TABULAR_SUFFIXES)} file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"split fractions must be in [0, 1) and sum below 1, got {val_fraction}, {test_fraction}")
    suffix, columns = path.suffix.lower(), None
    if suffix == ".csv":
        table, columns = _read_csv(path)
    elif suffix == ".npy":
        table = _read_numpy(path, mmap_mode="r")
        if on_disk or (on_disk is None and table.nbytes > ON_DISK_BYTES):
            if context_cols:
                raise DataError(f"{path}: context columns are only supported for CSV files")
            return _disk_table(path, table, val_fraction, test_fraction, seed, dequantize)
        table = np.array(table)
    elif suffix == ".npz":
        table = _read_numpy(path)
        if isinstance(table, dict):
            return _from_splits(path, table, context_cols, dequantize)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use {', '.join(TABULAR_SUFFIXES)}")
    table = check_table(table, str(path), columns)
    data, context, columns = _split_context(table, columns, context_cols, path)
    return table_dataset(data, str(path), context, columns, val_fraction, test_fraction, seed, dequantize)


def table_dataset(
    data: np.ndarray,
    name: str,
    context: np.ndarray | None = None,
    columns: list[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    dequantize: str | Sequence[float] = "auto",
) -> Dataset:
    """A checked ``(N, D)`` array (and optional ``(N, C)`` context) shuffled with ``seed``
    (in blocks, see :func:`split_blocks`) and split into train / validation / test."""
    blocks, block_rows = split_blocks(data.shape[0], val_fraction, test_fraction, seed, name)
    parts = {s: _block_rows(blocks[s], block_rows, data.shape[0]) for s in SPLITS}
    tensors = {s: torch.as_tensor(data[idx], dtype=torch.float32) for s, idx in parts.items()}
    ctx = dict.fromkeys(SPLITS)
    if context is not None:
        ctx = {s: torch.as_tensor(context[idx], dtype=torch.float32) for s, idx in parts.items()}
    resolution = _resolution(dequantize, data[parts["train"][:SAMPLE_ROWS]], name, columns)
    return Dataset(name=name, **tensors, context=ctx, columns=columns, resolution=resolution,
                   info={"dequantize": resolution or "none"})


def split_blocks(
    n: int, val_fraction: float, test_fraction: float, seed: int, source: str = "table"
) -> tuple[dict[str, np.ndarray], int]:
    """``({split: block numbers in seeded random order}, rows per block)`` for ``n`` rows.

    ``rows per block = ceil(n / MAX_BLOCKS)``; test takes the first
    ``round(blocks * test_fraction)`` blocks of the permutation, validation the next
    ``round(blocks * val_fraction)``, training the rest (at least 2 rows).
    """
    block_rows = max(1, -(-n // MAX_BLOCKS))
    n_blocks = -(-n // block_rows)
    n_val, n_test = int(round(n_blocks * val_fraction)), int(round(n_blocks * test_fraction))
    order = np.random.default_rng(seed).permutation(n_blocks)
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    train_starts = parts["train"] * block_rows
    if int((np.minimum(train_starts + block_rows, n) - train_starts).sum()) < 2:
        raise DataError(f"{source}: only {n} row(s); need at least 2 training rows after the split")
    return parts, block_rows


def _block_rows(blocks: np.ndarray, block_rows: int, n: int) -> np.ndarray:
    rows = (blocks[:, None] * block_rows + np.arange(block_rows)).ravel()
    return rows[rows < n]


def _resolution(mode, train: np.ndarray, source: str, columns: list[str] | None) -> list[float] | None:
    """Per data column the dequantization width (0 = continuous), or None for none at all."""
    names = columns or [f"column {j}" for j in range(train.shape[1])]
    if isinstance(mode, str):
        if mode == "none":
            return None
        if mode != "auto":
            raise DataError(f"dequantize must be 'auto', 'none' or a list of per-column resolutions, got {mode!r}")
        check_columns_vary(train, source, names)
        found = [grid_resolution(train[:, j]) or 0.0 for j in range(train.shape[1])]
        grid = [f"{names[j]} ({r:g})" for j, r in enumerate(found) if r]
        if grid:
            warnings.warn(
                f"{source}: {len(grid)} column(s) recorded on a grid (resolution): {', '.join(grid)}; "
                "dequantized with uniform noise of that width (dequantize='none' turns this off)",
                GridWarning, stacklevel=2,
            )
        return found if grid else None
    widths = [float(r) for r in mode]
    if len(widths) != train.shape[1] or not all(np.isfinite(r) and r >= 0 for r in widths):
        raise DataError(
            f"{source}: dequantize gives {len(widths)} resolution(s) {widths} for {train.shape[1]} data column(s); "
            "expected one finite resolution >= 0 per column"
        )
    return widths if any(widths) else None


def _disk_table(path: Path, table: np.ndarray, val_fraction, test_fraction, seed, dequantize) -> Dataset:
    source = str(path)
    check_table_chunks(table.shape, table.dtype, lambda a, b: np.load(path, mmap_mode="r")[a:b], source)
    blocks, block_rows = split_blocks(table.shape[0], val_fraction, test_fraction, seed, source)
    splits = {s: DiskRows(path, blocks[s], block_rows) for s in SPLITS}
    resolution = _resolution(dequantize, splits["train"][:SAMPLE_ROWS].numpy(), source, None)
    return Dataset(name=source, **splits, resolution=resolution, info={"dequantize": resolution or "none"})


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    first, line = _first_row(path)
    header = [c.strip() for c in first] if any(not _is_number(c) for c in first) else None
    columns = header or [f"column {i}" for i in range(len(first))]
    keys = [f"f{i}" for i in range(len(columns))]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=keys, skip_rows=line if header else line - 1),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(keys, pa.float64()), null_values=[]),
        )
    except pa.ArrowInvalid as e:
        raise _csv_error(path, columns, header is not None, e) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: file has a header but no data rows")
    values = np.empty((table.num_rows, table.num_columns))
    for j, column in enumerate(table.columns):
        values[:, j] = np.concatenate([chunk.to_numpy(zero_copy_only=True) for chunk in column.chunks])
    return values, columns


def _first_row(path: Path) -> tuple[list[str], int]:
    """The first non-blank row of a CSV file and its line number."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if row and any(c.strip() for c in row):
                return row, reader.line_num
    raise DataError(f"{path}: file has no rows")


def _csv_error(path: Path, columns: list[str], header: bool, error: Exception) -> DataError:
    """Name the first line, column and cell that pyarrow could not read (a second, slow pass)."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        rows = (r for r in reader if r)  # pyarrow skips empty lines, not lines of spaces
        if header:
            next(r for r in rows if any(c.strip() for c in r))
        for row in rows:
            if len(row) != len(columns):
                return DataError(f"{path}: line {reader.line_num} has {len(row)} fields, expected {len(columns)}")
            for name, cell in zip(columns, row, strict=True):
                if not _is_number(cell):
                    return DataError(f"{path}: column {name!r} is not numeric (line {reader.line_num} has "
                                     f"{cell.strip()!r})")
    return DataError(f"{path}: cannot read as CSV ({error})")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_numpy(path: Path, mmap_mode: str | None = None):
    try:
        loaded = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except Exception as e:  # noqa: BLE001  numpy raises several types for a bad file
        raise DataError(f"{path}: cannot read as {path.suffix} ({type(e).__name__}: {e})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        names = list(loaded.files)
        if set(names) >= {"train", "val", "test"}:
            return {n: loaded[n] for n in ("train", "val", "test")}
        if len(names) != 1:
            raise DataError(f"{path}: expected one array or arrays named train/val/test, found {names}")
        return loaded[names[0]]


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


def _from_splits(path: Path, arrays: dict, context_cols, dequantize) -> Dataset:
    if context_cols:
        raise DataError(f"{path}: context columns are only supported for CSV files")
    checked = {s: check_table(arrays[s], f"{path}[{s}]") for s in SPLITS}
    widths = {s: a.shape[1] for s, a in checked.items()}
    if len(set(widths.values())) != 1:
        raise DataError(f"{path}: splits have different widths {widths}")
    resolution = _resolution(dequantize, checked["train"][:SAMPLE_ROWS], str(path), None)
    tensors = {s: torch.as_tensor(a, dtype=torch.float32) for s, a in checked.items()}
    return Dataset(name=str(path), **tensors, resolution=resolution, info={"dequantize": resolution or "none"})
