"""A split of a ``.npy`` table on disk, read a few rows at a time.

The split is a list of contiguous blocks of the file (see
:func:`flowforge.data.tabular.split_blocks`); position ``p`` of the split is
row ``p - begin_i`` of its block ``i``. ``np.load(mmap_mode="r")`` gives the
file's layout (shape, dtype, offset of the data) without reading it; rows are
then read with positional reads (``os.preadv``, one per run of consecutive
rows) rather than through the map: on current Linux kernels a fault on a
mapped file maps the whole page-cache folio around it (up to 2 MB), so
touching 1,300 scattered blocks of an 800 MB map made 760 MB resident, while
reads leave the pages in the OS page cache, outside the process. Memory stays
bounded by the rows asked for, however large the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .dataset import DataError

__all__ = ["DiskRows"]


class DiskRows:
    """Read-only ``(N, D)`` rows of the ``.npy`` file ``path``, indexed like a tensor.

    Args:
        path: a 2-D (or 1-D: one column) C-ordered ``.npy`` file of numbers.
        blocks: ``(K,)`` block numbers in split order; block ``b`` holds file rows
            ``b * block_rows`` up to ``min((b + 1) * block_rows, file rows)``.
        block_rows: rows per block.

    ``rows[i]`` (int) is a ``(D,)`` float32 tensor; ``rows[a:b]`` and
    ``rows[index]`` (1-D integer tensor or array) are ``(n, D)`` float32 tensors.
    """

    def __init__(self, path: str | Path, blocks: np.ndarray, block_rows: int):
        self.path = Path(path)
        layout = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if layout.ndim > 1 and not layout.flags.c_contiguous:
            raise DataError(f"{path}: a Fortran-ordered array cannot be read by rows; "
                            "save it with np.save(path, np.ascontiguousarray(a))")
        self.file_rows, self.dim = layout.shape[0], int(np.prod(layout.shape[1:], dtype=np.int64))
        self.file_dtype, self.offset = layout.dtype, int(layout.offset)
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
        ordered = rows[order]
        raw = np.empty((rows.size, self.dim), dtype=self.file_dtype)
        run_starts = np.flatnonzero(np.diff(ordered, prepend=-2) != 1)  # runs of consecutive file rows
        run_ends = np.append(run_starts[1:], rows.size)
        row_bytes = self.dim * self.file_dtype.itemsize
        buffer = memoryview(raw.reshape(-1).view(np.uint8))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
                want = (b - a) * row_bytes
                got = os.preadv(fd, [buffer[a * row_bytes : b * row_bytes]], self.offset + int(ordered[a]) * row_bytes)
                if got != want:
                    raise DataError(f"{self.path}: file is shorter than its header says (truncated?)")
        finally:
            os.close(fd)
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        out[order] = raw
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"DiskRows({str(self.path)!r}, {len(self)} rows x {self.dim})"
