"""Shared pieces of the sub-commands: errors, run loading, argument types."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from ..data import DataError, Dataset, load_dataset
from ..distributions import Flow
from ..training.checkpoint import CheckpointError, atomic_write_text, load_flow

__all__ = [
    "CLIError",
    "load_run",
    "run_dataset",
    "add_device_arg",
    "write_json",
    "positive_int",
    "positive_float",
    "examples",
    "resolve_device",
]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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


def load_run(path: str | Path, device: str = "cpu") -> tuple[Flow, dict[str, Any]]:
    """A trained flow and its checkpoint metadata, or a :class:`CLIError`."""
    try:
        return load_flow(path, resolve_device(device))
    except CheckpointError as e:
        raise CLIError(str(e)) from None


def run_dataset(meta: dict[str, Any], data: str | None) -> Dataset:
    """``data`` if given, else the data set the run was trained on (built-in names only)."""
    trained_on = meta.get("data", {}).get("name")
    name = data or trained_on
    if name is None:
        raise CLIError("this run does not record its data set; pass --data")
    if data is None and trained_on is not None and Path(trained_on).suffix:
        raise CLIError(f"the run was trained on the file {trained_on}; pass it explicitly with --data")
    return load_dataset(name, **data_options(meta, same_data=name == trained_on))


#: Loader options a run records in its metadata (``Dataset.info``) so that later commands reload the same data.
RECORDED_OPTIONS = ("context_cols", "path", "dequantize")


def data_options(meta: dict[str, Any], same_data: bool = True) -> dict[str, Any]:
    """Loader options recorded with the run: CSV context columns, a table's
    per-column dequantization, and (for the run's own data set only,
    ``same_data``) the files of a built-in image set."""
    recorded = meta.get("data", {})
    keys = RECORDED_OPTIONS if same_data else ("context_cols",)
    return {k: recorded[k] for k in keys if recorded.get(k)}


def load_data(name: str, **options: Any) -> Dataset:
    """``load_dataset`` that records its options in ``Dataset.info`` (hence in checkpoints)."""
    dataset = load_dataset(name, **options)
    for key in RECORDED_OPTIONS:  # what the loader resolved itself (dequantize="auto" -> widths) wins
        if options.get(key):
            dataset.info.setdefault(key, options[key])
    return dataset


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2) + "\n")


USER_ERRORS = (CLIError, DataError, CheckpointError)
