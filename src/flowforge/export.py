"""Export a flow's ``log_prob`` as a standalone graph: ONNX or TorchScript.

    graph(x[, context]) = log p(x | context)     x: (B, *event_shape) float32 -> (B,)

The batch size stays free. ONNX goes through ``torch.export`` (needs the
``[onnx]`` extra); TorchScript through ``torch.jit.trace``. A flow the tracer
cannot follow is refused with an :class:`ExportError` naming the model.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .distributions import Flow
from .errors import ConfigError

__all__ = ["FORMATS", "ExportError", "export"]

FORMATS = ("onnx", "torchscript")


class ExportError(ConfigError):
    """The flow cannot be written in the asked format; the message says why (a user error: exit 2)."""


class _LogProb(nn.Module):
    """``log_prob`` as the module's call, the one thing an exported graph computes.

    The flow's transform and base are the registered children; the flow itself
    is held unregistered because ``torch.jit.trace`` probes every child's
    attributes and a ``Distribution``'s ``mean`` raises ``NotImplementedError``.
    """

    def __init__(self, flow: Flow):
        super().__init__()
        self.transform, self.base = flow.transform, flow.base
        self.__dict__["flow"] = flow

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.flow.log_prob(x, context)


def export(flow: Flow, path: str | Path, format: str = "onnx") -> Path:
    """Write ``flow.log_prob`` to ``path`` as ``format`` (``"onnx"`` or ``"torchscript"``).

    The graph's inputs are ``x`` (float32, ``(B, *event_shape)``) and, for a
    conditional flow, ``context`` (``(B, context_dim)``); its output is
    ``log_prob`` (``(B,)``, nats). The flow itself is left unchanged (a float32
    CPU copy in eval mode is traced).

    Raises:
        ExportError: unknown format, missing exporter, or a flow the tracer cannot follow.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose from {', '.join(FORMATS)}")
    path = Path(path)
    module = _LogProb(copy.deepcopy(flow).float().cpu().eval())
    context = torch.zeros(2, flow.context_dim) if flow.context_dim else None
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = module.flow.sample(2, context)  # example inputs for the tracer; the batch size stays free
    inputs = (x,) if context is None else (x, context)
    names = ["x", "context"][: len(inputs)]
    name = flow.config.get("name", type(flow.transform).__name__)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter; failures raise
            if format == "onnx":
                _onnx(module, inputs, names, path)
            else:
                torch.jit.trace(module, inputs, check_trace=False).save(str(path))
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001  the exporters raise many types; all mean "cannot export"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"cannot export model {name!r} as {format}: {type(e).__name__}: {first}") from e
    return path


def _onnx(module: nn.Module, inputs: tuple[Tensor, ...], names: list[str], path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise ExportError("ONNX export needs onnx and onnxscript: pip install 'flowforge[onnx]'") from None
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        module,
        inputs,
        str(path),
        input_names=names,
        output_names=["log_prob"],
        dynamic_shapes=tuple({0: batch} for _ in inputs),
        dynamo=True,
        verbose=False,
    )
