"""Small helpers shared by test modules."""
import torch


def perturb(module, scale: float = 0.1):
    """Add ``scale * N(0, 1)`` noise to every parameter of ``module`` in place (zero-initialized layers
    would otherwise make every flow the identity); returns ``module``."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module
