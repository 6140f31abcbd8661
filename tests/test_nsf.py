"""Model nsf (RQ-NSF (AR) and (C)) and Glow with spline coupling: registry, identity
start, exact flow, bad input, checkpoints, CLI, and short fits."""
from __future__ import annotations

import json
import math

import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.data import load_dataset
from flowforge.models import build
from flowforge.testing import check_transform
from flowforge.training import TrainConfig, fit
from flowforge.transforms import Coupling, InvConv1x1, MaskedAutoregressive, Permutation, RQSplineMap

from .helpers import perturb

VARIANTS = {
    "ar": {},
    "ar-lu-random": {"mixing": "lu", "permutation": "random"},
    "coupling": {"coupling": True},
    "coupling-lu-random": {"coupling": True, "mixing": "lu", "permutation": "random"},
}


def small(key: str, dim: int = 5, **extra):
    return build("nsf", dim=dim, layers=3, hidden=16, bins=4, tail_bound=3.0, **VARIANTS[key], **extra).double()


def perturbed(flow, scale=0.2):
    return perturb(flow, scale)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_nsf_starts_at_the_identity_and_is_an_exact_flow(key):
    flow = small(key)
    x = 2 * torch.randn(8, 5, dtype=torch.float64)  # some rows beyond the tail bound
    if not VARIANTS[key].get("mixing"):  # zero-initialized conditioners: every spline is the identity
        z, log_abs_det = flow.transform(x)
        torch.testing.assert_close(z, x, rtol=0, atol=1e-12)
        assert log_abs_det.abs().max() < 1e-12
    report = check_transform(perturbed(flow).transform, x)
    assert report.ok(1e-8), report
    samples = flow.sample(16)
    assert samples.shape == (16, 5) and torch.isfinite(flow.log_prob(samples)).all()


def test_nsf_layers_follow_the_options():
    ar = build("nsf", dim=6, layers=5, hidden=128, bins=8, tail_bound=5.0, coupling=False)
    splines = [m for m in ar.modules() if isinstance(m, RQSplineMap)]
    made = [m for m in ar.modules() if isinstance(m, MaskedAutoregressive)]
    assert len(splines) == len(made) == 5 and all(s.bins == 8 and s.tail_bound == 5.0 for s in splines)
    assert made[1].net.order.tolist() == [5, 4, 3, 2, 1, 0]  # order reversed between layers
    c = build("nsf", dim=6, layers=4, bins=3, coupling=True, mixing="lu")
    couplings = [m for m in c.modules() if isinstance(m, Coupling)]
    assert [cp.idx_b.tolist() for cp in couplings[:2]] == [[3, 4, 5], [0, 1, 2]]
    assert sum(isinstance(m, InvConv1x1) for m in c.modules()) == 3
    perm = build("nsf", dim=6, layers=3, coupling=True, permutation="random")
    assert sum(isinstance(m, Permutation) for m in perm.modules()) == 2


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"bins": 1}, r"bins must be an integer >= 2, got 1"),
        ({"tail_bound": 0}, r"tail_bound must be a positive finite number, got 0"),
        ({"tail_bound": -2.0, "coupling": True}, r"tail_bound must be a positive finite number"),
        ({"mixing": "householder"}, r"unknown mixing 'householder'; choose from none, lu"),
        ({"coupling": True, "dim": 1}, r"coupling nsf needs dim >= 2"),
        ({"coupling": True, "permutation": "none"}, r"coupling nsf takes permutation 'reverse' or 'random'"),
        ({"permutation": "shuffle"}, r"unknown permutation 'shuffle'"),
        ({"flows": 3}, r"model 'nsf' has no option\(s\) flows"),
    ],
)
def test_bad_nsf_configs_are_clear_errors(config, match):
    with pytest.raises(ValueError, match=match):
        build("nsf", **{"dim": 4, **config})


@pytest.mark.parametrize("coupling", [False, True])
def test_conditional_nsf_uses_its_context_and_refuses_a_wrong_width(coupling):
    flow = perturbed(build("nsf", dim=3, layers=2, hidden=8, bins=3, coupling=coupling, context_dim=2).double())
    x, context = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    assert (flow.log_prob(x, context) - flow.log_prob(x, context + 1)).abs().max() > 1e-6
    assert check_transform(flow.transform, x, context).ok(1e-8)
    with pytest.raises(ValueError, match=r"context must have shape \(5, 2\), got \(5, 3\)"):
        flow.log_prob(x, torch.randn(5, 3, dtype=torch.float64))


@pytest.mark.parametrize("coupling", [False, True])
def test_data_far_outside_the_tails_is_finite_and_invertible(coupling):
    # (float64: conditioners fed 1e6 give splines too steep to invert to 1e-7 in float32)
    flow = perturbed(build("nsf", dim=3, layers=2, hidden=8, bins=4, tail_bound=2.0, coupling=coupling)).double()
    x = torch.tensor([[1e3, -1e4, 0.5], [-50.0, 2.0, 1e6]], dtype=torch.float64)
    z, _ = flow.transform(x)
    assert torch.isfinite(flow.log_prob(x)).all()
    torch.testing.assert_close(flow.transform.inverse(z)[0], x)


@pytest.mark.parametrize("key", ["ar-lu-random", "coupling"])
def test_checkpoint_round_trip(key, tmp_path):
    flow = perturbed(build("nsf", dim=4, layers=2, hidden=8, bins=5, **VARIANTS[key]))
    ff.save(flow, tmp_path)
    loaded = ff.load(tmp_path)
    x = 3 * torch.randn(20, 4)
    assert loaded.config == flow.config
    assert torch.equal(flow.log_prob(x), loaded.log_prob(x))


def test_nsf_fits_a_bimodal_density_better_than_a_gaussian():
    torch.manual_seed(0)
    n = 1024
    shift = torch.tensor([2.0, 0.0])
    x = torch.cat([torch.randn(n, 2) * 0.3 + shift, torch.randn(n, 2) * 0.3 - shift])
    flow = build("nsf", dim=2, layers=2, hidden=32, bins=8, tail_bound=4.0)
    opt = torch.optim.Adam(flow.parameters(), lr=5e-3)
    for _ in range(150):
        loss = -flow.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    gaussian = 0.5 * torch.logdet(2 * math.pi * math.e * torch.cov(x.T))  # best Gaussian's NLL
    true_entropy = 0.5 * math.log((2 * math.pi * math.e * 0.09) ** 2) + math.log(2)
    nll = -flow.log_prob(x).mean().item()
    assert nll < gaussian - 0.8 and nll < true_entropy + 0.25, (nll, float(gaussian), true_entropy)


def test_cli_trains_checks_and_reloads_nsf(tmp_path, capsys):
    out = tmp_path / "nsf"
    args = ["train", "--data", "moons", "--model", "nsf", "--option", "bins=16", "--steps", "30", "--batch-size",
            "256", "--layers", "2", "--hidden", "16", "--out", str(out), "--quiet", "--eval-every", "15"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["name"] == "nsf" and summary["model"]["bins"] == 16
    assert math.isfinite(summary["test_nll"])
    capsys.readouterr()
    assert main(["check", str(out), "--json", "--n", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    assert ff.load(out).config == summary["model"]


def test_glow_with_spline_coupling_is_exact_and_trains():
    logit = [{"type": "logit", "levels": 17}]
    flow = build("glow", shape=[1, 4, 4], layers=2, hidden=8, coupling="spline", bins=4, preprocess=logit).double()
    splines = [m for m in flow.modules() if isinstance(m, RQSplineMap)]
    assert len(splines) == 4 and splines[0].tail_bound == 3.0
    x = torch.randint(0, 17, (4, 1, 4, 4)).double() + torch.rand(4, 1, 4, 4, dtype=torch.float64)
    flow.transform.initialize(x)
    perturbed(flow, 0.05).eval()
    assert check_transform(flow.transform, x, jacobian_samples=2).ok(1e-7)

    torch.manual_seed(0)
    flow = build("glow", shape=[1, 8, 8], layers=1, hidden=8, coupling="spline", preprocess=logit)
    result = fit(flow, load_dataset("digits"), TrainConfig(steps=20, batch_size=32, lr=5e-3, eval_every=20,
                                                           progress=False))
    assert result.summary["test_bits_per_dim"] < math.log2(17) - 0.5
