"""The opt-in torch.compile path: the compiled model trains on the very loss the eager one computes."""
import copy
import math

import pytest
import torch

import flowforge as ff
from flowforge.training import TrainConfig, fit

from .helpers import perturb

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


def test_compiled_spline_glow_gives_the_eager_log_prob_and_gradients():
    """Spline couplings after an ActNorm and a 1x1 convolution: with the halves gathered by
    index_select, torch 2.13's inductor CPU code lost the gradient through the coupling's input
    (and with two steps overflowed a buffer and aborted the process)."""
    if not torch._dynamo.is_dynamo_supported():
        pytest.skip("torch.compile is not supported on this platform")
    torch.manual_seed(0)
    flow = ff.models.build("glow", shape=[3, 4, 4], scales=1, layers=2, hidden=8, coupling="spline")
    x = torch.randn(8, 3, 4, 4)
    flow.transform.initialize(x)
    perturb(flow, scale=0.1)
    eager = copy.deepcopy(flow)
    compiled = torch.compile(flow)(x)
    expected = eager.log_prob(x)
    torch.testing.assert_close(compiled, expected, rtol=1e-4, atol=1e-4)
    compiled.mean().backward()
    expected.mean().backward()
    for (name, p), q in zip(flow.named_parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5, msg=name)
