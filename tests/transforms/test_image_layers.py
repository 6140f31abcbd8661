"""Family-specific properties of the image layers, beyond the generic contract."""
from __future__ import annotations

import math

import pytest
import torch

from flowforge.nets import ConvNet
from flowforge.transforms import (
    ActNorm,
    AffineMap,
    BatchNorm,
    Compose,
    Coupling,
    Flatten,
    InvConv1x1,
    Logit,
    Multiscale,
    Permutation,
    Rescale,
    Squeeze,
    channel_mask,
)


def images(n=5, c=2, h=4, w=6):
    return torch.randn(n, c, h, w, dtype=torch.float64)


@pytest.mark.parametrize(
    "layer", [Squeeze(), Flatten((2, 4, 6)), Permutation.reverse(2), Permutation.random(2, seed=3)], ids=type
)
def test_reshapes_and_permutations_have_log_det_exactly_zero_and_exact_inverse(layer):
    x = images()
    z, ld = layer(x)
    x_back, ld_inv = layer.inverse(z)
    assert torch.equal(ld, torch.zeros(5, dtype=x.dtype)) and torch.equal(ld_inv, torch.zeros(5, dtype=x.dtype))
    assert torch.equal(x_back, x)


def test_squeeze_layout_and_shapes():
    x = images(n=2, c=3, h=4, w=6)
    z, _ = Squeeze()(x)
    assert z.shape == (2, 12, 2, 3) and Squeeze().output_shape((3, 4, 6)) == (12, 2, 3)
    c, i, j, h, w = 2, 1, 0, 1, 2
    assert z[1, 4 * c + 2 * i + j, h, w] == x[1, c, 2 * h + i, 2 * w + j]


def test_squeeze_odd_size_names_the_shape_and_a_fix():
    with pytest.raises(ValueError, match=r"\(1, 7, 8\).*pad or crop the images to 8x8"):
        Squeeze()(torch.zeros(1, 1, 7, 8))


@pytest.mark.parametrize("lu", [True, False])
def test_invconv_starts_as_a_rotation(lu):
    w = InvConv1x1(6, lu=lu).double().weight_matrix().detach()
    torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=w.dtype), atol=1e-6, rtol=0)  # built in float32


def test_lu_weight_is_p_l_u_and_log_det_is_hw_sum_log_s():
    layer = InvConv1x1(5, lu=True).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    lower = torch.tril(layer.lower, -1) + torch.eye(5, dtype=torch.float64)
    upper = torch.triu(layer.upper, 1) + torch.diag(layer.sign_s * layer.log_s.exp())
    w = layer.weight_matrix()
    torch.testing.assert_close(w, layer.perm @ lower @ upper)
    assert torch.equal(layer.perm @ layer.perm.T, torch.eye(5, dtype=torch.float64))  # P is a permutation
    torch.testing.assert_close(torch.linalg.slogdet(w).logabsdet, layer.log_s.sum())
    x = torch.randn(3, 5, 4, 2, dtype=torch.float64)
    z, ld = layer(x)
    torch.testing.assert_close(ld, torch.full((3,), 8 * float(layer.log_s.detach().sum()), dtype=torch.float64))
    torch.testing.assert_close(z, torch.einsum("ij,bjhw->bihw", w, x))
    torch.testing.assert_close(layer.inverse_matrix() @ w, torch.eye(5, dtype=torch.float64))


def test_lu_permutation_and_signs_are_fixed_buffers():
    layer = InvConv1x1(4)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"lower", "upper", "log_s"}
    assert {"perm", "sign_s"} <= set(layer.state_dict())


def test_actnorm_initialization_gives_zero_mean_unit_variance_per_channel():
    x = torch.randn(64, 3, 4, 4, dtype=torch.float64) * torch.tensor([0.5, 2.0, 7.0]).view(1, 3, 1, 1) + 3
    layer = ActNorm(3).double()
    assert not bool(layer.initialized)
    layer.initialize(x)
    z, ld = layer(x)
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(z.var((0, 2, 3), correction=0), torch.ones(3, dtype=torch.float64))
    std = x.var((0, 2, 3), correction=0).sqrt()
    torch.testing.assert_close(ld, torch.full((64,), -16 * float(std.log().sum()), dtype=torch.float64))


def test_actnorm_flag_survives_state_dict_and_blocks_reinitialization():
    x = torch.randn(32, 2, 3, 3, dtype=torch.float64) * 4 + 1
    layer = ActNorm(2).double()
    layer.initialize(x)
    state = layer.state_dict()
    assert bool(state["initialized"])
    twin = ActNorm(2).double()
    twin.load_state_dict(state)
    assert bool(twin.initialized)
    twin.initialize(torch.randn(32, 2, 3, 3, dtype=torch.float64))  # a resumed run must not re-initialize
    assert torch.equal(twin.loc, layer.loc) and torch.equal(twin.log_scale, layer.log_scale)


def test_batchnorm_train_uses_batch_statistics_and_updates_running_averages():
    layer = BatchNorm(3, momentum=0.5).double()
    with torch.no_grad():
        layer.log_gamma.copy_(torch.tensor([0.1, -0.2, 0.3]))
        layer.beta.copy_(torch.tensor([1.0, 0.0, -1.0]))
    x = torch.randn(16, 3, 2, 2, dtype=torch.float64) * 3 + 2
    layer.train()
    z, ld = layer(x)
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(z.mean((0, 2, 3)), layer.beta.detach())
    expected = 4 * (layer.log_gamma - 0.5 * torch.log(var + layer.eps)).sum()
    torch.testing.assert_close(ld, expected.detach().expand(16))
    torch.testing.assert_close(layer.running_mean, 0.5 * mean)
    torch.testing.assert_close(layer.running_var, 0.5 + 0.5 * var)


def test_batchnorm_eval_uses_running_averages_and_inverts():
    layer = BatchNorm(3).double()
    layer.running_mean.copy_(torch.tensor([1.0, -1.0, 0.5]))
    layer.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    layer.eval()
    x = torch.randn(7, 3, 2, 2, dtype=torch.float64)
    z, ld = layer(x)
    expected = 4 * (-0.5 * torch.log(layer.running_var + layer.eps)).sum()
    torch.testing.assert_close(ld, expected.expand(7))
    x_back, ld_inv = layer.inverse(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(ld_inv, -ld)
    assert torch.equal(layer(x[:1])[0], z[:1])  # no leakage between samples in evaluation


def _multiscale() -> Multiscale:
    conv = lambda i, o: ConvNet(i, o, hidden=4)  # noqa: E731
    level0 = Compose([Squeeze(), ActNorm(4), Coupling(channel_mask((4, 4, 4), True), conv, AffineMap())])
    level1 = Compose([Squeeze(), ActNorm(8), Coupling(channel_mask((8, 2, 2), True), conv, AffineMap())])
    return Multiscale([level0, level1], (1, 8, 8)).double()


def test_multiscale_packs_every_factored_latent():
    ms = _multiscale()
    assert ms.latent_shapes == [(2, 4, 4), (8, 2, 2)] and ms.dim == 64
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    z, _ = ms(x)
    parts = ms.unpack(z)
    assert [tuple(p.shape[1:]) for p in parts] == ms.latent_shapes
    assert torch.equal(ms.pack(parts), z)
    # the first factored part is the second half of level 0's output
    h0, _ = ms.levels[0](x)
    assert torch.equal(parts[0], h0[:, 2:])
    torch.testing.assert_close(ms.inverse(z)[0], x)


def test_multiscale_initializes_each_level_on_the_data_reaching_it():
    ms = _multiscale()
    x = torch.randn(256, 1, 8, 8, dtype=torch.float64) * 3 + 5
    assert ms.is_data_dependent
    ms.initialize(x)
    h, _ = Compose(list(ms.levels[0])[:2])(x)
    torch.testing.assert_close(h.mean((0, 2, 3)), torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0)
    kept = ms.levels[0](x)[0][:, :2]
    h1 = Compose(list(ms.levels[1])[:2])(kept)[0]
    torch.testing.assert_close(h1.var((0, 2, 3), correction=0), torch.ones(8, dtype=torch.float64))


def test_multiscale_rejects_a_level_with_one_channel():
    with pytest.raises(ValueError, match="one channel"):
        Multiscale([Compose([]), Compose([])], (1, 2, 2))


def test_logit_refuses_values_outside_its_domain_and_accepts_its_inverse_image():
    layer = Logit(17, alpha=0.05)  # domain (-17 a / (1 - 2a), 17 (1 - a) / (1 - 2a)) = (-0.944, 17.94)
    with pytest.raises(ValueError, match=r"must lie in \(-0.9444, 17.94\).*got values in \[-1, 3\]"):
        layer(torch.tensor([[-1.0, 3.0]]))
    with pytest.raises(ValueError, match=r"got values in \[0, 18\]"):
        layer(torch.tensor([[0.0, 18.0]]))
    x, _ = layer.inverse(torch.tensor([[-30.0, 30.0]], dtype=torch.float64))  # far tails of any base
    assert torch.isfinite(layer(x)[0]).all()


def test_pixel_range_is_checked_where_images_are_loaded():
    from flowforge.data import DataError
    from flowforge.data.images import check_images

    with pytest.raises(DataError, match=r"integers in \[0, 16\]"):
        check_images(torch.tensor([[[[0.0, 17.0]]]]), 17, "test images")


def test_logit_log_det_matches_its_closed_form():
    layer, a, levels = Logit(17, alpha=0.05), 0.05, 17
    w = torch.rand(4, 1, 2, 3, dtype=torch.float64) * levels
    y, ld = layer(w)
    s = a + (1 - 2 * a) * w / levels
    torch.testing.assert_close(y, torch.log(s / (1 - s)))
    expected = (math.log((1 - 2 * a) / levels) - torch.log(s * (1 - s))).flatten(1).sum(1)
    torch.testing.assert_close(ld, expected)
    assert Rescale(17)(w)[1].unique().item() == pytest.approx(-6 * math.log(17))
