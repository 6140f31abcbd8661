"""What the one trainer minimizes: an :class:`Objective` gives the loss of a step and a validation figure.

The trainer (:mod:`.trainer`) owns everything around it: optimizer and
schedule, non-finite guard, clipping, checkpoints, exact resume, metrics,
progress, early stopping. An objective holds the module it trains and the
state of its own randomness (batch order, noise), so that a resumed run draws
exactly what the uninterrupted one would have.

Objectives here: :class:`MaximumLikelihood` (a flow on a data set). Reverse KL
to an unnormalized target, the VAE's ELBO and distillation live beside their
models in :mod:`flowforge.inference`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..data import SAMPLE_ROWS, SPLITS, Dataset
from ..distributions import Flow
from ..errors import ConfigError
from ..models import fit_preprocessing
from . import distributed
from .metrics import evaluate_nll
from .model_input import model_input

if TYPE_CHECKING:
    from ..data.disk_rows import DiskRows

__all__ = ["Objective", "DataBatches", "MaximumLikelihood", "nll_loss"]


class Objective:
    """The contract between an objective and the trainer.

    Attributes:
        module: what is trained, validated and checkpointed (a Flow, or a VAE).
        kind: the run kind recorded in the run folder (one of :data:`~flowforge.training.run.RUN_KINDS`).
        columns: the validation figures :meth:`validate` returns (columns of ``metrics.csv``);
            the first is the one that picks the best weights and stops early (lower is better).
        distributed: whether the loss shards its batch over torchrun's ranks.
    """

    module: nn.Module
    kind: str = "train"
    columns: tuple[str, ...] = ("val_loss",)
    distributed: bool = False

    def setup(self, device: torch.device, batch_size: int | None, seed: int) -> None:
        """Once per process, after ``module`` moved to ``device``: seeded generators, data on the device."""

    def start(self) -> None:
        """A fresh run only (global RNG already seeded): data-dependent initialization."""

    def loss(self, model: nn.Module, step: int) -> Tensor:
        """The scalar to minimize at ``step``; ``model`` is ``module`` or its DDP wrapper."""
        raise NotImplementedError

    def validate(self, module: nn.Module) -> dict[str, float | None]:
        """The validation figures of ``module`` (``module`` itself or its weights' moving average)."""
        raise NotImplementedError

    def scores(self, module: nn.Module) -> dict[str, Any]:
        """Final figures of the best weights for ``summary.json``."""
        return {}

    def record(self) -> dict[str, Any]:
        """JSON the run keeps to rebuild this objective on ``--resume`` (data set, target, options)."""
        return {}

    def rng_state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        """Tensors and integers of the objective's own randomness, saved in ``last.safetensors``."""
        return {}, {}

    def load_rng_state(self, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
        """Restore what :meth:`rng_state` saved."""


def nll_loss(model: nn.Module, x: Tensor, context: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood in nats per example (``model(x, c)`` is ``log_prob``)."""
    return -model(x, context).mean()


class DataBatches:
    """Seeded epochs of shuffled mini-batches of one split, as model input (the last partial batch of an
    epoch is dropped; full batch when ``batch_size`` is None or ``>= n``). ``x`` is a tensor, or rows of
    a file (``DiskRows``) read by index."""

    def __init__(self, x: Tensor | DiskRows, context: Tensor | None, batch_size: int | None, seed: int,
                 prepare=lambda x, generator: x):
        self.x, self.context, self.prepare = x, context, prepare
        self.n = x.shape[0]
        self.generator = torch.Generator().manual_seed(seed)
        self.batch_size = self.n if batch_size is None or batch_size >= self.n else batch_size
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pos = 0

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.batch_size == self.n:  # whole set, no indexing
            return self.prepare(self.x[:], self.generator), self.context
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        c = None if self.context is None else self.context[idx.to(self.context.device)]
        return self.prepare(self.x[idx.to(self.x.device)], self.generator), c

    def state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        return {"data": self.generator.get_state(), "perm": self.perm}, {"pos": self.pos}

    def load_state(self, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
        self.generator.set_state(tensors["data"])
        self.perm, self.pos = tensors["perm"], int(scalars["pos"])


class MaximumLikelihood(Objective):
    """``mean_i -log p(x_i | c_i)`` on mini-batches of ``dataset.train`` (dequantized when quantized);
    validation NLL (and bits/dim) on ``dataset.val``.

    On a fresh start the flow's preprocessing is fitted on the training split,
    data-dependent layers (ActNorm) are initialized on the first batch and a base
    with a ``fit`` (Gaussian mixture) is fitted on the training latents. Under
    torchrun each global batch is sharded over the ranks.
    """

    kind = "train"
    columns = ("val_nll", "val_bits_per_dim")
    distributed = True

    def __init__(self, flow: Flow, dataset: Dataset, loss=nll_loss):
        self.module, self.dataset, self.loss_fn = flow, dataset, loss
        self.dist = distributed.info()

    def setup(self, device: torch.device, batch_size: int | None, seed: int) -> None:
        self.seed = seed
        param = next(self.module.parameters(), None)
        dtype = torch.get_default_dtype() if param is None else param.dtype
        ds = self.dataset
        # a split too large for memory stays on disk: batches are read from it by index
        x = ds.train.to(device, dtype) if isinstance(ds.train, Tensor) else ds.train
        c = ds.context["train"]
        self.batches = DataBatches(x, None if c is None else c.to(device, dtype), batch_size, seed,
                                   lambda x, gen: model_input(self.module, x, ds, gen))
        if self.batches.batch_size == self.batches.n and not isinstance(x, Tensor):
            raise ConfigError(f"{ds.name}: a training split read from disk ({self.batches.n} rows) is read in "
                              "mini-batches; set batch_size (--batch-size)")

    def start(self) -> None:
        fit_preprocessing(self.module, model_input(self.module, self.batches.x[:SAMPLE_ROWS]))
        if self.module.transform.is_data_dependent:
            self.module.transform.initialize(*self.batches.next())
        if hasattr(self.module.base, "fit"):
            self.fit_base()

    @torch.no_grad()
    def fit_base(self, max_rows: int = 20_000) -> None:
        """A data-initialized base (Gaussian mixture) is fitted once on the latents of (a seeded
        subsample of ``max_rows``) training rows; its size is chosen on (as many) validation rows,
        and the flow's record follows it."""
        ds, gen = self.dataset, torch.Generator().manual_seed(self.seed)
        device, dtype = next(self.module.parameters()).device, self.batches.x.dtype

        def latents(x, c):
            rows = torch.randperm(x.shape[0], generator=gen)[:max_rows]
            xs = model_input(self.module, x[rows].to(device, dtype), ds, self.batches.generator)
            return self.module.encode(xs, None if c is None else c[rows].to(device, dtype))

        train = latents(self.batches.x, self.batches.context)
        val = latents(ds.val, ds.context["val"]) if len(ds.val) else None
        kept = self.module.base.fit(train, seed=self.seed, val=val)
        if "components" in self.module.config:
            self.module.config["components"] = kept

    def loss(self, model: nn.Module, step: int) -> Tensor:
        x, c = self.batches.next()
        return self.loss_fn(model, self.dist.shard(x), self.dist.shard(c))

    def validate(self, module: nn.Module) -> dict[str, float | None]:
        ds = self.dataset
        val = evaluate_nll(module, ds.val, ds, ds.context["val"])
        return {"val_nll": val["nll"], "val_bits_per_dim": val["bits_per_dim"]}

    def scores(self, module: nn.Module) -> dict[str, Any]:
        ds = self.dataset
        scores = {
            s: evaluate_nll(module, ds.split(s), ds, ds.context[s], noise_draws=1 if s == "train" else 5)
            for s in SPLITS
        }
        return {
            **{f"{s}_nll": scores[s]["nll"] for s in SPLITS},
            **{f"{s}_bits_per_dim": scores[s]["bits_per_dim"] for s in SPLITS},
            "test_discrete_nll_bound": scores["test"]["discrete_nll_bound"],
        }

    def record(self) -> dict[str, Any]:
        return {"data": self.dataset.describe()}

    def rng_state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        return self.batches.state()

    def load_rng_state(self, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
        self.batches.load_state(tensors, scalars)
