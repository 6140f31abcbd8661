"""Input validation shared by every loader: one place, messages that name the
source, the column or index, and the count."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .dataset import DataError

__all__ = ["check_table"]


def check_table(a: np.ndarray, source: str, columns: Sequence[str] | None = None, min_rows: int = 1) -> np.ndarray:
    """Check a 2-D numeric array: non-empty, finite; return it as float64.

    Raises:
        DataError: naming ``source``, the offending column(s) and row numbers.
    """
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataError(f"{source}: expected a 2-D table (rows x columns), got an array of shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] == 0:
        raise DataError(f"{source}: no data (shape {a.shape}); need at least {min_rows} rows and 1 column")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise DataError(f"{source}: data must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = np.flatnonzero(bad.any(axis=0))
        names = [columns[c] if columns else str(c) for c in cols]
        first = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        raise DataError(
            f"{source}: {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s) "
            f"(first rows {first}; column(s) {', '.join(names)}); remove or impute them"
        )
    return a
