"""Shared pieces of the image sub-commands (interpolate, manipulate, inpaint, sample --grid):
load a run with its images, check them against the checkpoint, pick the output folder."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data import SPLITS, Dataset
from ..data.images import check_images
from ..distributions import Flow
from ..training.model_input import model_input
from .common import CLIError, add_device_arg, load_run, run_dataset

__all__ = ["ImageRun", "add_image_args", "load_image_run", "run_levels", "require_image_flow"]


@dataclass
class ImageRun:
    """A trained image flow, its data and where its pictures go."""

    flow: Flow
    meta: dict[str, Any]
    dataset: Dataset
    levels: int
    out: Path

    def images(self, split: str) -> Tensor:
        """The split's images at the bin centres ``v + 1/2``, in the flow's dtype and device."""
        return model_input(self.flow, self.dataset.split(split), self.dataset, noise="center")


def add_image_args(p: argparse.ArgumentParser) -> None:
    """RUN, --data, --split, --out, --seed, --device."""
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file) of an image flow")
    p.add_argument("--data", help="image data set to use (default: the run's own)")
    p.add_argument("--split", choices=SPLITS, default="test", help="split to take images from (default: test)")
    p.add_argument("--out", type=Path, help="folder for the pictures (default: the run folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_device_arg(p)


def require_image_flow(flow: Flow, what: str, meta: dict[str, Any] | None = None) -> tuple[int, ...]:
    """The (C, H, W) shape of the flow's images: its event shape, or, for a vector
    model trained on flattened images (MAF on digits), the shape of its training data."""
    shape = tuple(flow.event_shape)
    data_shape = tuple((meta or {}).get("data", {}).get("event_shape") or ())
    if len(shape) != 3 and len(data_shape) == 3 and torch.Size(data_shape).numel() == flow.event_shape.numel():
        shape = data_shape
    if len(shape) != 3:
        raise CLIError(f"{what} needs a flow trained on images (C, H, W); this one models events of shape {shape}")
    return shape


def run_levels(meta: dict[str, Any]) -> int:
    """Pixel levels of the run's training data (256 when not recorded)."""
    return int(meta.get("data", {}).get("levels") or 256)


def load_image_run(args, what: str) -> ImageRun:
    """Load RUN and its image data set, checking that the images fit the checkpoint."""
    flow, meta = load_run(args.run_dir, args.device)
    shape = require_image_flow(flow, what)
    dataset = run_dataset(meta, args.data)
    levels = run_levels(meta)
    if dataset.kind != "image" or dataset.levels is None:
        raise CLIError(
            f"{what} needs image data; {dataset.name} holds {dataset.kind} data of shape {dataset.event_shape}"
        )
    for split in SPLITS:
        check_images(dataset.split(split), dataset.levels, f"{dataset.name} [{split}]", shape)
    if dataset.levels != levels:
        raise CLIError(
            f"{dataset.name} has {dataset.levels} pixel levels but the model was trained on {levels}-level images"
        )
    out = args.out or (args.run_dir if args.run_dir.is_dir() else args.run_dir.parent)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    return ImageRun(flow.eval(), meta, dataset, levels, out)
