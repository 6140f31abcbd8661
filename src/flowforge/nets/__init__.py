"""Conditioner networks (no flow logic here)."""
from .mlp import MLP, ParallelMLP, activation

__all__ = ["MLP", "ParallelMLP", "activation"]
