"""The fit loop: exact maximum likelihood (or any loss) with validation, best
checkpoint, early stopping, gradient clipping, a non-finite guard, resume,
a progress bar and a metrics log.

Per step: ``loss = mean_i -log p(x_i | c_i)`` on a mini-batch (dequantized
when the data are quantized), Adam update unless the loss or a gradient is
non-finite, in which case the step is skipped and counted.
"""
from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..data import Dataset, dequantize
from ..distributions import Flow
from ..models import fit_preprocessing
from .checkpoint import (
    LAST_FILE,
    MODEL_FILE,
    atomic_write_text,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from .metrics import as_model_input, evaluate_nll

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "fit", "nll_loss"]

LossFn = Callable[[Flow, Tensor, Tensor | None], Tensor]
METRICS_FIELDS = ["step", "train_loss", "val_nll", "val_bits_per_dim", "lr", "grad_norm", "skipped_steps", "elapsed_s"]


class TrainingError(RuntimeError):
    """Training could not go on (e.g. too many non-finite steps in a row)."""


def nll_loss(flow: Flow, x: Tensor, context: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood in nats per example."""
    return -flow.log_prob(x, context).mean()


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Attributes:
        steps: optimizer steps in total.
        batch_size: examples per step; None or >= the training size = full batch.
        lr: Adam learning rate; ``schedule`` ``"constant"`` or ``"cosine"`` (to 0).
        weight_decay: Adam weight decay.
        seed: seeds the weights' RNG, the batch order and the dequantization noise.
        eval_every: validation NLL every this many steps (and at the end).
        checkpoint_every: write ``last.safetensors`` every this many steps (0 = at evals).
        patience: stop after this many evaluations without improvement (None = never).
        clip_grad: max gradient norm (None = no clipping).
        max_nonfinite: stop after this many non-finite steps in a row.
        device: torch device string.
        progress: show a progress bar.
    """

    steps: int = 2000
    batch_size: int | None = None
    lr: float = 1e-3
    schedule: str = "constant"
    weight_decay: float = 0.0
    seed: int = 0
    eval_every: int = 100
    checkpoint_every: int = 0
    patience: int | None = None
    clip_grad: float | None = None
    max_nonfinite: int = 20
    device: str = "cpu"
    progress: bool = True

    def validate(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "lr": self.lr > 0 and math.isfinite(self.lr),
            "eval_every": self.eval_every >= 1,
            "max_nonfinite": self.max_nonfinite >= 1,
        }
        if self.batch_size is not None:
            checks["batch_size"] = self.batch_size >= 1
        if self.clip_grad is not None:
            checks["clip_grad"] = self.clip_grad > 0
        if self.patience is not None:
            checks["patience"] = self.patience >= 1
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(", ".join(f"{k} must be positive, got {getattr(self, k)!r}" for k in bad))
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose constant or cosine")


@dataclass
class TrainResult:
    """What a run produced; ``summary`` is also written as ``summary.json``."""

    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


class _Batches:
    """Seeded epochs of shuffled indices; full batch when ``batch_size >= n``."""

    def __init__(self, n: int, batch_size: int | None, generator: torch.Generator):
        self.n, self.gen = n, generator
        self.batch_size = n if batch_size is None or batch_size >= n else batch_size
        self.perm = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self) -> Tensor | None:
        if self.batch_size == self.n:
            return None  # whole set, no indexing
        if self.pos + self.batch_size > self.n:  # drop the last partial batch of an epoch
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


def _lr_factor(schedule: str, step: int, steps: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    return 1.0


def fit(
    flow: Flow,
    dataset: Dataset,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    loss: LossFn = nll_loss,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``flow`` on ``dataset.train``, validating on ``dataset.val``.

    On a fresh start the flow's preprocessing is fitted on the training split
    and data-dependent layers (ActNorm) are initialized on the first batch.
    With ``out``, writes ``model.safetensors`` (best validation weights),
    ``last.safetensors`` (resume state), ``metrics.csv`` and ``summary.json``;
    ``resume=True`` continues from ``out/last.safetensors`` exactly.

    Returns:
        :class:`TrainResult`; the flow ends holding the best validation weights.
    """
    config = config or TrainConfig()
    config.validate()
    out = Path(out) if out is not None else None
    device = torch.device(config.device)
    if resume and (out is None or not (out / LAST_FILE).exists()):
        raise TrainingError(f"nothing to resume: {out}/{LAST_FILE} does not exist")
    data_gen = torch.Generator().manual_seed(config.seed)
    train_x = dataset.train
    train_c = dataset.context["train"]
    batches = _Batches(train_x.shape[0], config.batch_size, data_gen)
    flow.to(device)
    params = [p for p in flow.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    dtype = params[0].dtype if params else torch.float32
    train_x, train_c = train_x.to(device, dtype), None if train_c is None else train_c.to(device, dtype)
    record = {"data": dataset.describe(), "train_config": asdict(config), **(meta or {})}

    def batch() -> tuple[Tensor, Tensor | None]:
        idx = batches.next()
        xb = train_x if idx is None else train_x[idx.to(device)]
        cb = train_c if idx is None or train_c is None else train_c[idx.to(device)]
        if dataset.levels:
            xb = dequantize(xb, data_gen)
        return as_model_input(flow, xb), cb

    step, best_val, best_step, evals_since_best, skipped_total = 0, math.inf, 0, 0, 0
    history: list[dict[str, Any]] = []
    if resume:
        rng, state = load_training_state(out / LAST_FILE, flow, optimizer)
        data_gen.set_state(rng["data"])
        torch.set_rng_state(rng["torch"])
        batches.perm, batches.pos = rng["perm"], int(state["pos"])
        step, best_val, best_step = int(state["step"]), float(state["best_val"]), int(state["best_step"])
        evals_since_best, skipped_total = int(state["evals_since_best"]), int(state["skipped_total"])
        history = _read_metrics(out, step)
    else:
        torch.manual_seed(config.seed)
        fit_preprocessing(flow, as_model_input(flow, train_x))
        if flow.transform.is_data_dependent:
            xb, cb = batch()
            flow.transform.initialize(xb, cb)

    def save_last() -> None:
        if out is None:
            return
        rng = {"data": data_gen.get_state(), "torch": torch.get_rng_state(), "perm": batches.perm}
        state = {
            "step": step,
            "pos": batches.pos,
            "best_val": best_val,
            "best_step": best_step,
            "evals_since_best": evals_since_best,
            "skipped_total": skipped_total,
        }
        save_training_state(out / LAST_FILE, flow, optimizer, rng, {**record, **state})

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _write_metrics(out, history)
    checkpoint_every = config.checkpoint_every or config.eval_every
    running, running_n, nonfinite_run, grad_norm = 0.0, 0, 0, float("nan")
    t_start = time.perf_counter()
    step_times: list[float] = []
    flow.train()
    bar = tqdm(total=config.steps, initial=step, disable=not config.progress, desc="train", dynamic_ncols=True)
    stopped_early = False
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(config.schedule, step, config.steps)
        t0 = time.perf_counter()
        xb, cb = batch()
        optimizer.zero_grad(set_to_none=True)
        value = loss(flow, xb, cb)
        value.backward()
        value = float(value.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.clip_grad or math.inf))
        if math.isfinite(value) and math.isfinite(grad_norm):
            optimizer.step()
            nonfinite_run = 0
            running += value
            running_n += 1
        else:
            nonfinite_run += 1
            skipped_total += 1
            if nonfinite_run >= config.max_nonfinite:
                save_last()
                bar.close()
                raise TrainingError(
                    f"stopped at step {step}: {nonfinite_run} non-finite losses or gradients in a row "
                    f"(loss {value}, grad norm {grad_norm}); the weights were never updated with them, "
                    f"the last good state is in {out or 'memory'}; lower --lr or set --clip-grad"
                )
        step += 1
        step_times.append(time.perf_counter() - t0)
        bar.update(1)
        if step % config.eval_every == 0 or step == config.steps:
            val = evaluate_nll(flow, dataset.val, dataset, dataset.context["val"])
            flow.train()
            row = {
                "step": step,
                "train_loss": running / running_n if running_n else float("nan"),
                "val_nll": val["nll"],
                "val_bits_per_dim": val["bits_per_dim"],
                "lr": optimizer.param_groups[0]["lr"],
                "grad_norm": grad_norm,
                "skipped_steps": skipped_total,
                "elapsed_s": time.perf_counter() - t_start,
            }
            history.append(row)
            running, running_n = 0.0, 0
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{val['nll']:.4f}")
            if val["nll"] < best_val:
                best_val, best_step, evals_since_best = val["nll"], step, 0
                if out is not None:
                    save_checkpoint(out / MODEL_FILE, flow, {**record, "step": step, "val_nll": best_val})
            else:
                evals_since_best += 1
            if out is not None:
                _write_metrics(out, history)
            if config.patience is not None and evals_since_best >= config.patience:
                stopped_early = True
        if step % checkpoint_every == 0 or step == config.steps or stopped_early:
            save_last()
        if stopped_early:
            break
    bar.close()
    wall = time.perf_counter() - t_start
    if out is not None and (out / MODEL_FILE).exists():
        from .checkpoint import _load_weights, _read_tensors

        _load_weights(flow, _read_tensors(out / MODEL_FILE), out / MODEL_FILE)
    flow.eval()
    scores = {
        s: evaluate_nll(flow, dataset.split(s), dataset, dataset.context[s], noise_draws=1 if s == "train" else 5)
        for s in ("train", "val", "test")
    }
    summary = {
        "model": flow.config,
        "data": record["data"],
        "steps": step,
        "best_step": best_step,
        "stopped_early": stopped_early,
        "skipped_steps": skipped_total,
        "train_nll": scores["train"]["nll"],
        "val_nll": scores["val"]["nll"],
        "test_nll": scores["test"]["nll"],
        "train_bits_per_dim": scores["train"]["bits_per_dim"],
        "val_bits_per_dim": scores["val"]["bits_per_dim"],
        "test_bits_per_dim": scores["test"]["bits_per_dim"],
        "wall_time_s": wall,
        "ms_per_step_median": 1000 * sorted(step_times)[len(step_times) // 2] if step_times else None,
        "parameters": sum(p.numel() for p in params),
    }
    if out is not None:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return TrainResult(summary=summary, history=history)


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    lines = [",".join(METRICS_FIELDS)]
    for row in history:
        lines.append(",".join("" if row[k] is None else f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k]) for k in METRICS_FIELDS))
    atomic_write_text(out / "metrics.csv", "\n".join(lines) + "\n")


def _read_metrics(out: Path, up_to_step: int) -> list[dict[str, Any]]:
    path = out / "metrics.csv"
    if not path.exists():
        return []
    rows = []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            parsed = {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            parsed["step"] = int(parsed["step"])
            parsed["skipped_steps"] = int(parsed["skipped_steps"])
            if parsed["step"] <= up_to_step:
                rows.append(parsed)
    return rows
