"""Variational inference with a flow: fit ``q`` to an unnormalized target by reverse KL.

With ``x ~ q`` drawn by reparameterization (``flow.rsample_and_log_prob``) and
log-weights ``log w = log p~(x) - log q(x)``::

    KL(q || p) = E_q[log q - log p~] + log Z = log Z - ELBO >= 0
    Z_hat = mean(w)                    (unbiased importance-sampling estimate of Z)
    se(log Z_hat) ~= std(w) / (sqrt(n) mean(w))         (delta method)
    ESS / n = (sum w)^2 / (n sum w^2)

All of these are computed from ``log w`` in log space (shifted by its maximum),
so they do not overflow however peaked the weights are.

References:
    Rezende & Mohamed, "Variational Inference with Normalizing Flows", arXiv:1505.05770.
    Kong, "A note on importance sampling using standardized weights", 1992 (ESS).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..distributions import Flow
from ..errors import ConfigError
from ..mode import in_mode
from ..training import Run, TrainConfig, train
from ..training.objectives import Objective
from .targets import Target, as_target

__all__ = ["ISEstimate", "ReverseKL", "VIResult", "check_target", "estimate_log_z", "fit_target", "log_weight_stats",
           "reverse_kl"]

TargetLike = Target | Callable[[Tensor], Tensor] | str


@dataclass
class ISEstimate:
    """Importance-sampling summary of a flow ``q`` against a target ``p~``.

    Attributes:
        log_z: ``log mean(w)``, the estimate of ``log Z``.
        log_z_stderr: its standard error (delta method).
        ess_fraction: effective sample size over ``n``, in ``(0, 1]``; 1 when ``q = p``.
        elbo: ``mean(log w)``, a lower bound on ``log Z`` in expectation.
        n: number of samples.
    """

    log_z: float
    log_z_stderr: float
    ess_fraction: float
    elbo: float
    n: int


@dataclass
class VIResult(ISEstimate):
    """What :func:`fit_target` returns: the final :class:`ISEstimate` plus the target's
    true ``log Z`` (``None`` when unknown) and the per-step loss (``-ELBO`` on each batch once
    any annealing is over)."""

    true_log_z: float | None = None
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        """The JSON-ready record (everything but the loss curve)."""
        out = asdict(self)
        out.pop("losses")
        return out


def check_target(flow: Flow, target: TargetLike) -> Target:
    """``target`` as a :class:`Target`, checked against ``flow``'s event shape.

    Raises:
        ValueError: the flow is conditional or not over vectors, or the target's
            dimension differs from the flow's.
    """
    target = as_target(target)
    shape = tuple(flow.event_shape)
    if len(shape) != 1:
        raise ConfigError(f"variational inference needs a flow over vectors (batch, dim); its events are {shape}")
    if flow.context_dim:
        raise ConfigError(f"fit a target with an unconditional flow; this one needs a context ({flow.context_dim})")
    if target.dim is not None and target.dim != shape[0]:
        raise ConfigError(
            f"target {target.name!r} is {target.dim}-dimensional but the flow's events have dimension {shape[0]}"
        )
    return target


def _log_density(target: Target, x: Tensor) -> Tensor:
    """``target.log_prob(x)``, checked: one finite value per sample."""
    out = target.log_prob(x)
    n = x.shape[0]
    if not isinstance(out, Tensor):
        raise ConfigError(f"target {target.name!r} must return a tensor of shape ({n},), got {type(out).__name__}")
    if tuple(out.shape) != (n,):
        raise ConfigError(
            f"target {target.name!r} returned shape {tuple(out.shape)} for samples of shape {tuple(x.shape)}; "
            f"it must return one log-density per sample, shape ({n},)"
        )
    bad = ~torch.isfinite(out)
    if bad.any():
        i = int(bad.nonzero()[0])
        value = out[i].detach().item()
        hint = " (zero density where the flow puts mass: reverse KL is infinite)" if value == -math.inf else ""
        raise ConfigError(
            f"target {target.name!r} returned {value} at sample {i}, x = {x[i].detach().tolist()}{hint}; "
            "a target's log-density must be finite"
        )
    return out.to(x.dtype)


def reverse_kl(flow: Flow, target: Target, n: int, beta: float = 1.0) -> Tensor:
    """Differentiable ``mean(log q(x) - beta log p~(x))`` over ``n`` reparameterized samples ``x ~ q``.

    At ``beta = 1`` its expectation is ``KL(q || p) - log Z = -ELBO``; ``beta < 1`` flattens
    the target (annealing: ``q`` first spreads over all modes, then sharpens).
    """
    x, log_q = flow.rsample_and_log_prob(n)
    return (log_q - beta * _log_density(target, x)).mean()


@torch.no_grad()
def _log_weights(flow: Flow, target: Target, n: int, batch_size: int) -> Tensor:
    parts = []
    for start in range(0, n, batch_size):
        x, log_q = flow.sample_and_log_prob(min(batch_size, n - start))
        bad = ~torch.isfinite(log_q)
        if bad.any():
            raise ValueError(f"the flow's log-density is not finite at sample {int(bad.nonzero()[0]) + start}")
        parts.append(_log_density(target, x) - log_q)
    return torch.cat(parts)


def log_weight_stats(log_w: Tensor) -> ISEstimate:
    """:class:`ISEstimate` from log importance weights ``log w`` of shape ``(n,)``, in log space."""
    log_w = log_w.detach().double().flatten()
    n = log_w.numel()
    if n < 2:
        raise ValueError(f"importance sampling needs at least 2 samples, got {n}")
    w = torch.exp(log_w - log_w.max())  # in (0, 1], max = 1
    mean = w.mean()
    return ISEstimate(
        log_z=float(log_w.max() + torch.log(mean)),
        log_z_stderr=float(w.std() / (math.sqrt(n) * mean)),
        ess_fraction=float(w.sum() ** 2 / (n * (w * w).sum())),
        elbo=float(log_w.mean()),
        n=n,
    )


def estimate_log_z(flow: Flow, target: TargetLike, n: int = 100_000, batch_size: int = 10_000) -> ISEstimate:
    """Importance-sampling estimate of ``log Z`` with ``n`` samples from ``flow`` (see the module docstring)."""
    target = check_target(flow, target)
    with in_mode(flow, training=False):
        return log_weight_stats(_log_weights(flow, target, n, batch_size))


def _beta(step: int, anneal: int) -> float:
    return 1.0 if step >= anneal else 0.01 + 0.99 * step / anneal


class ReverseKL(Objective):
    """Reverse KL to an unnormalized target: the step loss is :func:`reverse_kl` on ``batch_size`` fresh
    samples at the annealed ``beta(step)``; the validation figure ``val_neg_elbo = mean(log q - log p~)``
    (``KL(q || p) - log Z``) on ``val_samples`` samples of a fixed seed, so evaluations compare weights,
    not noise. The final scores are :func:`estimate_log_z` with ``eval_samples``.
    """

    kind = "fit-target"
    columns = ("val_neg_elbo",)

    def __init__(self, flow: Flow, target: TargetLike, batch_size: int = 256, anneal: int = 0,
                 val_samples: int = 4096, eval_samples: int = 100_000):
        self.target = check_target(flow, target)
        for key, value in (("batch_size", batch_size), ("val_samples", val_samples), ("eval_samples", eval_samples)):
            if value < 2:
                raise ConfigError(f"{key} must be >= 2, got {value}")
        if anneal < 0:
            raise ConfigError(f"anneal must be >= 0, got {anneal}")
        self.module, self.batch_size, self.anneal = flow, batch_size, anneal
        self.val_samples, self.eval_samples = val_samples, eval_samples

    def loss(self, model: nn.Module, step: int) -> Tensor:
        return reverse_kl(self.module, self.target, self.batch_size, _beta(step, self.anneal))

    @torch.no_grad()
    def validate(self, module: nn.Module) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]), in_mode(module, training=False):
            torch.manual_seed(_VALIDATION_SEED)
            x, log_q = module.sample_and_log_prob(self.val_samples)
            return {"val_neg_elbo": float((log_q - _log_density(self.target, x)).mean())}

    def scores(self, module: nn.Module) -> dict[str, Any]:
        estimate = estimate_log_z(module, self.target, self.eval_samples, batch_size=max(self.batch_size, 10_000))
        return {**asdict(estimate), "true_log_z": self.target.log_z}

    def record(self) -> dict[str, Any]:
        options = {"batch_size": self.batch_size, "anneal": self.anneal, "val_samples": self.val_samples,
                   "eval_samples": self.eval_samples}
        return {"target": self.target.name, "objective": options}


_VALIDATION_SEED = 1234


def fit_target(
    flow: Flow,
    log_unnormalized_density: TargetLike,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    clip_grad: float | None = 10.0,
    anneal: int = 0,
    eval_samples: int = 100_000,
    seed: int = 0,
    progress: bool = False,
    out: str | Path | Run | None = None,
    resume: bool = False,
) -> VIResult:
    """Fit ``flow`` to ``p = p~ / Z`` by minimizing reverse KL, then estimate ``log Z``
    (:class:`ReverseKL` on :func:`~flowforge.training.train`).

    Adam with a cosine learning-rate decay to zero over ``steps``; each step
    draws ``batch_size`` fresh reparameterized samples; the flow ends with the
    weights of the best validation figure.

    Args:
        flow: an unconditional flow over ``(B, dim)`` vectors; trained in place.
        log_unnormalized_density: a :class:`~flowforge.inference.targets.Target`, a
            registered target name, or a callable ``(B, dim) -> (B,)`` giving ``log p~``.
        steps: optimizer steps.
        batch_size: samples per step.
        lr: initial learning rate.
        clip_grad: gradient-norm clip, ``None`` for none.
        anneal: steps over which the target's inverse temperature ``beta`` rises linearly
            from 0.01 to 1 (Rezende & Mohamed, Sec. 6.1); 0 for none.
        eval_samples: samples for the final importance-sampling estimate.
        seed: seeds torch's global generator (the flow samples from it).
        progress: show a progress bar.
        out, resume: a run folder to write (and continue from), see :func:`~flowforge.training.train`.

    Returns:
        :class:`VIResult` (ELBO, ``log Z`` estimate and standard error, ESS fraction, loss of every step).

    Raises:
        ConfigError: dimension mismatch between target and flow; a target value that is
            not one finite number per sample (the message names the first bad sample).
    """
    if not 0 <= anneal <= steps:
        raise ConfigError(f"anneal must be between 0 and steps ({steps}), got {anneal}")
    objective = ReverseKL(flow, log_unnormalized_density, batch_size, anneal, eval_samples=eval_samples)
    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", clip_grad=clip_grad, seed=seed,
                         eval_every=max(steps // 20, 1), progress=progress)
    result = train(objective, config, out, resume)
    fields = {f.name for f in dataclasses.fields(VIResult)}
    return VIResult(**{k: v for k, v in result.summary.items() if k in fields}, losses=result.losses)
