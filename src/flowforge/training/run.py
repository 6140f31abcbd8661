"""``Run``: one run folder, the same for every run kind (train, fit-target, distill, vae).

    RUN/model.safetensors   best weights (by the objective's validation figure) + the complete model record
    RUN/last.safetensors    the latest state, everything ``--resume`` needs
    RUN/metrics.csv         one row per evaluation
    RUN/summary.json        final figures
    RUN/*.png               pictures
    RUN/.lock               while a process writes: its pid, host and start time

A second process that wants to write into a locked folder is refused with a
message naming the one that holds it; a lock left by a killed process (its pid
no longer alive on this host) is taken over, so ``--resume`` after SIGKILL works.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .checkpoint import LAST_FILE, MODEL_FILE, atomic_write_text

__all__ = ["Run", "RUN_KINDS"]

#: the kinds of run a folder can hold; ``flowforge.load`` and ``--resume`` accept each
RUN_KINDS = ("train", "fit-target", "distill", "vae")
LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # folders this process has locked -> nesting depth


class Run:
    """A run folder (it need not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def last_file(self) -> Path:
        return self.path / LAST_FILE

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- the lock --------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[Run]:
        """Hold the folder for writing (re-entrant within a process); refused while another process holds it."""
        key = self.path.resolve()
        if key not in _held:
            self._acquire()
        _held[key] = _held.get(key, 0) + 1
        try:
            yield self
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
                (self.path / LOCK_FILE).unlink(missing_ok=True)

    def _acquire(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        # the lock appears with its content in one step (a hard link of a written file), so a reader never
        # sees an empty lock and mistakes a starting run for a dead one
        draft = self.path / f"{LOCK_FILE}.{os.getpid()}"
        draft.write_text(json.dumps(me))
        try:
            for _ in range(2):
                try:
                    os.link(draft, self.path / LOCK_FILE)
                except FileExistsError:
                    holder = self._holder()
                    if holder is not None and _alive(holder):
                        raise CheckpointError(
                            f"{self.path} is being written by another run (pid {holder.get('pid')} on "
                            f"{holder.get('host')}, started {holder.get('started')}); wait for it or choose "
                            "another folder"
                        ) from None
                    (self.path / LOCK_FILE).unlink(missing_ok=True)  # stale: its process is gone
                    continue
                return
        finally:
            draft.unlink(missing_ok=True)
        raise CheckpointError(f"{self.path}: could not take the lock {LOCK_FILE}; another run keeps taking it")

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / LOCK_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return None  # garbled (the lock is never seen half-written): treated as stale

    # -- files -----------------------------------------------------------------------------

    def write_metrics(self, history: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
        lines = [",".join(fields)]
        for row in history:
            lines.append(",".join(_cell(row.get(k)) for k in fields))
        atomic_write_text(self.path / "metrics.csv", "\n".join(lines) + "\n")

    def read_metrics(self, up_to_step: int) -> list[dict[str, Any]]:
        """The rows of ``metrics.csv`` up to ``up_to_step`` (a resumed run rewrites the ones after it)."""
        path = self.path / "metrics.csv"
        if not path.exists():
            return []
        with path.open() as fh:
            rows = [{k: float(v) if v else None for k, v in row.items()} for row in csv.DictReader(fh)]
        for row in rows:
            row["step"], row["skipped_steps"] = int(row["step"]), int(row["skipped_steps"])
        return [row for row in rows if row["step"] <= up_to_step]

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2) + "\n")

    def clear(self) -> None:
        """Remove a previous run's files (``--overwrite``); call while holding the lock."""
        for name in (MODEL_FILE, LAST_FILE, "metrics.csv", "summary.json"):
            (self.path / name).unlink(missing_ok=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the lock's process still runs (one on another host is assumed to)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except PermissionError:  # alive, another user's
        return True
    except (ProcessLookupError, KeyError, TypeError, ValueError, OverflowError):  # gone, or a garbled lock
        return False
    return True
