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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..distributions import Flow
from ..errors import ConfigError
from ..mode import in_mode
from ..models import build
from ..training import Run, TrainConfig, train
from ..training.objectives import Objective
from ..transforms import Compose

__all__ = ["DistillResult", "Distillation", "distill", "distillation_kl", "sampling_rate", "student_like",
           "teacher_sample_nll"]


def teacher_sample_nll(student: Flow, x: Tensor, context: Tensor | None = None) -> Tensor:
    """``mean -log q(x)`` over teacher samples ``x`` ``(n, D)``: ``KL(p || q)`` up to the teacher's
    entropy, the mass-covering term that keeps a reverse-KL student from dropping modes."""
    return -student.log_prob(x, context).mean()


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


class Distillation(Objective):
    """Density distillation of ``teacher`` into ``student`` (the module trained): the step loss is
    :func:`distillation_kl` on ``batch_size`` fresh student samples plus ``forward_weight`` times
    :func:`teacher_sample_nll` on ``batch_size`` rows of a pool of ``pool_size`` teacher samples
    (drawn once from the run's seed), i.e. ``KL(q || p) + w KL(p || q)`` up to a constant: reverse KL
    alone is mode-seeking and lets the student drop parts of the teacher's mass. The validation figure ``val_kl``
    is the same estimate on ``val_samples`` samples of a fixed seed; the final scores are the KL and
    its standard error on ``eval_samples`` samples. Contexts of a conditional pair are drawn from
    ``contexts`` with the objective's own seeded generator. The teacher should be frozen by the caller
    (:func:`distill` does it).
    """

    kind = "distill"
    columns = ("val_kl",)

    def __init__(self, teacher: Flow, student: Flow, batch_size: int = 256, contexts: Tensor | None = None,
                 val_samples: int = 2048, eval_samples: int = 65_536, record: dict[str, Any] | None = None,
                 forward_weight: float = 1.0, pool_size: int = 50_000):
        _check_pair(teacher, student)
        if teacher.context_dim and contexts is None:
            raise ConfigError(
                f"the teacher is conditional (context width {teacher.context_dim}): pass contexts to draw from"
            )
        if not teacher.context_dim and contexts is not None:
            raise ConfigError("the teacher is unconditional but contexts were given")
        self.skip = _shared_preprocessing(teacher, student)
        self.module, self.teacher = student, teacher
        self.teacher_core, self.student_core = _after(teacher, self.skip), _after(student, self.skip)
        self.batch_size, self.contexts = batch_size, contexts
        self.val_samples, self.eval_samples = val_samples, eval_samples
        if forward_weight < 0 or pool_size < 1:
            raise ConfigError(f"forward_weight must be >= 0 and pool_size >= 1, got {forward_weight}, {pool_size}")
        self.forward_weight, self.pool_size = float(forward_weight), int(pool_size)
        self.pool: tuple[Tensor, Tensor | None] | None = None
        self.recorded = record or {}
        self.generator = torch.Generator().manual_seed(0)

    def setup(self, device: torch.device, batch_size: int | None, seed: int) -> None:
        self.teacher.to(device)
        self.generator.manual_seed(seed)
        if self.forward_weight:
            self.pool = self.teacher_pool(seed)

    @torch.no_grad()
    def teacher_pool(self, seed: int) -> tuple[Tensor, Tensor | None]:
        """``pool_size`` teacher samples (and their contexts), the same for a seed (so on resume);
        drawn under a forked RNG (the teacher's device too), so the pool leaves training's RNG alone."""
        generator = torch.Generator().manual_seed(seed + 1)
        device = next(self.teacher.parameters()).device
        xs, cs = [], []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                in_mode(self.teacher, training=False):
            torch.manual_seed(seed + 1)
            for start in range(0, self.pool_size, 4096):
                n = min(4096, self.pool_size - start)
                c = self.draw_context(n, generator)
                xs.append(self.teacher_core.sample(n, c))
                cs.append(c)
        return torch.cat(xs), None if self.contexts is None else torch.cat(cs)

    def draw_context(self, n: int, generator: torch.Generator) -> Tensor | None:
        if self.contexts is None:
            return None
        param = next(self.module.parameters())
        rows = torch.randint(self.contexts.shape[0], (n,), generator=generator)
        return self.contexts[rows].to(device=param.device, dtype=param.dtype)

    def loss(self, model: nn.Module, step: int) -> Tensor:
        c = self.draw_context(self.batch_size, self.generator)
        loss = distillation_kl(self.student_core, self.teacher_core, self.batch_size, c)
        if self.pool is not None:
            x, contexts = self.pool
            rows = torch.randint(x.shape[0], (self.batch_size,), generator=self.generator).to(x.device)
            c = None if contexts is None else contexts[rows]
            loss = loss + self.forward_weight * teacher_sample_nll(self.student_core, x[rows], c)
        return loss

    def kl_terms(self, student: Flow, n: int) -> Tensor:
        """``log q(x) - log p(x)`` at ``n`` samples of ``student`` (the trained one or its moving
        average; no gradient), float64."""
        generator = torch.Generator().manual_seed(1234)
        core, terms = _after(student, self.skip), []
        with torch.no_grad(), in_mode(student, training=False), in_mode(self.teacher, training=False):
            for start in range(0, n, self.batch_size):
                m = min(self.batch_size, n - start)
                c = self.draw_context(m, generator)
                x, log_q = core.sample_and_log_prob(m, c)
                terms.append(log_q - self.teacher_core.log_prob(x, c))
        return torch.cat(terms).double()

    def validate(self, module: nn.Module) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1234)
            return {"val_kl": float(self.kl_terms(module, self.val_samples).mean())}

    def scores(self, module: nn.Module) -> dict[str, Any]:
        terms = self.kl_terms(module, self.eval_samples)
        return {"kl": float(terms.mean()), "kl_stderr": float(terms.std() / math.sqrt(terms.numel()))}

    def record(self) -> dict[str, Any]:
        options = {"batch_size": self.batch_size, "val_samples": self.val_samples, "eval_samples": self.eval_samples,
                   "forward_weight": self.forward_weight, "pool_size": self.pool_size}
        return {**self.recorded, "objective": options}

    def rng_state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        return {"contexts": self.generator.get_state()}, {}

    def load_rng_state(self, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
        self.generator.set_state(tensors["contexts"])


def distill(
    teacher: Flow,
    student: Flow,
    steps: int,
    batch_size: int = 256,
    lr: float = 3e-4,
    clip_grad: float | None = 10.0,
    contexts: Tensor | None = None,
    eval_samples: int = 65_536,
    forward_weight: float = 1.0,
    progress: bool = False,
    seed: int = 0,
    out: str | Path | Run | None = None,
    resume: bool = False,
    record: dict[str, Any] | None = None,
    ema: float | None = None,
) -> DistillResult:
    """Fit ``student`` to ``teacher`` by minimizing :func:`distillation_kl` (:class:`Distillation` on
    :func:`~flowforge.training.train`: Adam, cosine learning-rate decay), then estimate the final KL
    on fresh samples. The student ends with the weights of the best validation KL.

    Args:
        steps: optimizer steps; ``batch_size`` student samples each (0: only the final estimate).
        contexts: for a conditional pair, ``(N, context_dim)`` contexts to draw
            each step's contexts from (e.g. the teacher's training contexts).
        eval_samples: samples for the final KL estimate (many: log q - log p is heavy-tailed where the
            teacher has thin regions of near-zero density, and 4096 samples put its error near 0.01).
        forward_weight: weight of the teacher-sample term (0: reverse KL alone, as Parallel WaveNet).
        ema: decay of a moving average of the student's weights, which is then what is validated,
            kept and returned (None: the trained weights themselves).
        progress: show a progress bar.
        out, resume, record: a run folder to write (and continue from) and what it records beside
            the student (e.g. the teacher's data), see :func:`~flowforge.training.train`.

    The teacher's parameters are frozen for the run (restored afterwards).
    """
    objective = Distillation(teacher, student, batch_size, contexts, eval_samples=eval_samples, record=record,
                             forward_weight=forward_weight)
    if steps == 0:
        return DistillResult(**objective.scores(student))
    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", warmup=steps // 20, clip_grad=clip_grad, seed=seed,
                         eval_every=max(steps // 20, 1), progress=progress, ema=ema)
    frozen = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        result = train(objective, config, out, resume)
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    return DistillResult(result.summary["kl"], result.summary["kl_stderr"], result.losses)


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


def student_like(teacher: Flow, name: str = "nsf", **options: Any) -> Flow:
    """A student ``name`` over the teacher's events and context, with the teacher's
    fixed preprocessing (config and fitted statistics), so both model the same space.
    The default is a spline flow read backwards (``nsf`` with ``inverse=True``: one pass to
    sample), whose element-wise splines have the capacity an affine IAF lacks.

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
    if name == "nsf":
        options.setdefault("inverse", True)
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
