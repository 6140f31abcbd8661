"""The generic transform contract: every case in cases.py gets every check."""
from __future__ import annotations

import inspect

import pytest
import torch

import flowforge.transforms as T
from flowforge.testing import check_transform

from .cases import CASES, Case

TOL64 = 1e-8


def prepare(case: Case, device: torch.device, dtype=torch.float64, n: int = 6):
    """Build the layer, perturb every parameter, run data-dependent init, eval()."""
    layer = case.factory().to(device=device, dtype=dtype)
    x = case.sampler(n).to(device=device, dtype=dtype)
    context = torch.randn(n, case.context_dim, dtype=dtype, device=device) if case.context_dim else None
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    if layer.is_data_dependent:
        layer.initialize(
            case.sampler(64).to(device=device, dtype=dtype),
            None if context is None else torch.randn(64, case.context_dim, dtype=dtype, device=device),
        )
    layer.eval()
    return layer, x, context


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract_float64(case: Case, device):
    layer, x, context = prepare(case, device)
    report = check_transform(layer, x, context)
    assert report.problems == []
    for name, value in report.as_dict().items():
        if name != "problems":
            assert value < TOL64, f"{name} = {value:.3e}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_not_identity_when_learnable(case: Case, device):
    layer, x, context = prepare(case, device)
    if not any(True for _ in layer.parameters()):
        pytest.skip("no parameters")
    z, _ = layer(x, context)
    assert (z.reshape(x.shape) - x).abs().max() > 1e-3, (
        "perturbed layer is still the identity: the contract check would be vacuous"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_batch_of_one_and_float32(case: Case, device):
    layer, x, context = prepare(case, device, dtype=torch.float32)
    z1, ld1 = layer(x[:1], None if context is None else context[:1])
    zb, ldb = layer(x, context)
    assert ld1.shape == (1,) and ld1.dtype == torch.float32
    torch.testing.assert_close(z1, zb[:1], rtol=1e-4, atol=1e-5)
    report = check_transform(layer, x, context, check_jacobian=False)
    assert report.ok(1e-4), report


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradients_reach_every_parameter(case: Case, device):
    layer, x, context = prepare(case, device)
    if not any(True for _ in layer.parameters()):
        pytest.skip("no parameters")
    layer.train()
    z, ld = layer(x, context)
    (z.sum() + ld.sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("case", [c for c in CASES if c.context_dim], ids=lambda c: c.id)
def test_context_changes_output(case: Case, device):
    layer, x, context = prepare(case, device)
    z1, _ = layer(x, context)
    z2, _ = layer(x, context + 1.0)
    assert (z1 - z2).abs().max() > 1e-6


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_state_dict_round_trip(case: Case, device):
    layer, x, context = prepare(case, device)
    twin = case.factory().to(device=device, dtype=torch.float64)
    twin.load_state_dict(layer.state_dict())
    twin.eval()
    assert torch.equal(layer(x, context)[0], twin(x, context)[0])


def test_every_transform_has_a_case():
    covered: set[type] = set()
    for case in CASES:
        layer = case.factory()
        covered |= {type(m) for m in layer.modules()} | set(case.covers)
    public = [
        getattr(T, name)
        for name in T.__all__
        if inspect.isclass(getattr(T, name))
        and issubclass(getattr(T, name), T.Transform)
        and getattr(T, name) is not T.Transform
    ]
    missing = [cls.__name__ for cls in public if cls not in covered]
    assert not missing, f"transforms without a contract case in tests/transforms/cases.py: {missing}"
