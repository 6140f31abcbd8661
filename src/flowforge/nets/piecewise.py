"""Exact fast path for ReLU MLPs whose input is a single number.

A coupling layer on 2-D data feeds its conditioner one coordinate ``x``. Then
the first hidden layer ``relu(w x + b)`` switches unit ``j`` on or off at the
breakpoint ``t_j = -b_j / w_j``, and between consecutive breakpoints (``H + 1``
intervals) the second layer's pre-activation is linear in ``x``::

    W2 relu(w x + b) + b2 = A_k x + C_k      for x in interval k,
    A_k = sum_{j on in k} w_j W2[j],          C_k = b2 + sum_{j on in k} b_j W2[j]

So the ``B x H x H`` matrix products of the second layer become an
``(H + 1) x H x H`` table and a per-sample row lookup. The same function and
the same gradients (up to float rounding); breakpoints move with ``w`` and
``b`` but ``relu`` is continuous there, so they add no gradient term.

The lookup, ``relu`` and the output layer run in one fused C kernel
(``piecewise.c``, compiled once per machine with the system C compiler and
loaded with ctypes); its backward pass recomputes the activations instead of
storing ``(copies, B, H)`` tensors. Without a C compiler, on CUDA, or with
``FLOWFORGE_NATIVE=0``, :class:`~flowforge.nets.ParallelMLP` uses its
batched matrix products instead. The kernel's backward is first-order only.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["available", "interval_tables", "mlp"]

_SOURCE = Path(__file__).with_name("piecewise.c")
_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared", "-pthread"]


def _cache_dir() -> Path:
    root = os.environ.get("FLOWFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flowforge"
    )
    return Path(root)


def _cpu_tag() -> str:
    """Identifies the instruction set the library was built for (``-march=native``)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """Compile (once, cached on disk) and load the kernel; ``None`` when unavailable."""
    if os.environ.get("FLOWFORGE_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None or platform.system() == "Windows":
        return None
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([compiler, *_FLAGS, _cpu_tag()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"piecewise-{key}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built = Path(tmp) / target.name
                subprocess.run(
                    [compiler, *_FLAGS, str(_SOURCE), "-o", str(built)],
                    check=True, capture_output=True, text=True, timeout=120,
                )
                os.replace(built, target)  # atomic: concurrent processes never load a partial file
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or err
        warnings.warn(f"flowforge: fused CPU kernel unavailable, using plain PyTorch ({detail})", stacklevel=3)
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.piecewise_forward.argtypes = [i64] * 6 + [ptr] * 7 + [i64]
    lib.piecewise_backward.argtypes = [i64] * 6 + [ptr] * 11 + [i64]
    return lib


def available(x: Tensor) -> bool:
    """Whether the fused kernel can run on ``x`` (CPU, float32/float64, library built)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and _library() is not None


def interval_tables(w: Tensor, b: Tensor, W2: Tensor, b2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The exact piecewise-linear form of ``relu(x w + b) @ W2 + b2`` for ``copies`` nets.

    Args:
        w, b: ``(copies, 1, H)`` first layer. W2: ``(copies, H, H2)``, b2: ``(copies, 1, H2)``.

    Returns:
        ``t`` ``(copies, H)`` sorted breakpoints and the tables ``A``, ``C``
        ``(copies, H + 1, H2)``: for ``x`` above exactly ``k`` of them the
        pre-activation is ``x A[k] + C[k]``. ``A`` and ``C`` carry autograd to ``w, b, W2, b2``.
    """
    hidden = w.shape[-1]
    w, b = w[:, 0], b[:, 0]
    with torch.no_grad():
        up, down = w > 0, w < 0  # unit on for x > t (up), for x < t (down), always or never (w == 0)
        t = torch.where(up | down, -b / torch.where(up | down, w, 1), 0)
        sorted_t, order = t.sort(-1)
        rank = torch.empty_like(order).scatter_(-1, order, torch.arange(hidden, device=w.device).expand_as(order))
        k = torch.arange(hidden + 1, device=w.device).view(1, -1, 1)
        rank, up, down = rank.unsqueeze(1), up.unsqueeze(1), down.unsqueeze(1)
        on = (up & (rank < k)) | (down & (rank >= k)) | (~up & ~down & (b > 0).unsqueeze(1))
        on = on.to(w.dtype)  # (copies, H + 1, H): unit j on in interval k
    # both tables in one product: [on * w; on * b] @ W2
    AC = torch.bmm(torch.cat([on * w.unsqueeze(1), on * b.unsqueeze(1)], 1), W2)
    return sorted_t, AC[:, : hidden + 1], AC[:, hidden + 1 :] + b2


class _PiecewiseMLP(torch.autograd.Function):
    """``relu(x A[k] + C[k]) @ W3 + b3`` per copy, ``k`` = breakpoints below ``x``; fused."""

    @staticmethod
    def forward(ctx, x, t, A, C, W3, b3):
        copies, breaks, (_, hidden, m) = t.shape[0], t.shape[1], W3.shape
        x, t, A, C, W3, b3 = (v.contiguous() for v in (x, t, A, C, W3, b3))
        out = x.new_empty(copies, x.shape[0], m)
        _library().piecewise_forward(
            x.element_size(), copies, x.shape[0], breaks, hidden, m,
            *(v.data_ptr() for v in (x, t, A, C, W3, b3, out)), torch.get_num_threads(),
        )
        ctx.save_for_backward(x, t, A, C, W3)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, t, A, C, W3 = ctx.saved_tensors
        copies, breaks, (_, hidden, m) = t.shape[0], t.shape[1], W3.shape
        g = g.contiguous()
        dx = x.new_empty(copies, x.shape[0])
        dA, dC, dW3 = torch.zeros_like(A), torch.zeros_like(C), torch.zeros_like(W3)
        db3 = x.new_zeros(copies, 1, m)
        _library().piecewise_backward(
            x.element_size(), copies, x.shape[0], breaks, hidden, m,
            *(v.data_ptr() for v in (x, t, A, C, W3, g, dx, dA, dC, dW3, db3)), torch.get_num_threads(),
        )
        return dx.sum(0).unsqueeze(-1), None, dA, dC, dW3, db3


def mlp(x: Tensor, weights, biases) -> Tensor:
    """``copies`` ReLU MLPs ``1 -> H -> H2 -> m`` on a scalar input, exactly, via the interval tables.

    Args:
        x: ``(B, 1)``. weights, biases: the three layers of a
            :class:`~flowforge.nets.ParallelMLP` (``(copies, fan_in, fan_out)``, ``(copies, 1, fan_out)``).

    Returns:
        ``(copies, B, m)``.
    """
    t, A, C = interval_tables(weights[0], biases[0], weights[1], biases[1])
    return _PiecewiseMLP.apply(x, t, A, C, weights[2], biases[2])
