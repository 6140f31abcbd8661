"""Base densities ``p_Z`` over an event shape.

Each is an ``nn.Module`` (so it moves with ``.to()`` and is saved with the
model) with ``log_prob(z) -> (B,)`` and ``sample(n) -> (n, *event_shape)``.
Device and dtype follow the module (a zero-size buffer tracks them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["BaseDensity", "StandardNormal", "StandardLogistic", "DiagonalNormal", "GaussianMixture"]

_LOG_2PI = math.log(2 * math.pi)


class BaseDensity(nn.Module):
    """A fixed or learnable density over ``event_shape``."""

    def __init__(self, event_shape: Sequence[int]):
        super().__init__()
        self.event_shape = torch.Size(event_shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def event_dims(self) -> int:
        return len(self.event_shape)

    def _sum_event(self, t: Tensor) -> Tensor:
        return t.flatten(t.ndim - self.event_dims).sum(-1)

    def _check(self, z: Tensor) -> None:
        if tuple(z.shape[z.ndim - self.event_dims :]) != tuple(self.event_shape):
            raise ValueError(
                f"expected events of shape {tuple(self.event_shape)}, got a tensor of shape {tuple(z.shape)}"
            )

    def log_prob(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` samples; ``temperature`` scales the spread (Glow's T)."""
        raise NotImplementedError

    def _shape(self, n: int) -> tuple[int, ...]:
        return (n, *self.event_shape)


class StandardNormal(BaseDensity):
    """``N(0, I)``: ``log p(z) = -|z|^2 / 2 - D log(2 pi) / 2``."""

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        d = self.event_shape.numel()
        return -0.5 * self._sum_event(z * z) - 0.5 * d * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        z = torch.randn(self._shape(n), dtype=self._anchor.dtype, device=self._anchor.device)
        return z * temperature if temperature != 1.0 else z


class StandardLogistic(BaseDensity):
    """Independent standard logistic (NICE): ``log p(z) = -sum softplus(z) + softplus(-z)``."""

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        return -self._sum_event(nn.functional.softplus(z) + nn.functional.softplus(-z))

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        u = torch.rand(self._shape(n), dtype=self._anchor.dtype, device=self._anchor.device)
        tiny = torch.finfo(u.dtype).tiny
        u = u.clamp(tiny, 1 - torch.finfo(u.dtype).eps)
        return (torch.log(u) - torch.log1p(-u)) * temperature


class DiagonalNormal(BaseDensity):
    """``N(mu, diag(sigma^2))`` with learnable ``mu`` and ``log sigma`` (start at ``N(0, I)``)."""

    def __init__(self, event_shape: Sequence[int]):
        super().__init__(event_shape)
        self.loc = nn.Parameter(torch.zeros(self.event_shape))
        self.log_scale = nn.Parameter(torch.zeros(self.event_shape))

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        u = (z - self.loc) * torch.exp(-self.log_scale)
        return self._sum_event(-0.5 * u * u - self.log_scale) - 0.5 * self.event_shape.numel() * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        eps = torch.randn(self._shape(n), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + temperature * eps * torch.exp(self.log_scale)


class GaussianMixture(BaseDensity):
    """Learnable mixture of ``K`` full-covariance Gaussians over vectors ``(D,)``::

        log p(z) = logsumexp_k [log w_k + log|det P_k| - |(z - mu_k) P_k|^2 / 2] - D log(2 pi) / 2

    with ``P_k`` the upper-triangular Cholesky factor of component ``k``'s precision
    (positive diagonal, stored as its log). Starts as ``K`` copies of ``N(0, I)``;
    :meth:`fit` initializes it by EM (scikit-learn) on latent points, which the
    trainer does once on the training data (a flow whose layers start at the
    identity then starts at the mixture's fit).
    """

    def __init__(self, event_shape: Sequence[int], components: int = 8):
        super().__init__(event_shape)
        if len(self.event_shape) != 1:
            raise ValueError(f"a Gaussian-mixture base is for vectors (events (D,)), got {tuple(self.event_shape)}")
        if not isinstance(components, int) or components < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        k, d = components, self.event_shape[0]
        self.components = components
        self.logits = nn.Parameter(torch.zeros(k))
        self.loc = nn.Parameter(torch.zeros(k, d))
        self.precision_off = nn.Parameter(torch.zeros(k, d, d))  # strictly upper part used
        self.precision_log_diag = nn.Parameter(torch.zeros(k, d))

    def precision_cholesky(self) -> Tensor:
        """``(K, D, D)`` upper-triangular ``P_k`` with ``P_k P_k^T`` the precision."""
        return torch.triu(self.precision_off, 1) + torch.diag_embed(torch.exp(self.precision_log_diag))

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        u = torch.einsum("bkd,kde->bke", z[:, None, :] - self.loc, self.precision_cholesky())  # (B, K, D)
        log_comp = self.precision_log_diag.sum(-1) - 0.5 * (u * u).sum(-1)  # (B, K)
        log_w = torch.log_softmax(self.logits, 0)
        return torch.logsumexp(log_comp + log_w, 1) - 0.5 * self.event_shape[0] * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        k = torch.multinomial(torch.softmax(self.logits.detach(), 0), n, replacement=True)
        eps = torch.randn(n, self.event_shape[0], 1, dtype=self.loc.dtype, device=self.loc.device)
        # z - mu = P^{-T} eps has covariance (P P^T)^{-1}
        dev = torch.linalg.solve_triangular(self.precision_cholesky()[k].transpose(1, 2), eps, upper=False)
        return self.loc[k] + temperature * dev.squeeze(-1)

    @torch.no_grad()
    def fit(self, z: Tensor, seed: int = 0) -> None:
        """EM initialization (k-means start, ``seed``) on latent points ``z`` ``(N, D)``."""
        from sklearn.mixture import GaussianMixture as EM

        self._check(z)
        if z.shape[0] < 2 * self.components:
            raise ValueError(f"a {self.components}-component mixture base needs at least "
                             f"{2 * self.components} training rows to initialize, got {z.shape[0]}")
        em = EM(self.components, covariance_type="full", reg_covar=1e-4, max_iter=200, random_state=seed)
        em.fit(z.detach().double().cpu().numpy())
        chol = torch.as_tensor(em.precisions_cholesky_)
        as_param = dict(dtype=self.loc.dtype, device=self.loc.device)
        self.logits.copy_(torch.as_tensor(em.weights_).log().to(**as_param))
        self.loc.copy_(torch.as_tensor(em.means_).to(**as_param))
        self.precision_off.copy_(torch.triu(chol, 1).to(**as_param))
        self.precision_log_diag.copy_(torch.diagonal(chol, dim1=1, dim2=2).log().to(**as_param))

    def extra_repr(self) -> str:
        return f"components={self.components}"
