"""Probability density distillation: train a fast-sampling student flow ``q``
(an IAF) to match a trained teacher ``p`` (a MAF) by reverse KL on the
student's own reparameterized samples::

    KL(q || p) = E_{x ~ q}[log q(x | c) - log p(x | c)] >= 0

Each term is cheap for this pair: the IAF samples and scores its own samples in
one pass, and the MAF evaluates any density in one pass; neither direction
needs the slow sequential pass of either model. The teacher is frozen.

When both flows start with the same fixed preprocessing ``T`` (e.g. the logit
of image pixels), the KL is taken after it: ``KL(q || p) = KL(q_T || p_T)`` for
the push-forwards through a common bijection, and the latent side has no
domain to leave (a student sample outside ``[0, levels]`` has no pixel-space
density under the logit, but is a fine point in logit space).

References:
    van den Oord et al., "Parallel WaveNet: Fast High-Fidelity Speech Synthesis",
    arXiv:1711.10433; Kingma et al., "Improving Variational Inference with
    Inverse Autoregressive Flow", arXiv:1606.04934.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..distributions import Flow
from ..errors import ConfigError
from ..mode import in_mode
from ..models import build
from ..transforms import Compose
from .vi import minimize

__all__ = ["DistillResult", "distill", "distillation_kl", "sampling_rate", "student_like"]


def distillation_kl(student: Flow, teacher: Flow, n: int, context: Tensor | None = None) -> Tensor:
    """Differentiable Monte Carlo estimate of ``KL(q || p)`` from ``n`` reparameterized student samples.

    Args:
        student: the flow ``q`` being trained (gradients flow through its samples).
        teacher: the flow ``p``; its parameters should be frozen by the caller.
        n: number of samples (``context.shape[0]`` when a context is given).
        context: ``(n, context_dim)`` contexts for a conditional pair, else None.

    Returns:
        Scalar tensor, ``mean(log q(x) - log p(x))`` in nats.
    """
    x, log_q = student.rsample_and_log_prob(n, context)
    return (log_q - teacher.log_prob(x, context)).mean()


@dataclass
class DistillResult:
    """What :func:`distill` returns.

    Attributes:
        kl: final KL estimate in nats, on ``eval_samples`` fresh student samples.
        kl_stderr: its Monte Carlo standard error.
        losses: the per-step training estimate of the KL.
    """

    kl: float
    kl_stderr: float
    losses: list[float] = field(default_factory=list)


def _check_pair(teacher: Flow, student: Flow) -> None:
    if tuple(teacher.event_shape) != tuple(student.event_shape):
        raise ConfigError(
            f"student events {tuple(student.event_shape)} differ from the teacher's {tuple(teacher.event_shape)}"
        )
    if teacher.context_dim != student.context_dim:
        raise ConfigError(
            f"student context width {student.context_dim} differs from the teacher's {teacher.context_dim}"
        )


def distill(
    teacher: Flow,
    student: Flow,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    clip_grad: float | None = 10.0,
    contexts: Tensor | None = None,
    eval_samples: int = 4096,
    progress: bool = False,
) -> DistillResult:
    """Fit ``student`` to ``teacher`` by minimizing :func:`distillation_kl` with Adam
    (cosine learning-rate decay), then estimate the final KL on fresh samples.

    Args:
        steps: optimizer steps; ``batch_size`` student samples each.
        contexts: for a conditional pair, ``(N, context_dim)`` contexts to draw
            each step's contexts from (e.g. the teacher's training contexts).
        eval_samples: samples for the final KL estimate.
        progress: show a progress bar with the running KL estimate.

    The teacher is put in eval mode and its parameters are frozen for the run
    (restored afterwards).
    """
    _check_pair(teacher, student)
    if teacher.context_dim and contexts is None:
        raise ConfigError(
            f"the teacher is conditional (context width {teacher.context_dim}): pass contexts to draw from"
        )
    if not teacher.context_dim and contexts is not None:
        raise ConfigError("the teacher is unconditional but contexts were given")
    skip = _shared_preprocessing(teacher, student)
    teacher_core, student_core = _after(teacher, skip), _after(student, skip)
    param = next(student.parameters())
    gen = torch.Generator().manual_seed(0)

    def draw_context(n: int) -> Tensor | None:
        if contexts is None:
            return None
        rows = torch.randint(contexts.shape[0], (n,), generator=gen)
        return contexts[rows].to(device=param.device, dtype=param.dtype)

    frozen = [(p, p.requires_grad) for p in teacher.parameters()]
    was_training = teacher.training
    teacher.eval()
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        student.train()
        losses = minimize(
            student.parameters(),
            lambda step: distillation_kl(student_core, teacher_core, batch_size, draw_context(batch_size)),
            steps, lr=lr, clip_grad=clip_grad, progress=progress, desc="distill",
        )
        student.eval()
        with torch.no_grad():
            terms = []
            for start in range(0, eval_samples, batch_size):
                n = min(batch_size, eval_samples - start)
                c = draw_context(n)
                x, log_q = student_core.sample_and_log_prob(n, c)
                terms.append(log_q - teacher_core.log_prob(x, c))
            terms = torch.cat(terms).double()
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        teacher.train(was_training)
    return DistillResult(
        kl=float(terms.mean()), kl_stderr=float(terms.std() / math.sqrt(terms.numel())), losses=losses
    )


def _shared_preprocessing(teacher: Flow, student: Flow) -> int:
    """How many leading preprocessing layers the two flows share (same config and statistics)."""
    preprocess = teacher.config.get("preprocess") or []
    if not preprocess or student.config.get("preprocess") != preprocess:
        return 0
    for i in range(len(preprocess)):
        mine, theirs = teacher.transform[i].state_dict(), student.transform[i].state_dict()
        if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k].to(mine[k])) for k in mine):
            return 0
    return len(preprocess)


def _after(flow: Flow, skip: int) -> Flow:
    """The flow of the latent of its first ``skip`` layers (sharing modules with ``flow``)."""
    if skip == 0:
        return flow
    return Flow(Compose(list(flow.transform)[skip:]), flow.base, context_dim=flow.context_dim)


def student_like(teacher: Flow, name: str = "iaf", **options: Any) -> Flow:
    """A student ``name`` over the teacher's events and context, with the teacher's
    fixed preprocessing (config and fitted statistics), so both model the same space.

    ``options`` go to the student's builder (``preprocess`` is always the
    teacher's); ``layers`` and ``hidden`` default to the teacher's. The teacher
    must be a vector model (``(B, dim)`` events).
    """
    config = dict(teacher.config)
    if len(teacher.event_shape) != 1:
        raise ConfigError(f"distillation needs a vector teacher (events (dim,)), got {tuple(teacher.event_shape)}")
    preprocess = config.get("preprocess") or []
    for key in ("layers", "hidden"):
        if key in config:
            options.setdefault(key, config[key])
    options.setdefault("dim", int(teacher.event_shape[0]))
    if teacher.context_dim:
        options.setdefault("context_dim", teacher.context_dim)
    options["preprocess"] = preprocess
    student = build(name, **options)
    for i in range(len(preprocess)):
        student.transform[i].load_state_dict(teacher.transform[i].state_dict())
    param = next(teacher.parameters(), None)
    return student if param is None else student.to(device=param.device, dtype=param.dtype)


@torch.no_grad()
def sampling_rate(flow: Flow, n: int, context: Tensor | None = None, repeats: int = 3) -> float:
    """Samples per second of ``flow.sample(n, context)``: best of ``repeats`` timed calls after a warm-up."""
    best = math.inf
    with in_mode(flow, training=False):
        flow.sample(min(n, 16), None if context is None else context[: min(n, 16)])
        for _ in range(repeats):
            t0 = time.perf_counter()
            flow.sample(n, context)
            best = min(best, time.perf_counter() - t0)
    return n / best
