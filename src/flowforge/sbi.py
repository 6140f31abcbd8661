"""sbi adapter: flowforge's conditional flows as density estimators for ``NPE``.

    q(theta | x) = flow.log_prob(theta, context = embedding(z_score(x)))

``NPE(prior, density_estimator=build_estimator("nsf"))`` trains the flow on
simulations with sbi's loop; shapes follow sbi: inputs ``(sample_dim,
batch_dim, theta_dim)``, conditions ``(batch_dim, *x_shape)``. Requires the
``[sbi]`` extra.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

try:
    from sbi.neural_nets.estimators import ConditionalDensityEstimator
    from sbi.utils.sbiutils import standardizing_net
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("flowforge.sbi needs sbi: pip install 'flowforge[sbi]'") from e

import torch
from torch import Tensor, nn

from .distributions import Flow
from .models import build, fit_preprocessing, model_options

__all__ = ["FlowEstimator", "build_estimator"]


class FlowEstimator(ConditionalDensityEstimator):
    """A conditional flowforge :class:`~flowforge.distributions.Flow` behind sbi's estimator API.

    Args:
        flow: a flow over ``theta`` with ``context_dim`` = the embedding's width.
        embedding_net: maps a batch of conditions ``(B, *condition_shape)`` to ``(B, context_dim)``.
        input_shape, condition_shape: event shapes of ``theta`` and ``x``.
    """

    def __init__(self, flow: Flow, embedding_net: nn.Module, input_shape: torch.Size, condition_shape: torch.Size):
        super().__init__(flow, input_shape, condition_shape)
        self._embedding_net = embedding_net

    @property
    def embedding_net(self) -> nn.Module:
        return self._embedding_net

    def _embed(self, condition: Tensor) -> Tensor:
        self._check_condition_shape(condition)
        flat = condition.reshape(-1, *self.condition_shape)
        return self._embedding_net(flat)

    def log_prob(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        """``log q(theta | x)`` of shape ``(sample_dim, batch_dim)``."""
        input, condition, batch_dim = self._broadcast_and_align(input, condition)
        sample_dim = input.shape[0]
        theta = input.reshape(sample_dim * batch_dim, *self.input_shape)
        return self.net.log_prob(theta, self._embed(condition)).reshape(sample_dim, batch_dim)

    def loss(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        """Negative log-likelihood per pair, shape ``(batch_dim,)``."""
        return -self.log_prob(input.unsqueeze(0), condition)[0]

    def sample(self, sample_shape: torch.Size, condition: Tensor, **kwargs) -> Tensor:
        """Samples of shape ``(*sample_shape, batch_dim, *input_shape)``."""
        return self.sample_and_log_prob(sample_shape, condition)[0].detach()

    def sample_and_log_prob(self, sample_shape: torch.Size, condition: Tensor, **kwargs) -> tuple[Tensor, Tensor]:
        """Samples ``(*sample_shape, batch_dim, *input_shape)`` and their log-density, one generative pass."""
        context = self._embed(condition)
        batch_dim, n = context.shape[0], math.prod(sample_shape)
        theta, log_q = self.net.rsample_and_log_prob(n * batch_dim, context.repeat(n, 1))
        return theta.reshape(*sample_shape, batch_dim, *self.input_shape), log_q.reshape(*sample_shape, batch_dim)


def build_estimator(
    model: str = "nsf",
    z_score_theta: bool = True,
    z_score_x: bool = True,
    embedding_net: nn.Module | None = None,
    **options: Any,
) -> Callable[[Tensor, Tensor], FlowEstimator]:
    """What ``NPE(density_estimator=...)`` takes: ``(batch_theta, batch_x) -> FlowEstimator``.

    Args:
        model: a flowforge model with a context (``"nsf"``, ``"maf"``, ``"realnvp"``).
        z_score_theta: standardize ``theta`` inside the flow (statistics of ``batch_theta``).
        z_score_x: standardize ``x`` before the embedding (statistics of ``batch_x``).
        embedding_net: maps ``x`` to the flow's context (default: flatten).
        **options: model options (``layers``, ``hidden``, ...).
    """
    model_options(model)  # an unknown name fails here, not at the first simulations
    if "dim" in options or "context_dim" in options:
        raise ValueError("dim and context_dim come from the simulations; do not pass them")

    def build_fn(batch_theta: Tensor, batch_x: Tensor) -> FlowEstimator:
        embed = nn.Sequential(
            *([standardizing_net(batch_x)] if z_score_x else []), embedding_net or nn.Flatten()
        )
        with torch.no_grad():
            context_dim = embed(batch_x[:2]).shape[-1]
        theta_dim = batch_theta[0].numel()
        flow = build(
            model, dim=theta_dim, context_dim=context_dim,
            **options, **({"preprocess": ["standardize"]} if z_score_theta else {}),
        )
        fit_preprocessing(flow, batch_theta.reshape(-1, theta_dim))
        return FlowEstimator(flow, embed, batch_theta[0].shape, batch_x[0].shape)

    return build_fn
