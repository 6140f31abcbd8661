"""TensorBoard adapter: a training callback that logs what ``metrics.csv`` holds,
plus pictures of samples, at every evaluation.

    fit(flow, dataset, config, callbacks=[TensorBoardLogger("runs/tb", dataset)])

Scalars go under ``metrics/<field>`` at the row's step; pictures under
``samples`` (image data: a grid of samples; vectors: data next to samples, the
first two coordinates). Requires the ``[tensorboard]`` extra; the vector
pictures need matplotlib.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from torch.utils.tensorboard import SummaryWriter
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("flowforge.tensorboard needs TensorBoard: pip install 'flowforge[tensorboard]'") from e

import torch

from .data import Dataset
from .distributions import Flow

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger:
    """Callback for :func:`flowforge.training.fit`: ``logger(row, flow)`` after each evaluation.

    Args:
        log_dir: the TensorBoard folder (``tensorboard --logdir log_dir``).
        dataset: the data being fitted (their test split is drawn next to the
            samples and gives conditional flows their contexts); None = scalars only.
        samples: how many samples to draw for a picture (images: at most 64).
        seed: the pictures' noise, fixed so consecutive pictures differ only by training;
            drawn under a forked RNG, so logging never changes the training run.
    """

    def __init__(self, log_dir: str | Path, dataset: Dataset | None = None, samples: int = 1000, seed: int = 0):
        self.writer = SummaryWriter(str(log_dir))
        self.dataset, self.samples, self.seed = dataset, samples, seed

    def __call__(self, row: dict[str, Any], flow: Flow) -> None:
        step = int(row["step"])
        for key, value in row.items():  # the row is a line of metrics.csv
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"metrics/{key}", value, step)
        if self.dataset is not None:
            self._pictures(flow, step)
        self.writer.flush()

    @torch.no_grad()
    def _pictures(self, flow: Flow, step: int) -> None:
        ds = self.dataset
        n = min(self.samples, 64) if ds.kind == "image" else min(self.samples, len(ds.test))
        if ds.kind == "vector" and (n == 0 or ds.test[0].numel() < 2):
            return  # a scatter needs two coordinates and some rows to compare with
        param = next(flow.parameters())
        context = ds.context["test"]
        context = None if context is None else context[:n].to(param.device, param.dtype)
        was_training = flow.training
        flow.eval()
        with torch.random.fork_rng(devices=[param.device] if param.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            x = flow.sample(n, context).cpu()
        flow.train(was_training)
        if ds.kind == "image":
            from .viz.images import image_grid

            grid = torch.as_tensor(image_grid(x.reshape(n, *ds.event_shape), ds.levels or 256))
            self.writer.add_image("samples", grid, step, dataformats="HW" if grid.ndim == 2 else "HWC")
        else:
            from .viz import data_vs_samples_figure

            labels = ds.labels["test"]
            labels = None if labels is None else labels[:n]
            figure = data_vs_samples_figure(ds.test[:n].flatten(1), x.flatten(1), labels)
            self.writer.add_figure("samples", figure, step)

    def close(self) -> None:
        self.writer.close()
