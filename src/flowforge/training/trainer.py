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
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from ..data import SAMPLE_ROWS, SPLITS, Dataset
from ..distributions import Flow
from ..models import fit_preprocessing
from . import distributed
from .checkpoint import (
    LAST_FILE,
    MODEL_FILE,
    atomic_write_text,
    load_training_state,
    load_weights,
    read_checkpoint,
    read_tensors,
    save_checkpoint,
    save_training_state,
)
from .metrics import as_model_input, evaluate_nll

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "fit", "nll_loss"]

LossFn = Callable[[Flow, Tensor, Tensor | None], Tensor]
METRICS_FIELDS = ["step", "train_loss", "val_nll", "val_bits_per_dim", "lr", "grad_norm", "skipped_steps", "elapsed_s"]


class TrainingError(RuntimeError):
    """Training could not go on (e.g. too many non-finite steps in a row)."""


def nll_loss(model: torch.nn.Module, x: Tensor, context: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood in nats per example (``model(x, c)`` is ``log_prob``)."""
    return -model(x, context).mean()


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Attributes:
        steps: optimizer steps in total.
        batch_size: examples per step; None or >= the training size = full batch.
        lr: Adam learning rate; ``schedule`` ``"constant"`` or ``"cosine"`` (to 0 at ``steps``).
        warmup: steps of linear learning-rate warm-up from ``lr / warmup`` (0 = none).
        weight_decay: Adam weight decay.
        ema: decay of an exponential moving average of the weights (None = none);
            validation, the best checkpoint and the returned flow use the average.
        seed: seeds the weights' RNG, the batch order and the dequantization noise.
        eval_every: validation NLL every this many steps (and at the end).
        checkpoint_every: write ``last.safetensors`` every this many steps (0 = at evals).
        patience: stop after this many evaluations without improvement (None = never).
        clip_grad: max gradient norm (None = no clipping).
        max_nonfinite: stop after this many non-finite steps in a row.
        device: torch device string.
        progress: show a progress bar.
        compile: run the model for the loss through ``torch.compile`` (opt-in); the
            first step, which compiles, is timed apart (``compile_s`` in the summary).
    """

    steps: int = 2000
    batch_size: int | None = None
    lr: float = 1e-3
    schedule: str = "constant"
    warmup: int = 0
    weight_decay: float = 0.0
    ema: float | None = None
    seed: int = 0
    eval_every: int = 100
    checkpoint_every: int = 0
    patience: int | None = None
    clip_grad: float | None = None
    max_nonfinite: int = 20
    device: str = "cpu"
    progress: bool = True
    compile: bool = False

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
        if self.warmup < 0 or self.warmup >= self.steps:
            raise ValueError(f"warmup must be in [0, steps={self.steps}), got {self.warmup!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be a decay in (0, 1), got {self.ema!r}")
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


def _lr_factor(schedule: str, step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or a cosine decay to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup, steps - warmup) / max(steps - warmup, 1)))
    return 1.0


def _ema(decay: float):
    """``multi_avg_fn`` for AveragedModel: EMA whose decay ramps up as ``min(decay, (1 + n) / (10 + n))``,
    so the average forgets the random initial weights within tens of steps."""

    def update(averaged: list[Tensor], current: list[Tensor], n: Tensor | int) -> None:
        n = int(n)
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + n) / (10 + n)))

    return update


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
    ``resume=True`` continues from ``out/last.safetensors`` exactly. Under
    ``torchrun`` (an initialized process group) the model is wrapped in DDP,
    each global batch is sharded over the ranks, and only rank 0 writes.

    ``loss(model, x, context)`` gets the module to call (the DDP wrapper under
    torchrun, whose call is ``flow.log_prob``).

    Returns:
        :class:`TrainResult`; the flow ends holding the best validation weights.
    """
    return _Run(flow, dataset, config or TrainConfig(), out, loss, meta).train(resume)


class _Run:
    """State of one training run (the body of :func:`fit`)."""

    def __init__(self, flow: Flow, dataset: Dataset, config: TrainConfig, out, loss: LossFn, meta):
        config.validate()
        self.flow, self.dataset, self.config, self.loss = flow, dataset, config, loss
        self.dist = distributed.info()
        self.out = Path(out) if out is not None else None
        self.writes = self.out is not None and self.dist.is_main
        self.device = torch.device(config.device)
        flow.to(self.device)
        self.params = [p for p in flow.parameters() if p.requires_grad]
        self.dtype = self.params[0].dtype if self.params else torch.float32
        # fused: one kernel per step for all parameters instead of about ten per parameter
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.params)
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
        self.data_gen = torch.Generator().manual_seed(config.seed)
        # a split too large for memory stays on disk: batches are read from it by index
        self.train_x = dataset.train.to(self.device, self.dtype) if isinstance(dataset.train, Tensor) else dataset.train
        c = dataset.context["train"]
        self.train_c = None if c is None else c.to(self.device, self.dtype)
        self.batches = _Batches(self.train_x.shape[0], config.batch_size, self.data_gen)
        if self.batches.batch_size == self.batches.n and not isinstance(self.train_x, Tensor):
            raise ValueError(f"{dataset.name}: a training split read from disk ({self.batches.n} rows) is read in "
                             "mini-batches; set batch_size (--batch-size)")
        self.record = {"data": dataset.describe(), "train_config": asdict(config), **(meta or {})}
        self.step, self.best_val, self.best_step, self.evals_since_best, self.skipped = 0, math.inf, 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.model = flow
        self.averaged: AveragedModel | None = None  # the weights' moving average (config.ema)
        self.best_state: dict[str, Tensor] | None = None  # kept in memory when no folder is written

    @property
    def scored(self) -> Flow:
        """The flow that is validated and checkpointed: the moving average when there is one."""
        return self.averaged.module if self.averaged is not None else self.flow

    def start_averaging(self, state: dict[str, Tensor] | None) -> None:
        if self.config.ema is None:
            return
        self.averaged = AveragedModel(self.flow, multi_avg_fn=_ema(self.config.ema))
        if state is not None:
            self.averaged.load_state_dict(state)

    def update_average(self) -> None:
        """Parameters are averaged; buffers (batch-norm statistics, fitted preprocessing) follow the flow."""
        if self.averaged is None:
            return
        self.averaged.update_parameters(self.flow)
        for mine, current in zip(self.averaged.module.buffers(), self.flow.buffers(), strict=True):
            mine.copy_(current)

    def global_batch(self) -> tuple[Tensor, Tensor | None]:
        idx = self.batches.next()
        xb = self.train_x[:] if idx is None else self.train_x[idx.to(self.device)]
        cb = self.train_c if idx is None or self.train_c is None else self.train_c[idx.to(self.device)]
        xb = self.dataset.dequantize(xb.to(self.device, self.dtype), self.data_gen)
        return as_model_input(self.flow, xb), cb

    def restore(self) -> None:
        if self.out is None or not (self.out / LAST_FILE).exists():
            raise TrainingError(f"nothing to resume: {self.out}/{LAST_FILE} does not exist")
        rng, state = load_training_state(self.out / LAST_FILE, self.flow, self.optimizer)
        self.data_gen.set_state(rng["data"])
        torch.set_rng_state(rng["torch"])
        self.batches.perm, self.batches.pos = rng["perm"], int(state["pos"])
        self.step, self.best_val, self.best_step = int(state["step"]), float(state["best_val"]), int(state["best_step"])
        self.evals_since_best, self.skipped = int(state["evals_since_best"]), int(state["skipped_total"])
        self.history = _read_metrics(self.out, self.step)
        self.start_averaging(read_tensors(self.out / LAST_FILE, "ema.") if self.config.ema is not None else None)

    def start_fresh(self) -> None:
        torch.manual_seed(self.config.seed)
        fit_preprocessing(self.flow, as_model_input(self.flow, self.train_x[:SAMPLE_ROWS].to(self.device, self.dtype)))
        if self.flow.transform.is_data_dependent:
            xb, cb = self.global_batch()
            self.flow.transform.initialize(xb, cb)
        if hasattr(self.flow.base, "fit"):
            self.fit_base()
        self.start_averaging(None)

    @torch.no_grad()
    def fit_base(self, max_rows: int = 50_000) -> None:
        """A data-initialized base (Gaussian mixture) is fitted once on the latents of (a seeded
        subsample of ``max_rows``) training rows."""
        n = self.train_x.shape[0]
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))[:max_rows]
        x = self.dataset.dequantize(self.train_x[rows.to(self.device)].to(self.device, self.dtype), self.data_gen)
        x = as_model_input(self.flow, x)
        c = None if self.train_c is None else self.train_c[rows.to(self.device)]
        self.flow.base.fit(self.flow.encode(x, c), seed=self.config.seed)

    def save_last(self) -> None:
        if not self.writes:
            return
        rng = {"data": self.data_gen.get_state(), "torch": torch.get_rng_state(), "perm": self.batches.perm}
        state = {
            "step": self.step,
            "pos": self.batches.pos,
            "best_val": self.best_val,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "skipped_total": self.skipped,
        }
        extra = {} if self.averaged is None else {f"ema.{k}": v for k, v in self.averaged.state_dict().items()}
        save_training_state(self.out / LAST_FILE, self.flow, self.optimizer, rng, {**self.record, **state}, extra)

    def optimizer_step(self) -> tuple[float, float]:
        """One update; returns ``(loss, grad norm)``; non-finite ones skip the update."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg.schedule, self.step, cfg.steps, cfg.warmup)
        xb, cb = self.global_batch()
        xb, cb = self.dist.shard(xb), self.dist.shard(cb)
        self.optimizer.zero_grad(set_to_none=True)
        value = self.loss(self.model, xb, cb)
        value.backward()
        value = self.dist.mean(float(value.detach()), self.device)
        # gradients are all-reduced, so every rank sees the same norm and skips together
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_grad or math.inf))
        if math.isfinite(value) and math.isfinite(grad_norm):
            self.optimizer.step()
            self.update_average()
        return value, grad_norm

    def evaluate(self, running: list[float], grad_norm: float, t_start: float) -> dict[str, Any]:
        ds = self.dataset
        val = evaluate_nll(self.scored, ds.val, ds, ds.context["val"])
        self.flow.train()
        row = {
            "step": self.step,
            "train_loss": sum(running) / len(running) if running else float("nan"),
            "val_nll": val["nll"],
            "val_bits_per_dim": val["bits_per_dim"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "grad_norm": grad_norm,
            "skipped_steps": self.skipped,
            "elapsed_s": time.perf_counter() - t_start,
        }
        self.history.append(row)
        if val["nll"] < self.best_val:
            self.best_val, self.best_step, self.evals_since_best = val["nll"], self.step, 0
            if self.writes:
                meta = {**self.record, "step": self.step, "val_nll": self.best_val}
                save_checkpoint(self.out / MODEL_FILE, self.scored, meta)
            elif self.out is None:
                self.best_state = {k: v.detach().clone() for k, v in self.scored.state_dict().items()}
        else:
            self.evals_since_best += 1
        if self.writes:
            _write_metrics(self.out, self.history)
        return row

    def train(self, resume: bool) -> TrainResult:
        cfg = self.config
        if resume:
            self.restore()
        else:
            self.start_fresh()
        if self.dist.active:
            ids = None if self.device.type == "cpu" else [self.device.index]
            self.model = torch.nn.parallel.DistributedDataParallel(self.flow, device_ids=ids)
        if cfg.compile:
            self.model = torch.compile(self.model)
        if self.writes:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_metrics(self.out, self.history)
        checkpoint_every = cfg.checkpoint_every or cfg.eval_every
        running: list[float] = []
        nonfinite_run, grad_norm, stopped_early = 0, float("nan"), False
        step_times: list[float] = []
        compile_s = None
        t_start = time.perf_counter()
        self.flow.train()
        show = cfg.progress and self.dist.is_main
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not show, desc="train", dynamic_ncols=True)
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            value, grad_norm = self.optimizer_step()
            if math.isfinite(value) and math.isfinite(grad_norm):
                nonfinite_run = 0
                running.append(value)
            else:
                nonfinite_run += 1
                self.skipped += 1
                if nonfinite_run >= cfg.max_nonfinite:
                    self.save_last()
                    bar.close()
                    raise TrainingError(
                        f"stopped at step {self.step}: {nonfinite_run} non-finite losses or gradients in a row "
                        f"(loss {value}, grad norm {grad_norm}); the weights were never updated with them, the "
                        f"last good state is in {self.out or 'memory'}; lower --lr or set --clip-grad"
                    )
            self.step += 1
            if cfg.compile and compile_s is None:
                compile_s = time.perf_counter() - t0  # the first step compiles: not a step time
            else:
                step_times.append(time.perf_counter() - t0)
            bar.update(1)
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                row = self.evaluate(running, grad_norm, t_start)
                running = []
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_nll']:.4f}")
                stopped_early = cfg.patience is not None and self.evals_since_best >= cfg.patience
            if self.step % checkpoint_every == 0 or self.step == cfg.steps or stopped_early:
                self.save_last()
            if stopped_early:
                break
        bar.close()
        return TrainResult(
            summary=self.finish(time.perf_counter() - t_start, step_times, stopped_early, compile_s),
            history=self.history,
        )

    def finish(self, wall: float, step_times: list[float], stopped_early: bool, compile_s: float | None
               ) -> dict[str, Any]:
        """Load the best weights, score every split, write ``summary.json``."""
        if self.dist.active:
            torch.distributed.barrier()  # rank 0 has finished writing the best weights
        if self.out is not None and (self.out / MODEL_FILE).exists():
            _, tensors = read_checkpoint(self.out / MODEL_FILE)
            load_weights(self.flow, tensors, self.out / MODEL_FILE)
        elif self.best_state is not None:
            self.flow.load_state_dict(self.best_state)
        self.flow.eval()
        ds = self.dataset
        scores = {
            s: evaluate_nll(self.flow, ds.split(s), ds, ds.context[s], noise_draws=1 if s == "train" else 5)
            for s in SPLITS
        }
        summary = {
            "model": self.flow.config,
            "data": self.record["data"],
            "steps": self.step,
            "best_step": self.best_step,
            "stopped_early": stopped_early,
            "skipped_steps": self.skipped,
            **{f"{s}_nll": scores[s]["nll"] for s in SPLITS},
            **{f"{s}_bits_per_dim": scores[s]["bits_per_dim"] for s in SPLITS},
            "test_discrete_nll_bound": scores["test"]["discrete_nll_bound"],
            "wall_time_s": wall,
            "ms_per_step_median": 1000 * sorted(step_times)[len(step_times) // 2] if step_times else None,
            "compile_s": compile_s,
            "parameters": sum(p.numel() for p in self.params),
            "world_size": self.dist.world,
        }
        if self.writes:
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    lines = [",".join(METRICS_FIELDS)]
    for row in history:
        lines.append(
            ",".join(
                "" if row[k] is None else f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k])
                for k in METRICS_FIELDS
            )
        )
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
