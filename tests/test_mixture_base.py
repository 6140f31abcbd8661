"""The Gaussian-mixture base: its density is scikit-learn's, its samples follow it, and a flow
with it is initialized by EM on the training latents when training starts."""
import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as EM

import flowforge as ff
from flowforge.distributions import GaussianMixture
from flowforge.training import TrainConfig, fit


def two_blobs(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([0.3, 0.1], dtype=torch.float64)
    return x + torch.where(torch.rand(n, 1, generator=g) < 0.3, 2.0, -1.0).double()


def test_density_is_the_em_fit_and_integrates_to_one():
    x = two_blobs()
    base = GaussianMixture((2,), 3).double()
    base.fit(x, seed=0)
    em = EM(3, covariance_type="full", reg_covar=1e-4, max_iter=200, random_state=0).fit(x.numpy())
    assert torch.allclose(base.log_prob(x), torch.as_tensor(em.score_samples(x.numpy())), atol=1e-8)
    grid = torch.stack(torch.meshgrid(torch.linspace(-3, 4, 400), torch.linspace(-3, 4, 400), indexing="ij"), -1)
    with torch.no_grad():
        mass = base.log_prob(grid.reshape(-1, 2).double()).exp().sum() * (7 / 399) ** 2
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_samples_follow_the_mixture():
    x = two_blobs()
    base = GaussianMixture((2,), 2).double()
    base.fit(x, seed=0)
    torch.manual_seed(0)
    s = base.sample(20000)
    # the samples' own NLL under the mixture is its entropy, the data's is about the same
    with torch.no_grad():
        assert float(-base.log_prob(s).mean()) == pytest.approx(float(-base.log_prob(x).mean()), abs=0.05)
    assert float((s[:, 0] > 0.5).double().mean()) == pytest.approx(0.3, abs=0.02)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="components"):
        GaussianMixture((2,), 0)
    with pytest.raises(ValueError, match="vectors"):
        GaussianMixture((1, 2, 2), 2)
    with pytest.raises(ValueError, match="at least 8 training rows"):
        GaussianMixture((2,), 4).fit(torch.randn(5, 2))


def test_training_starts_at_the_em_fit_and_round_trips(tmp_path):
    x = two_blobs(3000).float()
    ds = ff.data.Dataset("blobs", x[:2000], x[2000:2500], x[2500:])
    torch.manual_seed(0)
    flow = ff.models.build("nsf", dim=2, layers=2, hidden=16, base="gmm", components=2)
    result = fit(flow, ds, TrainConfig(steps=20, batch_size=256, eval_every=10, progress=False), out=tmp_path)
    # two well-separated blobs: the mixture alone already fits them; a standard normal base does far worse
    assert result.summary["test_nll"] < 0.2
    assert math.isclose(float(torch.softmax(flow.base.logits, 0).max()), 0.7, abs_tol=0.05)
    loaded = ff.load(tmp_path)
    assert torch.allclose(loaded.log_prob(ds.test), flow.log_prob(ds.test), atol=1e-5)
    assert np.isfinite(loaded.sample(10).numpy()).all()
