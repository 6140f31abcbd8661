"""Base densities ``p_Z`` over an event shape.

Each is an ``nn.Module`` (so it moves with ``.to()`` and is saved with the
model) with ``log_prob(z) -> (B,)`` and ``sample(n) -> (n, *event_shape)``.
Device and dtype follow the module (a zero-size buffer tracks them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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

        log p(z) = logsumexp_k [log w_k + log|det P_k| - |z P_k - s_k|^2 / 2] - D log(2 pi) / 2

    with ``P_k`` the upper-triangular Cholesky factor of component ``k``'s precision
    (positive diagonal, stored as its log) and ``s_k = mu_k P_k`` its mean in the
    component's own whitened units: an optimizer step on ``s_k`` moves the mean by
    a fraction of that component's width, so narrow components are not knocked
    off their data by steps sized for wide ones. Starts as ``K`` copies of
    ``N(0, I)``; :meth:`fit` initializes it by EM (scikit-learn) on latent points,
    which the trainer does once on the training data (a flow whose layers start
    at the identity then starts at the mixture's fit).
    """

    def __init__(self, event_shape: Sequence[int], components: int = 8):
        super().__init__(event_shape)
        if len(self.event_shape) != 1:
            raise ValueError(f"a Gaussian-mixture base is for vectors (events (D,)), got {tuple(self.event_shape)}")
        if not isinstance(components, int) or components < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        self._new_parameters(components)
        self.register_load_state_dict_pre_hook(_means_to_shifts)

    def precision_cholesky(self) -> Tensor:
        """``(K, D, D)`` upper-triangular ``P_k`` with ``P_k P_k^T`` the precision."""
        return _upper_factor(self.precision_off, self.precision_log_diag)

    @property
    def loc(self) -> Tensor:
        """``(K, D)`` component means ``mu_k = s_k P_k^{-1}``."""
        p = self.precision_cholesky()
        return torch.linalg.solve_triangular(p, self.shift[:, None, :], upper=True, left=False)[:, 0]

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        u = torch.einsum("bd,kde->bke", z, self.precision_cholesky()) - self.shift  # (B, K, D)
        log_comp = self.precision_log_diag.sum(-1) - 0.5 * (u * u).sum(-1)  # (B, K)
        log_w = torch.log_softmax(self.logits, 0)
        return torch.logsumexp(log_comp + log_w, 1) - 0.5 * self.event_shape[0] * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        k = torch.multinomial(torch.softmax(self.logits.detach(), 0), n, replacement=True)
        eps = torch.randn(n, 1, self.event_shape[0], dtype=self.shift.dtype, device=self.shift.device)
        # z = (s + t eps) P^{-1}: mean s P^{-1}, covariance t^2 (P P^T)^{-1}
        u = self.shift[k][:, None, :] + temperature * eps
        return torch.linalg.solve_triangular(self.precision_cholesky()[k], u, upper=True, left=False)[:, 0]

    @torch.no_grad()
    def fit(self, z: Tensor, seed: int = 0, val: Tensor | None = None) -> int:
        """EM initialization (k-means start, ``seed``; scikit-learn's defaults otherwise) on latent points
        ``z`` ``(N, D)``. With held-out points ``val``, ``components`` is an upper bound: ``K = 1, 4, 16,
        ...`` up to it are fitted in turn until one scores below the best held-out score (but at least
        up to 16: a few components over many clusters straddle them and can score below one), and the
        mixture keeps the best (its parameters are replaced when that is fewer). Returns the number kept.

        The score is the held-out *complete-data* log-likelihood (the ICL criterion's fit term),
        ``mean_x sum_k r_k(x) log(w_k N(x; mu_k, Sigma_k)) = log p(x) - H(r(x))``: the likelihood less
        the entropy of the points' assignments. It rewards components that each explain their
        points alone -- clusters, which a flow over one Gaussian fits poorly -- and stops before
        many overlapping components tile a smooth region, whose shape the flow fits better
        (on the 2-D checkerboard, likelihood alone keeps 256 components, this score 16)."""
        from sklearn.mixture import GaussianMixture as EM

        self._check(z)
        if z.shape[0] < 2 * self.components:
            raise ValueError(f"a {self.components}-component mixture base needs at least "
                             f"{2 * self.components} training rows to initialize, got {z.shape[0]}")
        points = z.detach().double().cpu().numpy()
        held_out = None if val is None else val.detach().double().cpu().numpy()
        sizes = [self.components]
        if held_out is not None:
            sizes = [4**i for i in range(self.components.bit_length()) if 4**i < self.components] + sizes
        best, best_score = None, -math.inf
        for k in sizes:
            em = EM(k, covariance_type="full", random_state=seed).fit(points)
            score = 0.0 if held_out is None else _complete_data_score(em, held_out)
            if score > best_score:
                best, best_score = em, score
            elif k >= 16:  # fewer components can straddle clusters and score below one: look on
                break
        if best.n_components != self.components:
            self._new_parameters(best.n_components, dtype=self.shift.dtype, device=self.shift.device)
        chol = torch.as_tensor(best.precisions_cholesky_)
        shift = torch.einsum("kd,kde->ke", torch.as_tensor(best.means_), chol)
        as_param = dict(dtype=self.shift.dtype, device=self.shift.device)
        self.logits.copy_(torch.as_tensor(best.weights_).log().to(**as_param))
        self.shift.copy_(shift.to(**as_param))
        self.precision_off.copy_(torch.triu(chol, 1).to(**as_param))
        self.precision_log_diag.copy_(torch.diagonal(chol, dim1=1, dim2=2).log().to(**as_param))
        return self.components

    def _new_parameters(self, components: int, **like) -> None:
        """Parameters of ``components`` copies of ``N(0, I)`` (``like``: dtype, device)."""
        k, d = components, self.event_shape[0]
        self.components = components
        self.logits = nn.Parameter(torch.zeros(k, **like))
        self.shift = nn.Parameter(torch.zeros(k, d, **like))
        self.precision_off = nn.Parameter(torch.zeros(k, d, d, **like))  # strictly upper part used
        self.precision_log_diag = nn.Parameter(torch.zeros(k, d, **like))

    def extra_repr(self) -> str:
        return f"components={self.components}"


def _complete_data_score(em, x) -> float:
    """Mean over the rows of ``x`` of ``log p(x) + sum_k r_k log r_k`` under a fitted scikit-learn mixture."""
    r = em.predict_proba(x)
    entropy = -(r * np.log(np.where(r > 0, r, 1.0))).sum(1)
    return float((em.score_samples(x) - entropy).mean())


def _means_to_shifts(module: GaussianMixture, state_dict: dict, prefix: str, *args) -> None:
    """``load_state_dict`` pre-hook: accept the former layout, means ``loc`` instead of ``shift = loc P``."""
    if prefix + "loc" in state_dict and prefix + "shift" not in state_dict:
        p = _upper_factor(state_dict[prefix + "precision_off"], state_dict[prefix + "precision_log_diag"])
        state_dict[prefix + "shift"] = torch.einsum("kd,kde->ke", state_dict.pop(prefix + "loc"), p)


def _upper_factor(off: Tensor, log_diag: Tensor) -> Tensor:
    """``(K, D, D)`` upper-triangular factors from their strictly upper parts and log-diagonals."""
    return torch.triu(off, 1) + torch.diag_embed(torch.exp(log_diag))
