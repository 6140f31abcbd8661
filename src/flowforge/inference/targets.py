"""Unnormalized target densities for variational inference.

A target is known only up to a constant: ``log_prob(x) = log p~(x)`` with
``p(x) = p~(x) / Z``. Built-in targets also carry ``log_z = log Z`` (exact, or
from quadrature where no closed form exists), so that a fitted flow's estimate
of ``log Z`` can be checked.

Built-in targets (:func:`make_target` by name):

* ``u1`` .. ``u4``: Rezende & Mohamed's 2-D energies, ``p~ = exp(-U)``.
  U2-U4 depend on ``z1`` only through a periodic ``sin`` and bumps, so they
  are not integrable in ``z1``; we multiply them by the window
  ``exp(-z1^2 / (2 * 2^2))``, which keeps 95 % of the mass inside the square
  ``[-4, 4]^2`` the paper plots. Their ``z2``-integral is then the same for
  every ``z1`` (a Gaussian, or a two-component Gaussian mixture, in ``z2``),
  which gives ``Z`` in closed form. U1 has no closed form: its ``log_z`` was
  computed once with :func:`grid_log_z` (trapezoid rule, float64, on a
  4001 x 4001 grid over ``[-7, 7]^2``; spacing 0.0035, against features of
  width >= 0.4, so the rule's error is far below 1e-12, and halving the grid
  changes the value by < 1e-13).
* ``banana``: a twisted Gaussian, ``x1 ~ N(0, s^2)``, ``x2 | x1 ~ N(b (x1^2 - s^2), t^2)``.
* ``ring``: ``p~(x) = exp(-(|x| - r)^2 / (2 w^2))``, with ``Z`` in closed form.
* ``mixture``: an isotropic Gaussian mixture with unnormalized weights, ``Z = sum(weights)``.

Any Python callable ``x -> log p~(x)`` becomes a target with :func:`as_target`.

References:
    Rezende & Mohamed, "Variational Inference with Normalizing Flows",
    arXiv:1505.05770 (Table 1). Haario et al., "Adaptive proposal distribution
    for random walk Metropolis algorithm", 1999 (the twisted Gaussian).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from ..registry import Registry

__all__ = [
    "Target",
    "CallableTarget",
    "RezendeTarget",
    "Banana",
    "Ring",
    "GaussianMixture",
    "as_target",
    "available_targets",
    "grid_log_z",
    "make_target",
    "register_target",
]

Bounds = tuple[tuple[float, float], tuple[float, float]]


class Target:
    """An unnormalized density ``p~`` over ``R^dim``.

    Attributes:
        name: a short label.
        dim: the event dimension, or ``None`` when unknown (taken from the flow).
        log_z: ``log Z = log of the integral of p~``, or ``None`` when unknown.
        bounds: the box ``((x_lo, x_hi), (y_lo, y_hi))`` plots of a 2-D target show.

    Shapes:
        x: ``(B, dim)``; ``log_prob(x)``: ``(B,)``, in the dtype and on the device of ``x``.
    """

    name: str = "target"
    dim: int | None = None
    log_z: float | None = None
    bounds: Bounds = ((-4.0, 4.0), (-4.0, 4.0))

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p~(x)``, shape ``(B,)``."""
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, log_z={self.log_z})"


class CallableTarget(Target):
    """Wraps a function ``fn(x) -> log p~(x)`` as a :class:`Target`.

    Args:
        fn: the unnormalized log-density, ``(B, dim) -> (B,)``.
        dim: the event dimension, or ``None`` to take the flow's.
        log_z: the true ``log Z`` when known.
        name: a label (defaults to the function's name).
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], dim: int | None = None, log_z: float | None = None,
                 name: str | None = None):
        if not callable(fn):
            raise TypeError(f"a target must be callable (x -> log density), got {type(fn).__name__}")
        self.fn = fn
        self.dim = dim
        self.log_z = log_z
        self.name = name or getattr(fn, "__name__", "callable")

    def log_prob(self, x: Tensor) -> Tensor:
        return self.fn(x)


def as_target(target: Target | Callable[[Tensor], Tensor] | str, dim: int | None = None) -> Target:
    """A :class:`Target` from a target, a registered name or any callable ``x -> log p~(x)``."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return make_target(target)
    log_prob = getattr(target, "log_prob", None)
    if callable(log_prob):  # e.g. a torch Distribution: normalized, but log Z = 0 is not assumed
        return CallableTarget(log_prob, dim=dim, name=type(target).__name__)
    return CallableTarget(target, dim=dim)


# -- Rezende & Mohamed (2015), Table 1 ---------------------------------------------------

_WINDOW = 2.0  # std of the z1 window that makes U2-U4 integrable
_SQRT_2PI = math.sqrt(2 * math.pi)


def _gauss_exponent(u: Tensor, width: float) -> Tensor:
    return -0.5 * (u / width) ** 2


def _w1(z1: Tensor) -> Tensor:
    return torch.sin(0.5 * math.pi * z1)


def _w2(z1: Tensor) -> Tensor:
    return 3.0 * torch.exp(_gauss_exponent(z1 - 1.0, 0.6))


def _w3(z1: Tensor) -> Tensor:
    return 3.0 * torch.sigmoid((z1 - 1.0) / 0.3)


def _u1(z1: Tensor, z2: Tensor) -> Tensor:
    r = torch.sqrt(z1 * z1 + z2 * z2)
    modes = torch.logaddexp(_gauss_exponent(z1 - 2.0, 0.6), _gauss_exponent(z1 + 2.0, 0.6))
    return 0.5 * ((r - 2.0) / 0.4) ** 2 - modes


def _u2(z1: Tensor, z2: Tensor) -> Tensor:
    return 0.5 * ((z2 - _w1(z1)) / 0.4) ** 2


def _u3(z1: Tensor, z2: Tensor) -> Tensor:
    u = z2 - _w1(z1)
    return -torch.logaddexp(_gauss_exponent(u, 0.35), _gauss_exponent(u + _w2(z1), 0.35))


def _u4(z1: Tensor, z2: Tensor) -> Tensor:
    u = z2 - _w1(z1)
    return -torch.logaddexp(_gauss_exponent(u, 0.4), _gauss_exponent(u + _w3(z1), 0.35))


# (energy, windowed, log Z). For U2-U4 the z2-integral of exp(-U) is sqrt(2 pi) times
# the sum of the component widths whatever z1 is, and the window integrates to sqrt(2 pi) * 2.
_REZENDE = {
    1: (_u1, False, 1.8775016261097086),  # grid_log_z(u1, ((-7, 7), (-7, 7)), 4001)
    2: (_u2, True, math.log(2 * math.pi * _WINDOW * 0.4)),
    3: (_u3, True, math.log(2 * math.pi * _WINDOW * (0.35 + 0.35))),
    4: (_u4, True, math.log(2 * math.pi * _WINDOW * (0.4 + 0.35))),
}


class RezendeTarget(Target):
    """Rezende & Mohamed's energy ``U_k``: ``log p~(z) = -U_k(z)`` (times a ``z1`` window for k = 2, 3, 4).

    Args:
        index: 1, 2, 3 or 4 (the row of the paper's Table 1).

    Shapes: ``(B, 2) -> (B,)``.
    """

    dim = 2

    def __init__(self, index: int):
        if index not in _REZENDE:
            raise ConfigError(f"Rezende & Mohamed energies are numbered 1 to 4, got {index!r}")
        self.index = index
        self.name = f"u{index}"
        self.energy, self.windowed, self.log_z = _REZENDE[index]

    def log_prob(self, x: Tensor) -> Tensor:
        log_p = -self.energy(x[..., 0], x[..., 1])
        if self.windowed:
            log_p = log_p + _gauss_exponent(x[..., 0], _WINDOW)
        return log_p


class Banana(Target):
    """Twisted Gaussian: ``log p~(x) = -x1^2 / (2 s^2) - (x2 - b (x1^2 - s^2))^2 / (2 t^2)``.

    ``Z = 2 pi s t`` (the twist has unit Jacobian).

    Args:
        scale: ``s``, the spread of ``x1``.
        curvature: ``b``.
        width: ``t``, the spread of ``x2`` around the curve.
    """

    dim = 2
    name = "banana"

    def __init__(self, scale: float = 2.0, curvature: float = 0.5, width: float = 0.5):
        _check_positive(scale=scale, width=width)
        self.scale, self.curvature, self.width = float(scale), float(curvature), float(width)
        self.log_z = math.log(2 * math.pi * self.scale * self.width)
        lo = -0.5 * self.curvature * self.scale**2
        reach = self.curvature * 8 * self.scale**2
        self.bounds = ((-3.5 * scale, 3.5 * scale), (min(lo, lo + reach) - 4 * width, max(lo, lo + reach) + 4 * width))

    def log_prob(self, x: Tensor) -> Tensor:
        x1, x2 = x[..., 0], x[..., 1]
        curve = self.curvature * (x1 * x1 - self.scale**2)
        return _gauss_exponent(x1, self.scale) + _gauss_exponent(x2 - curve, self.width)


class Ring(Target):
    """``log p~(x) = -(|x| - r)^2 / (2 w^2)`` on ``R^2``.

    In polar coordinates ``Z = 2 pi * int_0^inf rho exp(-(rho - r)^2 / (2 w^2)) d rho
    = 2 pi (w^2 exp(-r^2 / (2 w^2)) + r w sqrt(2 pi) Phi(r / w))``.

    Args:
        radius: ``r``.
        width: ``w``.
    """

    dim = 2
    name = "ring"

    def __init__(self, radius: float = 2.5, width: float = 0.4):
        _check_positive(radius=radius, width=width)
        self.radius, self.width = float(radius), float(width)
        r, w = self.radius, self.width
        phi = 0.5 * math.erfc(-r / (w * math.sqrt(2)))
        self.log_z = math.log(2 * math.pi * (w * w * math.exp(-0.5 * (r / w) ** 2) + r * w * _SQRT_2PI * phi))
        edge = r + 5 * w
        self.bounds = ((-edge, edge), (-edge, edge))

    def log_prob(self, x: Tensor) -> Tensor:
        return _gauss_exponent(torch.linalg.vector_norm(x, dim=-1) - self.radius, self.width)


class GaussianMixture(Target):
    """``p~(x) = sum_k a_k N(x; mu_k, s_k^2 I)`` with unnormalized weights ``a_k``; ``Z = sum_k a_k``.

    Args:
        means: ``(K, dim)`` component means.
        stds: ``K`` isotropic standard deviations.
        weights: ``K`` positive weights (not normalized).
    """

    name = "mixture"

    def __init__(
        self,
        means: Sequence[Sequence[float]] = ((-1.5, -1.0), (1.5, -1.0), (0.0, 1.5)),
        stds: Sequence[float] = (0.6, 0.6, 0.6),
        weights: Sequence[float] = (0.5, 1.0, 1.5),
    ):
        means_t = torch.as_tensor(means, dtype=torch.float64)
        stds_t = torch.as_tensor(stds, dtype=torch.float64)
        weights_t = torch.as_tensor(weights, dtype=torch.float64)
        k = means_t.shape[0]
        if means_t.ndim != 2 or stds_t.shape != (k,) or weights_t.shape != (k,):
            raise ConfigError(
                f"mixture needs means (K, dim), stds (K,) and weights (K,); got shapes "
                f"{tuple(means_t.shape)}, {tuple(stds_t.shape)}, {tuple(weights_t.shape)}"
            )
        if (stds_t <= 0).any() or (weights_t <= 0).any():
            raise ConfigError("mixture stds and weights must be positive")
        self.means, self.stds, self.weights = means_t, stds_t, weights_t
        self.dim = means_t.shape[1]
        self.log_z = math.log(float(weights_t.sum()))
        reach = float((means_t.abs() + 4 * stds_t[:, None]).max())
        self.bounds = ((-reach, reach), (-reach, reach))

    def log_prob(self, x: Tensor) -> Tensor:
        means, stds = self.means.to(x), self.stds.to(x)
        sq = ((x[..., None, :] - means) ** 2).sum(-1)  # (B, K)
        log_n = -0.5 * sq / stds**2 - self.dim * (torch.log(stds) + 0.5 * math.log(2 * math.pi))
        return torch.logsumexp(log_n + torch.log(self.weights.to(x)), dim=-1)


def _check_positive(**values: float) -> None:
    for key, v in values.items():
        if not v > 0:
            raise ConfigError(f"{key} must be positive, got {v!r}")


# -- registry ----------------------------------------------------------------------------

TARGETS: Registry[Callable[..., Target]] = Registry("target")


def register_target(name: str) -> Callable[[Callable[..., Target]], Callable[..., Target]]:
    """Decorator: make ``factory(**options) -> Target`` available as ``make_target(name)``."""
    return TARGETS.register(name)


for _k in _REZENDE:
    register_target(f"u{_k}")(lambda _k=_k: RezendeTarget(_k))
register_target("banana")(Banana)
register_target("ring")(Ring)
register_target("mixture")(GaussianMixture)


def available_targets() -> list[str]:
    """Names accepted by :func:`make_target`."""
    return TARGETS.names()


def make_target(name: str, **options) -> Target:
    """The built-in target ``name`` (see :func:`available_targets`)."""
    return TARGETS[name](**options)


# -- quadrature --------------------------------------------------------------------------


@torch.no_grad()
def grid_log_z(log_prob: Callable[[Tensor], Tensor], bounds: Bounds, n: int = 2001, chunk: int = 1 << 20) -> float:
    """``log`` of the integral of ``exp(log_prob)`` over a 2-D box, by the trapezoid rule in float64.

    For a smooth density that is negligible on the box's edges, the trapezoid
    rule converges faster than any power of the spacing, so a grid a few times
    finer than the narrowest feature is exact to float64 precision.

    Args:
        log_prob: ``(B, 2) -> (B,)``.
        bounds: ``((x_lo, x_hi), (y_lo, y_hi))``.
        n: grid points per axis.
        chunk: points evaluated per call.
    """
    (x_lo, x_hi), (y_lo, y_hi) = bounds
    xs = torch.linspace(x_lo, x_hi, n, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, n, dtype=torch.float64)
    # log trapezoid weights: 1/2 on the edges of each axis
    edge = torch.zeros(n, dtype=torch.float64)
    edge[[0, -1]] = math.log(0.5)
    log_h = math.log((x_hi - x_lo) / (n - 1)) + math.log((y_hi - y_lo) / (n - 1))
    rows_per_chunk = max(1, chunk // n)
    parts = []
    for start in range(0, n, rows_per_chunk):
        x = xs[start : start + rows_per_chunk]
        grid = torch.stack(torch.meshgrid(x, ys, indexing="ij"), dim=-1).reshape(-1, 2)
        values = log_prob(grid).reshape(len(x), n) + edge[start : start + len(x), None] + edge[None, :]
        parts.append(torch.logsumexp(values.flatten(), 0))
    return float(torch.logsumexp(torch.stack(parts), 0)) + log_h
