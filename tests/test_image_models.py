"""Image models (nice, realnvp with shape, glow): registry, shapes, identity start,
checkpoint round trip with ActNorm state, latent operations, inpainting, a short fit."""
from __future__ import annotations

import math

import pytest
import torch

from flowforge.data import load_dataset
from flowforge.inference.inpaint import inpaint, inpainting_mask
from flowforge.inference.latent import attribute_direction, interpolate, manipulate
from flowforge.models import build
from flowforge.testing import check_transform
from flowforge.training import TrainConfig, fit, load_flow, save_checkpoint
from flowforge.transforms import ActNorm, Coupling, Multiscale

from .helpers import perturb

LOGIT = [{"type": "logit", "levels": 17}]

TINY = {
    "nice": {"shape": [1, 4, 4], "hidden": 16, "hidden_layers": 1},
    "realnvp": {"shape": [1, 4, 4], "hidden": 4, "blocks": 1},
    "realnvp-bn": {"shape": [1, 4, 4], "hidden": 4, "blocks": 1, "batch_norm": True},
    "glow": {"shape": [1, 4, 4], "layers": 2, "hidden": 8},
    "glow-additive-reverse": {
        "shape": [2, 4, 4], "layers": 2, "hidden": 8, "coupling": "additive", "permutation": "reverse", "scales": 1
    },
}


def tiny(key: str, **extra):
    name = key.split("-")[0]
    return build(name, **TINY[key], preprocess=LOGIT, **extra).double()


def pixels(n: int, shape=(1, 4, 4)) -> torch.Tensor:
    return torch.randint(0, 17, (n, *shape)).double() + torch.rand(n, *shape, dtype=torch.float64)


def perturbed(flow, scale=0.05):
    return perturb(flow, scale)


@pytest.mark.parametrize("key", list(TINY))
def test_image_model_is_an_exact_flow(key):
    flow = tiny(key)
    shape = tuple(TINY[key]["shape"])
    x = pixels(4, shape)
    flow.transform.initialize(x)
    perturbed(flow).eval()
    assert flow.event_shape == shape
    report = check_transform(flow.transform, x, jacobian_samples=2)
    assert report.ok(1e-7), report
    assert flow.log_prob(x).shape == (4,)
    samples = flow.sample(3, temperature=0.7)
    assert samples.shape == (3, *shape) and torch.isfinite(samples).all()


@pytest.mark.parametrize("key", ["realnvp", "glow", "nice"])
def test_couplings_start_as_the_identity(key):
    flow = tiny(key)
    x = torch.randn(2, *TINY[key]["shape"], dtype=torch.float64)
    couplings = [m for m in flow.modules() if isinstance(m, Coupling)]
    assert couplings
    for layer in couplings:
        xin = x if len(layer.event_shape) == 1 else torch.randn(2, *layer.event_shape, dtype=torch.float64)
        xin = xin.flatten(1) if len(layer.event_shape) == 1 else xin
        z, ld = layer(xin)
        assert torch.equal(z, xin) and torch.equal(ld, torch.zeros(2, dtype=torch.float64))


def test_glow_latent_keeps_every_scale():
    flow = build("glow", shape=[1, 8, 8], layers=1, hidden=4, preprocess=LOGIT).double()
    multiscale = flow.transform[1]  # after the logit preprocessing
    assert isinstance(multiscale, Multiscale)
    assert multiscale.latent_shapes == [(2, 4, 4), (8, 2, 2)]
    z = flow.encode(pixels(3, (1, 8, 8)))
    assert z.shape == (3, 64) and [p.shape[1:] for p in multiscale.unpack(z)] == [(2, 4, 4), (8, 2, 2)]


def test_glow_options_change_the_layers():
    plain = build("glow", shape=[1, 8, 8], layers=1, hidden=4, permutation="conv")
    assert any(type(m).__name__ == "InvConv1x1" and not m.lu for m in plain.modules())
    perm = build("glow", shape=[1, 8, 8], layers=1, hidden=4, permutation="random", split_prior=False)
    assert any(type(m).__name__ == "Permutation" for m in perm.modules())
    assert sum(isinstance(m, Coupling) for m in perm.modules()) == 2


def test_actnorm_state_survives_checkpoint_save_and_load(tmp_path):
    flow = tiny("glow")
    x = pixels(32)
    flow.transform.initialize(x)
    perturbed(flow).eval()
    save_checkpoint(tmp_path, flow, {"data": {"name": "digits", "levels": 17}})
    loaded, meta = load_flow(tmp_path)
    loaded = loaded.double()
    actnorms = [m for m in loaded.modules() if isinstance(m, ActNorm)]
    assert actnorms and all(bool(m.initialized) for m in actnorms)
    torch.testing.assert_close(loaded.log_prob(x), flow.log_prob(x))
    loaded.transform.initialize(pixels(32) * 0.5)  # a no-op: resuming keeps trained values
    torch.testing.assert_close(loaded.log_prob(x), flow.log_prob(x))


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("glow", {"shape": [1, 7, 8]}, r"multiples of 4; got image shape \(1, 7, 8\).*1x8x8"),
        ("glow", {"shape": [1, 8, 8], "scales": 4}, r"multiples of 16"),
        ("realnvp", {"shape": [1, 5, 6], "hidden": 4}, r"multiples of 2; got image shape \(1, 5, 6\).*1x6x6"),
        ("realnvp", {"shape": [1, 4, 4], "scales": 3}, r"1x1 images at the last scale"),
        ("glow", {"shape": [8, 8]}, r"shape=\[C, H, W\]"),
        ("glow", {"permutation": "shuffle"}, r"choose from lu, conv, random, reverse"),
        ("glow", {"coupling": "cubic"}, r"choose from affine, additive, spline"),
        ("nice", {"dim": 4, "shape": [1, 2, 2]}, r"not both"),
    ],
)
def test_bad_image_configs_are_clear_errors(name, config, match):
    with pytest.raises(ValueError, match=match):
        build(name, **config)


def test_wrong_image_shape_for_a_model_is_a_clear_error():
    flow = tiny("glow")
    with pytest.raises(ValueError, match=r"expected data of shape \(batch, 1, 4, 4\), got \(2, 3, 4, 4\)"):
        flow.log_prob(pixels(2, (3, 4, 4)))


def test_interpolation_endpoints_and_manipulation_at_zero_reconstruct():
    flow = perturbed(tiny("glow")).eval()
    x0, x1 = pixels(2), pixels(2)
    strip = interpolate(flow, x0, x1, steps=5, mode="ellipse")
    assert strip.shape == (2, 5, 1, 4, 4)
    torch.testing.assert_close(strip[:, 0], x0)
    torch.testing.assert_close(strip[:, -1], x1)
    labels = torch.tensor([0, 0, 1, 1])
    xs = torch.cat([x0, x1])
    d = attribute_direction(flow, xs, labels, 0, 1)
    moved = manipulate(flow, x0, d, [0.0, 1.0])
    torch.testing.assert_close(moved[:, 0], x0)
    torch.testing.assert_close(moved[:, 1], flow.decode(flow.encode(x0) + d))
    with pytest.raises(ValueError, match=r"no examples with label\(s\) \[7\]"):
        attribute_direction(flow, xs, labels, 0, 7)


def test_inpainting_keeps_known_pixels_and_raises_log_p():
    flow = perturbed(tiny("nice")).eval()
    x = pixels(3)
    known = inpainting_mask((1, 4, 4), "bottom")
    assert known[:, :2].all() and not known[:, 2:].any()
    result = inpaint(flow, x, known, 0.0, 17.0, steps=30, step_size=0.05, noise=0.0,
                     generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.images[:, known], x[:, known])
    assert (result.images >= 0).all() and (result.images <= 17).all()
    assert (result.log_prob_end > result.log_prob_start).all()


def test_short_glow_fit_on_digits_beats_the_uniform_model():
    torch.manual_seed(0)
    digits = load_dataset("digits")
    flow = build("glow", shape=[1, 8, 8], layers=2, hidden=8, preprocess=LOGIT)
    config = TrainConfig(steps=30, batch_size=32, lr=5e-3, eval_every=30, progress=False)
    result = fit(flow, digits, config)
    assert all(bool(m.initialized) for m in flow.modules() if isinstance(m, ActNorm))
    assert result.summary["test_bits_per_dim"] < math.log2(17) - 0.5
