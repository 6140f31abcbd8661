"""A split of a memory-mapped ``.npy`` table, read a few rows at a time.

The split is a list of contiguous blocks of the file (see
:func:`flowforge.data.tabular.split_blocks`); position ``p`` of the split is
row ``p - start_i`` of its block ``i``. Each read opens the file with
``np.load(mmap_mode="r")``, copies the rows asked for (in file order) and drops
the map, so the pages it touched stay in the OS page cache and not in the
process: memory stays bounded however large the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["MappedRows"]


class MappedRows:
    """Read-only ``(N, D)`` rows of ``path``, indexed like a tensor.

    Args:
        path: a 2-D (or 1-D: one column) ``.npy`` file.
        blocks: ``(K,)`` block numbers in split order; block ``b`` holds file rows
            ``b * block_rows`` up to ``min((b + 1) * block_rows, file rows)``.
        block_rows: rows per block.

    ``rows[i]`` (int) is a ``(D,)`` float32 tensor; ``rows[a:b]`` and
    ``rows[index]`` (1-D integer tensor or array) are ``(n, D)`` float32 tensors.
    """

    def __init__(self, path: str | Path, blocks: np.ndarray, block_rows: int):
        self.path = Path(path)
        table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self.file_rows, self.dim = table.shape[0], int(np.prod(table.shape[1:], dtype=np.int64))
        self.blocks, self.block_rows = np.asarray(blocks, dtype=np.int64), int(block_rows)
        self._starts = self.blocks * self.block_rows
        lengths = np.minimum(self._starts + self.block_rows, self.file_rows) - self._starts
        self._ends = np.cumsum(lengths)
        self._begins = self._ends - lengths

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), self.dim))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __len__(self) -> int:
        return int(self._ends[-1]) if self._ends.size else 0

    def file_rows_of(self, positions: np.ndarray) -> np.ndarray:
        """File row numbers of split positions ``(n,)``."""
        i = np.searchsorted(self._ends, positions, side="right")
        return self._starts[i] + positions - self._begins[i]

    def __getitem__(self, key) -> Tensor:
        n = len(self)
        if isinstance(key, int | np.integer):
            if not -n <= key < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self._read(np.array([key % n]))[0]
        if isinstance(key, slice):
            return self._read(np.arange(*key.indices(n)))
        positions = key.cpu().numpy() if isinstance(key, Tensor) else np.asarray(key)
        if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
            raise TypeError(f"rows are indexed by an int, a slice or a 1-D integer index, got {key!r}")
        if positions.size and (positions.min() < -n or positions.max() >= n):
            raise IndexError(f"index out of range for {n} rows")
        return self._read(positions % max(n, 1))

    def _read(self, positions: np.ndarray) -> Tensor:
        rows = self.file_rows_of(positions)
        order = np.argsort(rows, kind="stable")
        table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        out[order] = table[rows[order]].reshape(rows.size, self.dim)
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"MappedRows({str(self.path)!r}, {len(self)} rows x {self.dim})"
