"""Convolutional conditioners for image couplings.

:class:`ConvNet` is Glow's three-layer network; :class:`ResNet` is a small
residual network in the spirit of Real NVP's. Both keep the spatial size
(``same`` padding) and map ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
Zero-initializing the last layer (so a coupling starts as the identity) is the
model builder's choice, passed as ``zero_init``.

References:
    Kingma & Dhariwal, "Glow", arXiv:1807.03039, Sec. 3.3;
    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, Sec. 4.1;
    He et al., "Deep residual learning", arXiv:1512.03385.
"""
from __future__ import annotations

from torch import Tensor, nn

from .mlp import activation as make_activation

__all__ = ["ConvNet", "ResNet"]


def _conv(in_channels: int, out_channels: int, kernel_size: int, zero_init: bool = False) -> nn.Conv2d:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number (same padding), got {kernel_size}")
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    if zero_init:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


class ConvNet(nn.Sequential):
    """``conv k x k -> act -> conv 1x1 -> act -> conv k x k`` (Glow's coupling network).

    Args:
        in_channels, out_channels: channel counts of input and output.
        hidden: channels of the two hidden layers.
        kernel_size: of the first and last convolutions (odd).
        activation: hidden activation name.
        zero_init: start the last convolution at zero.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        kernel_size: int = 3,
        activation: str = "relu",
        zero_init: bool = False,
    ):
        super().__init__(
            _conv(in_channels, hidden, kernel_size),
            make_activation(activation),
            _conv(hidden, hidden, 1),
            make_activation(activation),
            _conv(hidden, out_channels, kernel_size, zero_init),
        )


class _Residual(nn.Module):
    """``h + conv(act(conv(act(h))))``."""

    def __init__(self, channels: int, kernel_size: int, activation: str):
        super().__init__()
        self.body = nn.Sequential(
            make_activation(activation),
            _conv(channels, channels, kernel_size),
            make_activation(activation),
            _conv(channels, channels, kernel_size),
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.body(h)


class ResNet(nn.Sequential):
    """``conv -> blocks x residual(act, conv, act, conv) -> act -> conv``.

    Args:
        in_channels, out_channels: channel counts of input and output.
        hidden: channels inside the network.
        blocks: number of residual blocks.
        kernel_size: of every convolution (odd).
        activation: hidden activation name.
        zero_init: start the last convolution at zero.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        blocks: int = 2,
        kernel_size: int = 3,
        activation: str = "relu",
        zero_init: bool = False,
    ):
        if blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks}")
        super().__init__(
            _conv(in_channels, hidden, kernel_size),
            *[_Residual(hidden, kernel_size, activation) for _ in range(blocks)],
            make_activation(activation),
            _conv(hidden, out_channels, kernel_size, zero_init),
        )
