"""The opt-in torch.compile path: the compiled model trains on the very loss the eager one computes."""
import copy
import math

import pytest
import torch

import flowforge as ff
from flowforge.training import TrainConfig, fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moons():
    return ff.data.load_dataset("moons")


def test_compiled_training_loss_equals_eager_log_prob_and_compile_time_is_apart(moons):
    if not torch._dynamo.is_dynamo_supported():
        pytest.skip("torch.compile is not supported on this platform")
    torch.manual_seed(0)
    flow = ff.models.build("maf", dim=2, layers=1, hidden=8)
    eager = copy.deepcopy(flow)
    cfg = TrainConfig(steps=2, eval_every=1, progress=False, compile=True)
    result = fit(flow, moons, cfg)
    # step 0 ran the compiled model on the full training set with the initial weights
    with torch.no_grad():
        expected = -eager.log_prob(moons.train).mean().item()
    assert math.isclose(result.history[0]["train_loss"], expected, rel_tol=1e-5)
    s = result.summary
    assert s["compile_s"] > 0 and s["ms_per_step_median"] < 1000 * s["compile_s"]
