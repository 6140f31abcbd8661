"""Exact fast path for ReLU MLPs whose input is a single number.

A coupling layer on 2-D data feeds its conditioner one coordinate ``x``. Then
the first hidden layer ``relu(w x + b)`` switches unit ``j`` on or off at the
breakpoint ``t_j = -b_j / w_j``, and between consecutive breakpoints (``H + 1``
intervals) the second layer's pre-activation is linear in ``x``::

    W2 relu(w x + b) + b2 = A_k x + C_k      for x in interval k,
    A_k = sum_{j on in k} w_j W2[j],          C_k = b2 + sum_{j on in k} b_j W2[j]

So the ``B x H x H`` matrix products of the second layer become a table of
``H + 1`` rows (built in ``O(H^2)`` by walking the sorted breakpoints, one
unit switching per step) and a per-sample row lookup. The same function and
the same gradients (up to float rounding); breakpoints move with ``w`` and
``b`` but ``relu`` is continuous there, so they add no gradient term.

Tables, lookup, ``relu`` and the output layer run in one fused C kernel
(``piecewise.c``, compiled once per machine with the system C compiler and
loaded with ctypes); its backward pass recomputes the activations instead of
storing ``(copies, B, H)`` tensors and maps the table gradients back to the
weights with prefix sums. Without a C compiler, on CUDA, or with
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

__all__ = ["available", "mlp"]

_SOURCE = Path(__file__).with_name("piecewise.c")
_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared"]


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
    for fn, pointers in ((lib.piecewise_forward, 12), (lib.piecewise_backward, 19)):
        fn.argtypes, fn.restype = [i64] * 6 + [ptr] * pointers, ctypes.c_int
    return lib


def available(x: Tensor) -> bool:
    """Whether the fused kernel can run on ``x`` (CPU, float32/float64, library built,
    not being traced or exported: a graph cannot hold a ctypes call)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and _library() is not None


def _call(fn, *args) -> None:
    """Call a kernel: integers pass as they are, tensors (contiguous) by address."""
    status = fn(*(a.data_ptr() if isinstance(a, Tensor) else a for a in args))
    if status != 0:
        raise MemoryError("flowforge piecewise kernel: out of memory for its work buffers")


class _PiecewiseMLP(torch.autograd.Function):
    """``relu(relu(x w1 + b1) @ W2 + b2) @ W3 + b3`` per copy via the interval tables, fused."""

    @staticmethod
    def forward(ctx, x, w1, b1, W2, b2, W3, b3):
        x, w1, b1, W2, b2, W3, b3 = (v.contiguous() for v in (x, w1, b1, W2, b2, W3, b3))
        copies, K, H = W2.shape
        n, m = x.shape[0], W3.shape[-1]
        t = x.new_empty(copies, K)
        order = torch.empty(copies, K, dtype=torch.int64)
        A, C = x.new_empty(copies, K + 1, H), x.new_empty(copies, K + 1, H)
        out = x.new_empty(copies, n, m)
        _call(_library().piecewise_forward, x.element_size(), copies, n, K, H, m,
              x, w1, b1, W2, b2, W3, b3, t, order, A, C, out)
        ctx.save_for_backward(x, w1, b1, W2, W3, t, order, A, C)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, w1, b1, W2, W3, t, order, A, C = ctx.saved_tensors
        copies, K, H = W2.shape
        n, m = x.shape[0], W3.shape[-1]
        dx = x.new_empty(copies, n)
        dA, dC = torch.zeros_like(A), torch.zeros_like(C)
        dw1, db1, dW2 = torch.empty_like(w1), torch.empty_like(b1), torch.empty_like(W2)
        db2, dW3, db3 = x.new_empty(copies, 1, H), torch.zeros_like(W3), x.new_zeros(copies, 1, m)
        _call(_library().piecewise_backward, x.element_size(), copies, n, K, H, m,
              x, w1, b1, W2, W3, t, order, A, C, g.contiguous(), dx, dA, dC, dw1, db1, dW2, db2, dW3, db3)
        return dx.sum(0).unsqueeze(-1), dw1, db1, dW2, db2, dW3, db3


def mlp(x: Tensor, weights, biases) -> Tensor:
    """``copies`` ReLU MLPs ``1 -> K -> H -> m`` on a scalar input, exactly, via the interval tables.

    Args:
        x: ``(B, 1)``. weights, biases: the three layers of a
            :class:`~flowforge.nets.ParallelMLP` (``(copies, fan_in, fan_out)``, ``(copies, 1, fan_out)``).

    Returns:
        ``(copies, B, m)``.
    """
    return _PiecewiseMLP.apply(x, weights[0], biases[0], weights[1], biases[1], weights[2], biases[2])
