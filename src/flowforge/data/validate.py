"""Input validation shared by every loader: one place, messages that name the
source, the column or index, and the count."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .dataset import DataError

__all__ = ["check_table", "check_table_chunks", "check_columns_vary"]


def check_table(a: np.ndarray, source: str, columns: Sequence[str] | None = None, min_rows: int = 1) -> np.ndarray:
    """Check a 2-D numeric array: non-empty, finite; return it as float64.

    Raises:
        DataError: naming ``source``, the offending column(s) and row numbers.
    """
    a = _check_shape(a, source, min_rows)
    a = a.astype(np.float64, copy=False)
    _raise_nonfinite([_nonfinite(a, 0)], source, columns)
    return a


def check_table_chunks(
    shape: tuple[int, ...], dtype: np.dtype, read: Callable[[int, int], np.ndarray], source: str,
    columns: Sequence[str] | None = None, chunk_rows: int = 1 << 18,
) -> None:
    """:func:`check_table` for a table too large to hold: ``read(start, stop)``
    returns rows ``start:stop``, checked one chunk at a time (same messages)."""
    _check_shape(np.empty((0,) + tuple(shape[1:]), dtype), source, min_rows=0)
    if shape[0] < 1:
        raise DataError(f"{source}: no data (shape {shape}); need at least 1 row and 1 column")
    _raise_nonfinite(
        [_nonfinite(read(i, i + chunk_rows), i) for i in range(0, shape[0], chunk_rows)], source, columns
    )


def check_columns_vary(a: np.ndarray, source: str, columns: Sequence[str] | None = None) -> None:
    """Refuse constant columns: a density on one value is degenerate."""
    constant = np.flatnonzero((a == a[:1]).all(axis=0))
    if constant.size:
        names = ", ".join(f"{columns[c] if columns else c} (= {a[0, c]:g})" for c in constant[:10])
        more = f" and {constant.size - 10} more" if constant.size > 10 else ""
        raise DataError(
            f"{source}: column(s) {names}{more} hold one value in all {a.shape[0]} rows; "
            "no density can be fitted to a constant: drop them (dequantize='none' fits them anyway)"
        )


def _check_shape(a: np.ndarray, source: str, min_rows: int) -> np.ndarray:
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataError(f"{source}: expected a 2-D table (rows x columns), got an array of shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] == 0:
        raise DataError(f"{source}: no data (shape {a.shape}); need at least {min_rows} rows and 1 column")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise DataError(f"{source}: data must be numeric, got dtype {a.dtype}")
    return a


def _nonfinite(a: np.ndarray, first_row: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, bad row numbers, bad column mask) of a chunk starting at ``first_row``."""
    if a.ndim == 1:
        a = a[:, None]
    bad = ~np.isfinite(a)
    return int(bad.sum()), first_row + np.flatnonzero(bad.any(axis=1)), bad.any(axis=0)


def _raise_nonfinite(chunks: list[tuple[int, np.ndarray, np.ndarray]], source: str, columns) -> None:
    count = sum(c[0] for c in chunks)
    if not count:
        return
    rows = np.concatenate([c[1] for c in chunks])
    cols = np.flatnonzero(np.logical_or.reduce([c[2] for c in chunks]))
    names = [columns[c] if columns else str(c) for c in cols]
    first = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
    raise DataError(
        f"{source}: {count} NaN/inf value(s) in {len(rows)} row(s) "
        f"(first rows {first}; column(s) {', '.join(names)}); remove or impute them"
    )
