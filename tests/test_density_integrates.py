"""A trained 2-D flow's density integrates to one: a wrong log-det cannot pass."""
import torch

import flowforge as ff
from flowforge.viz import density_grid


def test_trained_density_integrates_to_one():
    torch.manual_seed(0)
    data = ff.data.load_dataset("moons")
    flow = ff.models.build("realnvp", dim=2, layers=4, hidden=32, preprocess=["standardize"])
    cfg = ff.training.TrainConfig(steps=300, batch_size=512, lr=3e-3, eval_every=300, progress=False)
    ff.training.fit(flow, data, cfg)
    flow = flow.double()
    lo, hi = data.train.min(0).values - 1.5, data.train.max(0).values + 1.5
    xs, ys, log_p = density_grid(flow, (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), resolution=400)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    mass = float(torch.as_tensor(log_p).exp().sum() * cell)
    assert abs(mass - 1.0) < 0.02, mass
