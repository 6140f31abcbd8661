"""Conditioner networks (no flow logic here)."""
from .conv import ConvNet, ResNet
from .made import MADE
from .mlp import MLP, ParallelMLP, activation

__all__ = ["MADE", "MLP", "ConvNet", "ParallelMLP", "ResNet", "activation"]
