"""The one training engine: any :class:`~flowforge.training.objectives.Objective`, with validation,
best and last checkpoints, exact resume, early stopping, gradient clipping, a non-finite guard,
a learning-rate schedule, a weight average, a progress bar and a metrics log.

Per step: ``loss = objective.loss(model, step)``, Adam update unless the loss or a gradient is
non-finite, in which case the step is skipped and counted. ``fit`` is maximum likelihood on a data
set; reverse KL, the VAE's ELBO and distillation (:mod:`flowforge.inference`) run on the same loop.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from ..data import Dataset
from ..distributions import Flow
from ..errors import ConfigError, FlowforgeError
from . import distributed
from .checkpoint import (
    load_training_state,
    load_weights,
    read_checkpoint,
    read_tensors,
    save_checkpoint,
    save_training_state,
)
from .objectives import MaximumLikelihood, Objective, nll_loss
from .run import Run

__all__ = ["EvalCallback", "TrainConfig", "TrainResult", "TrainingError", "fit", "nll_loss", "train"]

#: Called after each evaluation with the metrics row and the module it scored (e.g. a TensorBoard logger).
EvalCallback = Callable[[dict[str, Any], nn.Module], None]

RUN_FIELDS = ["step", "train_loss"]
STEP_FIELDS = ["lr", "grad_norm", "skipped_steps", "elapsed_s"]


class TrainingError(FlowforgeError, RuntimeError):
    """Training could not go on (too many non-finite steps in a row: the learning rate or data are at fault)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (and :func:`fit`).

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
        device: torch device string; None: the module's own device.
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
    device: str | None = None
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
            raise ConfigError(", ".join(f"{k} must be positive, got {getattr(self, k)!r}" for k in bad))
        if self.warmup < 0 or self.warmup >= self.steps:
            raise ConfigError(f"warmup must be in [0, steps={self.steps}), got {self.warmup!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"ema must be a decay in (0, 1), got {self.ema!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose constant or cosine")


@dataclass
class TrainResult:
    """What a run produced: ``summary`` (also written as ``summary.json``), the evaluations
    (``history``, the rows of ``metrics.csv``) and the loss of every step of this call (``losses``)."""

    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


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
    loss=nll_loss,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    callbacks: Sequence[EvalCallback] = (),
) -> TrainResult:
    """Train ``flow`` on ``dataset.train`` by maximum likelihood, validating on ``dataset.val``
    (:class:`~flowforge.training.objectives.MaximumLikelihood` on :func:`train`).

    ``loss(model, x, context)`` gets the module to call (the DDP wrapper under
    torchrun, whose call is ``flow.log_prob``).
    """
    return train(MaximumLikelihood(flow, dataset, loss), config, out, resume, meta, callbacks)


def train(
    objective: Objective,
    config: TrainConfig | None = None,
    out: str | Path | Run | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    callbacks: Sequence[EvalCallback] = (),
) -> TrainResult:
    """Minimize ``objective`` with Adam.

    With ``out``, holds the run folder's lock and writes ``model.safetensors``
    (best validation weights), ``last.safetensors`` (resume state),
    ``metrics.csv`` and ``summary.json``; ``resume=True`` continues from
    ``out/last.safetensors`` exactly. Under ``torchrun`` (an initialized process
    group) the module is wrapped in DDP and only rank 0 writes. Each of
    ``callbacks`` is called as ``callback(row, module)`` after every evaluation
    (rank 0 only), ``row`` being the new ``metrics.csv`` row.

    Returns:
        :class:`TrainResult`; ``objective.module`` ends holding the best validation weights.
    """
    training = _Training(objective, config or TrainConfig(), out, meta, callbacks)
    if not training.writes:
        return training.run(resume)
    with training.folder.lock():
        return training.run(resume)


class _Training:
    """State of one call of :func:`train`."""

    def __init__(self, objective: Objective, config: TrainConfig, out, meta, callbacks: Sequence[EvalCallback]):
        config.validate()
        self.objective, self.config, self.callbacks = objective, config, list(callbacks)
        self.module = objective.module
        self.dist = distributed.info()
        if self.dist.active and not objective.distributed:
            raise ConfigError(f"the {objective.kind} objective does not run under torchrun; start it as one process")
        self.folder = None if out is None else out if isinstance(out, Run) else Run(out)
        self.writes = self.folder is not None and self.dist.is_main
        own = next(self.module.parameters(), torch.empty(0)).device
        self.device = own if config.device is None else torch.device(config.device)
        self.module.to(self.device)
        objective.setup(self.device, config.batch_size, config.seed)
        self.params: list[Tensor] = []
        self.optimizer: torch.optim.Optimizer | None = None  # built once the parameters are final (make_optimizer)
        self.record = {
            "run_kind": objective.kind, **objective.record(), "train_config": asdict(config), **(meta or {})
        }
        self.fields = [*RUN_FIELDS, *objective.columns, *STEP_FIELDS]
        self.step, self.best_val, self.best_step, self.evals_since_best, self.skipped = 0, math.inf, 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.losses: list[float] = []  # every step of this call
        self.model: nn.Module = self.module
        self.averaged: AveragedModel | None = None  # the weights' moving average (config.ema)
        self.best_state: dict[str, Tensor] | None = None  # kept in memory when no folder is written

    def make_optimizer(self) -> None:
        """Adam over the module's parameters, as they are after starting or restoring (starting may resize
        the model: a mixture base sized on validation)."""
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        # fused: one kernel per step for all parameters instead of about ten per parameter
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.params)
        cfg = self.config
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)

    @property
    def scored(self) -> nn.Module:
        """The module that is validated and checkpointed: the moving average when there is one."""
        return self.averaged.module if self.averaged is not None else self.module

    def start_averaging(self, state: dict[str, Tensor] | None) -> None:
        if self.config.ema is None:
            return
        self.averaged = AveragedModel(self.module, multi_avg_fn=_ema(self.config.ema))
        if state is not None:
            self.averaged.load_state_dict(state)

    def update_average(self) -> None:
        """After each update: the parameters' moving average."""
        if self.averaged is not None:
            self.averaged.update_parameters(self.module)

    def sync_average_buffers(self) -> None:
        """Before the average is used: its buffers (batch-norm statistics, fitted preprocessing)
        are the module's, not averaged (copied here, not on every step)."""
        if self.averaged is not None:
            for mine, current in zip(self.averaged.module.buffers(), self.module.buffers(), strict=True):
                mine.copy_(current)

    def restore(self) -> None:
        last = None if self.folder is None else self.folder.last_file
        if last is None or not last.exists():
            raise TrainingError(f"nothing to resume: {last} does not exist")
        self.make_optimizer()
        rng, state = load_training_state(last, self.module, self.optimizer)
        torch.set_rng_state(rng.pop("torch"))
        self.objective.load_rng_state(rng, state)
        self.step, self.best_val, self.best_step = int(state["step"]), float(state["best_val"]), int(state["best_step"])
        self.evals_since_best, self.skipped = int(state["evals_since_best"]), int(state["skipped_total"])
        self.history = self.folder.read_metrics(self.step)
        self.start_averaging(read_tensors(last, "ema.") if self.config.ema is not None else None)

    def start_fresh(self) -> None:
        torch.manual_seed(self.config.seed)
        self.objective.start()
        self.make_optimizer()
        self.start_averaging(None)

    def save_last(self) -> None:
        if not self.writes:
            return
        tensors, scalars = self.objective.rng_state()
        state = {
            "step": self.step,
            "best_val": self.best_val,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "skipped_total": self.skipped,
            **scalars,
        }
        extra = {} if self.averaged is None else {f"ema.{k}": v for k, v in self.averaged.state_dict().items()}
        rng = {"torch": torch.get_rng_state(), **tensors}
        save_training_state(self.folder.last_file, self.module, self.optimizer, rng, {**self.record, **state}, extra)

    def optimizer_step(self) -> tuple[float, float]:
        """One update; returns ``(loss, grad norm)``; non-finite ones skip the update."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg.schedule, self.step, cfg.steps, cfg.warmup)
        self.optimizer.zero_grad(set_to_none=True)
        value = self.objective.loss(self.model, self.step)
        value.backward()
        value = self.dist.mean(float(value.detach()), self.device)
        # gradients are all-reduced, so every rank sees the same norm and skips together
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_grad or math.inf))
        if math.isfinite(value) and math.isfinite(grad_norm):
            self.optimizer.step()
            self.update_average()
        return value, grad_norm

    def evaluate(self, running: list[float], grad_norm: float, t_start: float) -> dict[str, Any]:
        self.sync_average_buffers()
        figures = self.objective.validate(self.scored)
        self.module.train()
        row = {
            "step": self.step,
            "train_loss": sum(running) / len(running) if running else float("nan"),
            **figures,
            "lr": self.optimizer.param_groups[0]["lr"],
            "grad_norm": grad_norm,
            "skipped_steps": self.skipped,
            "elapsed_s": time.perf_counter() - t_start,
        }
        self.history.append(row)
        val = figures[self.objective.columns[0]]
        if val < self.best_val:
            self.best_val, self.best_step, self.evals_since_best = val, self.step, 0
            if self.writes:
                meta = {**self.record, "step": self.step, self.objective.columns[0]: self.best_val}
                save_checkpoint(self.folder.model_file, self.scored, meta)
            elif self.folder is None:
                self.best_state = {k: v.detach().clone() for k, v in self.scored.state_dict().items()}
        else:
            self.evals_since_best += 1
        if self.writes:
            self.folder.write_metrics(self.history, self.fields)
        if self.dist.is_main:
            for callback in self.callbacks:
                callback(row, self.scored)  # the weights the row scored (the average, with EMA)
        return row

    def run(self, resume: bool) -> TrainResult:
        from tqdm.auto import tqdm

        cfg = self.config
        if resume:
            self.restore()
        else:
            self.start_fresh()
        if self.dist.active:
            ids = None if self.device.type == "cpu" else [self.device.index]
            self.model = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        if cfg.compile:
            self.model = torch.compile(self.model)
        if self.writes:
            self.folder.write_metrics(self.history, self.fields)
        checkpoint_every = cfg.checkpoint_every or cfg.eval_every
        running: list[float] = []
        nonfinite_run, grad_norm, stopped_early = 0, float("nan"), False
        step_times: list[float] = []
        compile_s = None
        t_start = time.perf_counter()
        self.module.train()
        show = cfg.progress and self.dist.is_main
        desc = self.objective.kind
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not show, desc=desc, dynamic_ncols=True)
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            value, grad_norm = self.optimizer_step()
            self.losses.append(value)
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
                        f"last good state is in {self.folder.path if self.folder else 'memory'}; lower --lr or "
                        "set --clip-grad"
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
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row[self.objective.columns[0]]:.4f}")
                stopped_early = cfg.patience is not None and self.evals_since_best >= cfg.patience
            if self.step % checkpoint_every == 0 or self.step == cfg.steps or stopped_early:
                self.save_last()
            if stopped_early:
                break
        bar.close()
        summary = self.finish(time.perf_counter() - t_start, step_times, stopped_early, compile_s)
        return TrainResult(summary, self.history, self.losses)

    def finish(self, wall: float, step_times: list[float], stopped_early: bool, compile_s: float | None
               ) -> dict[str, Any]:
        """Load the best weights, score them, write ``summary.json``."""
        if self.dist.active:
            torch.distributed.barrier()  # rank 0 has finished writing the best weights
        if self.folder is not None and self.folder.model_file.exists():
            _, tensors = read_checkpoint(self.folder.model_file)
            load_weights(self.module, tensors, self.folder.model_file)
        elif self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        self.module.eval()
        summary = {
            "run_kind": self.objective.kind,
            "model": self.module.config,
            **self.objective.record(),
            "steps": self.step,
            "best_step": self.best_step,
            "stopped_early": stopped_early,
            "skipped_steps": self.skipped,
            **self.objective.scores(self.module),
            "wall_time_s": wall,
            "ms_per_step_median": 1000 * sorted(step_times)[len(step_times) // 2] if step_times else None,
            "compile_s": compile_s,
            "parameters": sum(p.numel() for p in self.params),
            "world_size": self.dist.world,
        }
        if self.writes:
            self.folder.write_summary(summary)
        return summary
