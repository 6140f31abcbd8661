"""Reverse-KL fitting: log Z of a known Gaussian, the estimators, and bad targets."""
import json
import math

import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.inference import fit_target, make_target
from flowforge.inference.vi import log_weight_stats

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
SHIFT = 3.0  # log p~ = log N(x; MEAN, COV) + SHIFT, so log Z = SHIFT


def gaussian(x):
    return torch.distributions.MultivariateNormal(MEAN.to(x), COV.to(x)).log_prob(x) + SHIFT


def small_flow(model="iaf", dim=2):
    return ff.models.build(model, dim=dim, layers=2, hidden=16).double()


def test_fit_gaussian_recovers_log_z():
    # an IAF can represent any 2-D Gaussian exactly (x2's shift is linear in x1)
    flow = small_flow("iaf")
    result = fit_target(flow, gaussian, steps=200, batch_size=128, lr=1e-2, eval_samples=10_000, seed=0)
    assert abs(result.log_z - SHIFT) < 0.02
    assert result.ess_fraction > 0.9
    assert result.elbo <= result.log_z + 3 * result.log_z_stderr
    assert result.true_log_z is None and len(result.losses) == 200
    assert -result.losses[-1] == pytest.approx(SHIFT, abs=0.1)  # at the optimum ELBO = log Z


def test_weight_statistics_are_exact_and_stable():
    even = log_weight_stats(torch.full((10,), 1e4, dtype=torch.float64))  # would overflow outside log space
    assert (even.log_z, even.log_z_stderr, even.ess_fraction, even.elbo) == (1e4, 0.0, 1.0, 1e4)
    two = log_weight_stats(torch.tensor([0.0, math.log(3.0)]))  # w = 1, 3
    assert two.log_z == pytest.approx(math.log(2.0))
    assert two.ess_fraction == pytest.approx(16 / (2 * 10))
    assert two.log_z_stderr == pytest.approx(math.sqrt(2.0) / (math.sqrt(2) * 2))  # std(w)=sqrt(2), mean 2


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"returned shape \(8, 1\).*shape \(8,\)"):
        fit_target(small_flow(), lambda x: gaussian(x)[:, None], steps=1, batch_size=8)


def test_nan_names_the_first_bad_sample():
    def bad(x):
        out = gaussian(x)
        out[3] = float("nan")
        out[5] = float("nan")
        return out

    with pytest.raises(ValueError, match=r"returned nan at sample 3, x = \["):
        fit_target(small_flow(), bad, steps=1, batch_size=8)
    with pytest.raises(ValueError, match="zero density"):
        fit_target(small_flow(), lambda x: torch.where(x[:, 0] > 0, gaussian(x), -math.inf), steps=1)


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="'u1' is 2-dimensional but the flow's events have dimension 3"):
        fit_target(small_flow(dim=3), make_target("u1"), steps=1)


def test_cli_fit_target(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["fit-target", "--target", "banana", "--model", "realnvp", "--layers", "2", "--hidden", "8",
            "--steps", "20", "--eval-samples", "2000", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"log_z", "log_z_stderr", "ess_fraction", "elbo", "true_log_z"} <= set(summary)
    assert summary["true_log_z"] == pytest.approx(make_target("banana").log_z)
    assert (out / "target_vs_flow.png").exists() and (out / "model.safetensors").exists()
    assert main(["fit-target", "--target", "nope", "--out", str(out)]) == 2
    assert "unknown target 'nope'" in capsys.readouterr().err
