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
    em = EM(3, covariance_type="full", random_state=0).fit(x.numpy())
    assert torch.allclose(base.log_prob(x), torch.as_tensor(em.score_samples(x.numpy())), atol=1e-8)
    assert torch.allclose(base.loc, torch.as_tensor(em.means_), atol=1e-10)
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


def test_a_state_with_means_loads_as_before():
    """Checkpoints written before the means were stored in whitened units (``shift``) still load."""
    base = GaussianMixture((2,), 3).double()
    base.fit(two_blobs(), seed=0)
    old = {k: v for k, v in base.state_dict().items() if k != "shift"}
    old["loc"] = base.loc.detach().clone()
    again = GaussianMixture((2,), 3).double()
    again.load_state_dict(old)
    x = two_blobs(50, seed=1)
    assert torch.allclose(again.log_prob(x), base.log_prob(x), atol=1e-10)


def test_the_recipe_sizes_the_mixture_by_the_table():
    from flowforge.training.recipes import build_for_data, mixture_components

    assert [mixture_components(n) for n in (1, 63, 64, 1000, 18_404, 10**7)] == [1, 1, 2, 16, 512, 512]
    x = two_blobs(3000).float()
    flow = build_for_data("nsf", ff.data.Dataset("blobs", x[:2000], x[2000:2500], x[2500:]))
    assert isinstance(flow.base, GaussianMixture) and flow.base.components == 32
    assert flow.config["components"] == 32 and flow.config["base"] == "gmm"
    # a conditional flow keeps the normal base (the mixture would not depend on the context)
    ctx = {s: torch.zeros(len(v), 1) for s, v in (("train", x[:2000]), ("val", x[2000:2500]), ("test", x[2500:]))}
    conditional = build_for_data("nsf", ff.data.Dataset("blobs", x[:2000], x[2000:2500], x[2500:], context=ctx))
    assert conditional.config["base"] == "normal" and conditional.config["context_dim"] == 1


def complete_data_score(em, x):
    """Held-out mean of log p(x) - H(r(x)), computed here from scikit-learn's public outputs."""
    r = em.predict_proba(x)
    return float(np.mean(em.score_samples(x) + np.sum(r * np.log(np.maximum(r, 1e-300)), axis=1)))


def test_held_out_points_choose_the_size():
    """With validation points, K = 1, 4, 16, ... up to the bound until one has a lower held-out
    complete-data log-likelihood than the best (not before 16); the density kept is the best EM fit's."""
    x, val = two_blobs(), two_blobs(500, seed=1)
    base = GaussianMixture((2,), 64).double()
    kept = base.fit(x, seed=0, val=val)
    fits = {k: EM(k, covariance_type="full", random_state=0).fit(x.numpy()) for k in (1, 4, 16, 64)}
    scores = {k: complete_data_score(em, val.numpy()) for k, em in fits.items()}
    expected = 1
    for k in (4, 16, 64):
        if scores[k] > scores[expected]:
            expected = k
        elif k >= 16:
            break
    best_em = fits[expected]
    assert kept == expected == base.components < 64
    assert base.shift.shape == (kept, 2) and base.precision_off.shape == (kept, 2, 2)
    assert float(base.log_prob(val).mean().detach()) == pytest.approx(best_em.score(val.numpy()), abs=1e-8)


def test_clusters_get_components_and_a_smooth_region_does_not():
    """Sixteen tight, separated clusters keep 16 components; a uniform square keeps at most 4,
    though the held-out likelihood alone would go on adding components that tile it."""
    g = torch.Generator().manual_seed(0)
    centers = torch.cartesian_prod(torch.arange(4.0), torch.arange(4.0)).double()
    def clusters(n):
        return centers[torch.randint(16, (n,), generator=g)] + 0.05 * torch.randn(n, 2, generator=g).double()
    def square(n):
        return torch.rand(n, 2, generator=g).double()
    assert GaussianMixture((2,), 64).double().fit(clusters(4000), val=clusters(1000)) == 16
    x, val = square(4000), square(1000)
    assert GaussianMixture((2,), 64).double().fit(x, val=val) <= 4
    scores = [EM(k, covariance_type="full", random_state=0).fit(x.numpy()).score(val.numpy()) for k in (4, 16)]
    assert scores[1] > scores[0]  # likelihood alone prefers the tiling


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
    flow = ff.models.build("nsf", dim=2, layers=2, hidden=16, base="gmm", components=64)
    result = fit(flow, ds, TrainConfig(steps=20, batch_size=256, eval_every=10, progress=False), out=tmp_path)
    # two well-separated blobs: the mixture alone already fits them; a standard normal base does far worse
    assert result.summary["test_nll"] < 0.2
    # 64 was the upper bound: validation kept fewer, the record and the optimizer followed
    assert flow.base.components in (4, 16) and flow.config["components"] == flow.base.components
    weights = torch.softmax(flow.base.logits.detach(), 0)
    assert math.isclose(float(weights[flow.base.loc.detach()[:, 0] > 0.5].sum()), 0.3, abs_tol=0.05)  # the +2 blob
    loaded = ff.load(tmp_path)
    assert loaded.base.components == flow.base.components
    assert torch.allclose(loaded.log_prob(ds.test), flow.log_prob(ds.test), atol=1e-5)
    assert np.isfinite(loaded.sample(10).numpy()).all()
