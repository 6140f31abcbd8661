"""The one path from raw data to model input (training, evaluation, ``check``, the image commands)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..data import dequantize
from ..distributions import Flow
from ..errors import DataError

__all__ = ["model_input"]


def model_input(
    flow: Flow, raw: Tensor, levels: int | None = None, noise: torch.Generator | None | str = None
) -> Tensor:
    """Raw rows or images ``(N, ...)`` in data units -> the flow's input ``(N, *event_shape)``.

    Cast to the flow's dtype; quantized data (``levels``) dequantized, ``w = v + u`` with ``u ~ U[0, 1)``
    drawn from the generator ``noise`` (``noise="center"``: ``u = 1/2``, the bin centres); moved to the
    flow's device; reshaped when only the layout differs (a vector model on images flattens them).
    The one path from data to model, for training, evaluation, ``check`` and the image commands.
    """
    param = next(flow.parameters(), None)
    x = raw if param is None else raw.to(param.dtype)
    if levels and noise == "center":
        x = x + 0.5
    elif levels:
        x = dequantize(x, noise)
    if param is not None:
        x = x.to(param.device)
    shape = tuple(flow.event_shape)
    if tuple(x.shape[1:]) == shape:
        return x
    if x.ndim > 1 and x[0].numel() == torch.Size(shape).numel():
        return x.reshape(x.shape[0], *shape)
    raise DataError(
        f"data has examples of shape {tuple(x.shape[1:])} but the model expects {shape}; "
        "was the model trained on other data?"
    )
