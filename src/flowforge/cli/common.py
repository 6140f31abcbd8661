"""Shared pieces of the sub-commands: errors, run loading, argument types."""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from ..data import RECORDED_OPTIONS, Dataset, load_dataset
from ..distributions import Flow
from ..errors import ConfigError
from ..training import distributed
from ..training.checkpoint import LAST_FILE, atomic_write_text, load_flow, read_metadata
from ..training.run import Run

__all__ = [
    "CLIError",
    "new_run",
    "resumable_run",
    "writing",
    "load_run",
    "run_dataset",
    "add_device_arg",
    "write_json",
    "positive_int",
    "positive_float",
    "examples",
    "resolve_device",
]


class CLIError(ConfigError):
    """A bad command-line argument (a :class:`~flowforge.errors.FlowforgeError`: one line, exit status 2)."""


def examples(*lines: str) -> str:
    """An ``--help`` epilog listing example invocations."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: cpu)")


def resolve_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise CLIError(f"bad --device {name!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name}: CUDA is not available on this machine")
    return device


def writing(run: Run) -> AbstractContextManager[Run]:
    """Hold ``run``'s folder for the whole command (rank 0 under torchrun; the other ranks write nothing)."""
    return run.lock() if distributed.info().is_main else nullcontext(run)


@contextmanager
def new_run(out: Path, overwrite: bool) -> Iterator[Run]:
    """Hold the folder ``out`` for a new run; refused when it holds a finished one, unless ``overwrite``."""
    with writing(Run(out)) as run:
        if run.model_file.exists() and not overwrite:
            raise CLIError(f"{out} already holds a trained run; use --resume {out}, --overwrite, or another --out")
        if overwrite and distributed.info().is_main:
            run.clear()
        yield run


def resumable_run(path: Path, kind: str) -> tuple[Run, dict[str, Any]]:
    """The run in ``path`` and the record of its last state, which must be a run of ``kind``."""
    run = Run(path)
    if not run.last_file.exists():
        raise CLIError(f"{path}: nothing to resume (no {LAST_FILE})")
    meta = read_metadata(run.last_file)
    found = meta.get("run_kind", "train")
    if found != kind:
        raise CLIError(f"{path} holds a {found} run; continue it with `flowforge {found} --resume {path}`")
    return run, meta


def load_run(path: str | Path, device: str = "cpu") -> tuple[Flow, dict[str, Any]]:
    """A trained flow and its checkpoint metadata (a ``CheckpointError`` when it cannot be read)."""
    return load_flow(path, resolve_device(device))


def run_dataset(meta: dict[str, Any], data: str | None) -> Dataset:
    """``data`` if given, else the data set the run was trained on (built-in names only)."""
    trained_on = meta.get("data", {}).get("name")
    name = data or trained_on
    if name is None:
        raise CLIError("this run does not record its data set; pass --data")
    if data is None and trained_on is not None and Path(trained_on).suffix:
        raise CLIError(f"the run was trained on the file {trained_on}; pass it explicitly with --data")
    return load_dataset(name, **data_options(meta, same_data=name == trained_on))


def data_options(meta: dict[str, Any], same_data: bool = True) -> dict[str, Any]:
    """Loader options recorded with the run: CSV context columns, a table's
    per-column dequantization, and (for the run's own data set only,
    ``same_data``) the files of a built-in image set."""
    recorded = meta.get("data", {})
    keys = RECORDED_OPTIONS if same_data else ("context_cols",)
    return {k: recorded[k] for k in keys if recorded.get(k)}


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2) + "\n")

