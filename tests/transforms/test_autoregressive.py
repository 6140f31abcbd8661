"""MADE / MAF / IAF properties beyond the generic contract (which runs on the
cases in cases.py): triangular Jacobians in the chosen order, no missing
connections, the MAF <-> IAF relation, and the bad-order errors."""
from __future__ import annotations

from functools import partial

import pytest
import torch

import flowforge as ff
from flowforge.distributions import StandardNormal
from flowforge.nets import MADE
from flowforge.nets.made import random_order
from flowforge.transforms import AffineMap, BatchNorm, Inverse, MaskedAutoregressive


def _jacobian(fn, x: torch.Tensor) -> torch.Tensor:
    """``d fn(x) / d x`` for one sample ``x`` of shape ``(1, D)``, flattened to ``(out, D)``."""
    return torch.autograd.functional.jacobian(lambda v: fn(v).reshape(-1), x).reshape(-1, x.shape[1])


def _perturbed(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return module.double()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("context_dim, residual", [(0, False), (2, True)])
def test_made_jacobian_is_strictly_triangular_and_full_in_the_order(seed, context_dim, residual):
    dim = 7
    order = random_order(dim, seed)
    # tanh: no dead units, so every allowed path shows in the Jacobian
    made = _perturbed(MADE(order, 2, context_dim, hidden=32, hidden_layers=3, residual=residual, activation="tanh"))
    x = torch.randn(1, dim, dtype=torch.float64)
    c = torch.randn(1, context_dim, dtype=torch.float64) if context_dim else None
    jac = _jacobian(lambda v: made(v, c), x).reshape(2, dim, dim)  # (param, output i, input j)
    rank = torch.argsort(order)
    allowed = rank[None, :] < rank[:, None]  # output i may depend on input j iff j comes first
    assert torch.all(jac[:, ~allowed] == 0), "an output depends on an input at or after it in the order"
    # and every allowed dependency is there (no connection lost in the packed storage)
    assert torch.all(jac.abs().sum(0)[allowed] > 0)


@pytest.mark.parametrize("seed", range(3))
def test_maf_jacobian_triangular_in_random_order(seed):
    order = random_order(6, seed)
    layer = _perturbed(MaskedAutoregressive(order, AffineMap(2.0), partial(MADE, hidden=24, hidden_layers=2)))
    x = torch.randn(1, 6, dtype=torch.float64)
    jac = _jacobian(lambda v: layer(v)[0], x)
    permuted = jac[order][:, order]  # rows and columns in generation order
    assert torch.all(permuted.triu(1) == 0)
    assert torch.all(permuted.diagonal() > 0)
    torch.testing.assert_close(layer(x)[1][0], torch.linalg.slogdet(jac).logabsdet)


def test_masked_entries_are_not_parameters():
    linear = MADE(5, 2, hidden=16, hidden_layers=0)  # input j -> output i iff j comes before i
    assert linear.weight.numel() == 2 * (5 * 4 // 2) + 2 * 5  # allowed weights + biases
    deep = MADE(5, 2, hidden=16, hidden_layers=2)
    assert deep.weight.numel() < sum(fan_in * fan_out + fan_out for fan_in, fan_out in deep.shapes)


def test_iaf_is_the_inverse_of_maf_and_samples_in_one_pass():
    torch.manual_seed(1)
    maf_layer = _perturbed(MaskedAutoregressive(4, AffineMap(1.0), partial(MADE, hidden=16, hidden_layers=2)))
    iaf_layer = Inverse(maf_layer)
    x = torch.randn(5, 4, dtype=torch.float64)
    for a, b in zip(iaf_layer(x), maf_layer.inverse(x), strict=True):
        torch.testing.assert_close(a, b)
    calls = []
    maf_layer.net.register_forward_hook(lambda *_: calls.append(1))
    iaf_layer.inverse(x)
    assert len(calls) == 1, "IAF sampling must be one MADE pass"
    calls.clear()
    iaf_layer(x)
    assert len(calls) == 4, "IAF density of an outside point takes D passes"
    flow = ff.Flow(iaf_layer, StandardNormal((4,))).double()
    samples, log_q = flow.rsample_and_log_prob(8)
    torch.testing.assert_close(log_q, flow.log_prob(samples))


@pytest.mark.parametrize(
    "order, match",
    [([0, 0, 1], "permutation"), ([0, 2], "permutation"), ([1, 2, 3], "permutation"),
     ([[0, 1], [1, 0]], "1-D"), ([0.0, 1.0], "integers"), ([], "non-empty"), (0, "positive")],
)
def test_orders_that_are_not_permutations_are_rejected(order, match):
    with pytest.raises(ValueError, match=match):
        MaskedAutoregressive(order, AffineMap(), MADE)


def test_made_checks_its_inputs():
    made = MADE(3, 2, context_dim=2, hidden=8)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="needs a context of width 2"):
        made(x)
    with pytest.raises(ValueError, match=r"context must have shape \(4, 2\)"):
        made(x, torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        made(torch.randn(4, 5), torch.randn(4, 2))
    with pytest.raises(ValueError, match="hidden must be"):
        MADE(3, hidden=0)
    with pytest.raises(ValueError, match="residual"):
        MADE(3, hidden_layers=1, residual=True)


def test_bench_maf_is_five_made_layers_reversed_no_batch_norm():
    flow = ff.models.build("maf", dim=64, layers=5, hidden=256)
    layers = list(flow.transform)
    assert len(layers) == 5 and all(isinstance(t, MaskedAutoregressive) for t in layers)
    assert isinstance(flow.base, StandardNormal)
    ascending = torch.arange(64)
    for i, layer in enumerate(layers):
        made = layer.net
        assert made.shapes == [(64, 256), (256, 256), (256, 128)]  # 2 hidden layers of 256, shift + log-scale
        assert isinstance(made.act, torch.nn.ReLU)
        assert torch.equal(made.order, ascending.flip(0) if i % 2 else ascending)
    x = torch.randn(3, 64)
    assert flow.log_prob(x).shape == (3,)


def test_model_options():
    flow = ff.models.build("maf", dim=3, layers=3, hidden=8, batch_norm=True, permutation="random")
    kinds = [type(t) for t in flow.transform]
    assert kinds == [MaskedAutoregressive, BatchNorm, MaskedAutoregressive, BatchNorm, MaskedAutoregressive]
    orders = [t.net.order.tolist() for t in flow.transform if isinstance(t, MaskedAutoregressive)]
    assert len({tuple(o) for o in orders}) > 1
    iaf = ff.models.build("iaf", dim=3, layers=2, hidden=8)
    assert all(isinstance(t, Inverse) for t in iaf.transform)
    with pytest.raises(ValueError, match="unknown permutation"):
        ff.models.build("maf", dim=3, permutation="shuffle")
