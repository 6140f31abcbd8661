"""The fused piecewise path of ParallelMLP equals the plain matrix-product path."""
import warnings

import pytest
import torch

import flowforge as ff
from flowforge.nets import ParallelMLP, piecewise

pytestmark = pytest.mark.skipif(
    piecewise._library() is None, reason="no C compiler: ParallelMLP runs its plain path only"
)


def _plain(x, weights, biases):
    h = x.unsqueeze(0).expand(weights[0].shape[0], *x.shape)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.baddbmm(b, h, w)
        h = h.relu() if i < len(weights) - 1 else h
    return h


def _net(copies, widths, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    shapes = zip(widths[:-1], widths[1:], strict=True)
    weights = [torch.randn(copies, i, o, generator=g, dtype=dtype) for i, o in shapes]
    biases = [torch.randn(copies, 1, o, generator=g, dtype=dtype) for o in widths[1:]]
    weights[0][0, 0, :3] = 0  # units that never switch: always on (b > 0) or never (b <= 0)
    biases[0][0, 0, 0], biases[0][0, 0, 1] = 1.0, -1.0
    return [p.requires_grad_() for p in weights], [p.requires_grad_() for p in biases]


@pytest.mark.parametrize("copies,widths", [(2, [1, 16, 16, 1]), (3, [1, 7, 5, 4]), (1, [1, 9, 12, 2])])
def test_piecewise_equals_matrix_products_with_gradients(copies, widths):
    weights, biases = _net(copies, widths)
    # values agree everywhere, at the kinks too; gradients there are a matter of subgradient choice
    kinks = (-biases[0] / weights[0]).detach().flatten()
    kinks = kinks[kinks.isfinite()].view(-1, 1)
    torch.testing.assert_close(piecewise.mlp(kinks, weights, biases), _plain(kinks, weights, biases))
    x = (torch.randn(300, 1, dtype=torch.float64) * 3).requires_grad_()
    ref, out = _plain(x, weights, biases), piecewise.mlp(x, weights, biases)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    params = [x, *weights, *biases]
    for a, b in zip(torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_parallel_mlp_float32_matches_plain_path(monkeypatch):
    net = ParallelMLP(1, 2, hidden=64)
    x = torch.randn(1000, 1)
    fast = net(x)
    monkeypatch.setattr(piecewise, "available", lambda x: False)
    torch.testing.assert_close(fast, net(x), rtol=1e-5, atol=1e-5)


def test_realnvp_on_2d_data_same_log_prob_both_paths(monkeypatch):
    flow = ff.models.build("realnvp", dim=2).double()
    x = torch.randn(500, 2, dtype=torch.float64)
    fast = flow.log_prob(x)
    monkeypatch.setattr(piecewise, "available", lambda x: False)
    torch.testing.assert_close(fast, flow.log_prob(x), rtol=1e-12, atol=1e-12)


def test_nan_input_propagates():
    weights, biases = _net(2, [1, 8, 8, 1])
    out = piecewise.mlp(torch.tensor([[float("nan")], [0.5]], dtype=torch.float64), weights, biases)
    assert out[:, 0].isnan().all() and out[:, 1].isfinite().all()


def test_no_compiler_falls_back_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "/bin/false")
    monkeypatch.setenv("FLOWFORGE_CACHE", str(tmp_path))
    piecewise._library.cache_clear()
    try:
        with pytest.warns(UserWarning, match="fused CPU kernel unavailable"):
            assert not piecewise.available(torch.zeros(1, 1))
        net = ParallelMLP(1, 2, hidden=8)
        assert net(torch.randn(5, 1)).shape == (5, 2)  # plain path
    finally:
        piecewise._library.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.delenv("CC")
        monkeypatch.delenv("FLOWFORGE_CACHE")
        assert piecewise.available(torch.zeros(1, 1))
