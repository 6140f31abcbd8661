"""Brute-force numerical checks of a Transform, shared by the test suite and
``flowforge check``.

:func:`check_transform` verifies, in the dtype of the input (use float64):
invertibility both ways, ``ld_fwd(x) + ld_inv(f(x)) = 0``, the log-det
against ``log|det J|`` of the autograd Jacobian per sample, and that the
Jacobian over a batch is block diagonal (no leakage between samples).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .transforms import Transform

__all__ = ["TransformReport", "check_transform", "brute_force_log_abs_det"]


@dataclass
class TransformReport:
    """Largest errors found by :func:`check_transform` (all in absolute units)."""

    reconstruction_x: float = 0.0  # max |x - f^-1(f(x))|
    reconstruction_z: float = 0.0  # max |z - f(f^-1(z))|
    log_det_consistency: float = 0.0  # max |ld_fwd(x) + ld_inv(f(x))|
    log_det_forward: float = 0.0  # max |ld_fwd - log|det J_f||
    log_det_inverse: float = 0.0  # max |ld_inv - log|det J_f^-1||
    batch_leakage: float = 0.0  # max |off-diagonal block of the batch Jacobian|
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {"problems": list(self.problems)}

    def ok(self, tol: float) -> bool:
        values = [v for k, v in self.__dict__.items() if k != "problems"]
        return not self.problems and all(v <= tol for v in values)


def brute_force_log_abs_det(fn, x: Tensor) -> Tensor:
    """``log|det d fn(x_i) / d x_i|`` for each sample, from the autograd Jacobian.

    ``fn`` maps a batch ``(B, *shape)`` to ``(B, *shape')`` with equal sizes.
    Returns shape ``(B,)``.
    """
    out = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda v: fn(v).flatten(), xi).reshape(-1, xi[0].numel())
        out.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(out)


def _max_abs(t: Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def check_transform(
    transform: Transform,
    x: Tensor,
    context: Tensor | None = None,
    jacobian_samples: int = 3,
    check_jacobian: bool = True,
) -> TransformReport:
    """Run the numerical checks on inputs ``x`` (``(B, *event_shape)``).

    The Jacobian checks use the first ``jacobian_samples`` rows; skip them
    (``check_jacobian=False``) when the flattened event is large.
    """
    report = TransformReport()
    transform.eval()
    with torch.no_grad():
        z, ld_fwd = transform(x, context)
        x_rec, ld_inv = transform.inverse(z, context)
        z_rec, _ = transform(x_rec, context)
    for name, t in (("z", z), ("forward log_abs_det", ld_fwd), ("x reconstruction", x_rec)):
        if not torch.isfinite(t).all():
            report.problems.append(f"{name} has {int((~torch.isfinite(t)).sum())} non-finite values")
    if ld_fwd.shape != (x.shape[0],):
        report.problems.append(f"log_abs_det has shape {tuple(ld_fwd.shape)}, expected ({x.shape[0]},)")
    if z.dtype != x.dtype or ld_fwd.dtype != x.dtype:
        report.problems.append(f"dtype changed: x {x.dtype}, z {z.dtype}, log_abs_det {ld_fwd.dtype}")
    if report.problems:
        return report
    report.reconstruction_x = _max_abs(x - x_rec)
    report.reconstruction_z = _max_abs(z - z_rec)
    report.log_det_consistency = _max_abs(ld_fwd + ld_inv)
    if not check_jacobian:
        return report
    k = min(jacobian_samples, x.shape[0])
    ctx = None if context is None else context[:k]

    def ctx_for(v: Tensor, c: Tensor | None) -> Tensor | None:
        return None if c is None else c[: v.shape[0]]

    per_sample = []
    for i in range(k):
        ci = None if ctx is None else ctx[i : i + 1]
        per_sample.append((x[i : i + 1], z[i : i + 1], ci))
    bf_fwd = torch.cat(
        [brute_force_log_abs_det(lambda v, c=c: transform(v, ctx_for(v, c))[0], xi) for xi, _, c in per_sample]
    )
    bf_inv = torch.cat(
        [brute_force_log_abs_det(lambda v, c=c: transform.inverse(v, ctx_for(v, c))[0], zi) for _, zi, c in per_sample]
    )
    report.log_det_forward = _max_abs(bf_fwd - ld_fwd[:k])
    report.log_det_inverse = _max_abs(bf_inv - ld_inv[:k])
    if k >= 2:
        jac = torch.autograd.functional.jacobian(lambda v: transform(v, ctx)[0], x[:k])
        d = x[0].numel()
        jac = jac.reshape(k, d, k, d)
        off = jac.clone()
        for i in range(k):
            off[i, :, i, :] = 0
        report.batch_leakage = _max_abs(off)
    return report
