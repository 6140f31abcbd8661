"""The one path from raw data to model input (training, evaluation, ``check``, the image commands)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..data import Dataset
from ..distributions import Flow
from ..errors import DataError

__all__ = ["model_input"]


def model_input(
    flow: Flow, raw: Tensor, dataset: Dataset | None = None, noise: torch.Generator | None | str = None
) -> Tensor:
    """Raw rows or images ``(N, ...)`` in data units -> the flow's input ``(N, *event_shape)``.

    Cast to the flow's dtype; quantized data (``dataset.quantized``: pixel levels or grid-recorded
    columns) dequantized by ``dataset.dequantize`` with noise drawn from the generator ``noise``
    (``noise="center"``: the bin centres ``v + 1/2`` of images); moved to the flow's device;
    reshaped when only the layout differs (a vector model on images flattens them).
    """
    param = next(flow.parameters(), None)
    x = raw if param is None else raw.to(param.dtype)
    if dataset is not None and noise == "center" and dataset.levels:
        x = x + 0.5
    elif dataset is not None and noise != "center":
        x = dataset.dequantize(x, noise)
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
