"""Flow as a distribution: shapes, dtypes, the change-of-variables identity, errors."""
import math

import pytest
import torch

import flowforge as ff


@pytest.fixture
def flow():
    f = ff.models.build("realnvp", dim=3, layers=4, hidden=16)
    with torch.no_grad():
        for p in f.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return f


def test_log_prob_is_base_plus_log_det(flow):
    x = torch.randn(7, 3)
    z, log_abs_det = flow.transform.forward(x)
    torch.testing.assert_close(flow.log_prob(x), flow.base.log_prob(z) + log_abs_det)


def test_sampling_api_shapes(flow):
    assert flow.sample(11).shape == (11, 3)
    assert flow.sample(torch.Size([5])).shape == (5, 3)
    x, log_q = flow.sample_and_log_prob(9)
    assert x.shape == (9, 3) and log_q.shape == (9,)
    torch.testing.assert_close(log_q, flow.log_prob(x), rtol=1e-4, atol=1e-4)
    assert not x.requires_grad
    r = flow.rsample(4)
    r.sum().backward()
    assert all(p.grad is not None for p in flow.parameters())


def test_is_a_torch_distribution(flow):
    assert isinstance(flow, torch.distributions.Distribution)
    assert flow.event_shape == torch.Size([3]) and flow.batch_shape == torch.Size([])
    assert flow.has_rsample


def test_float64_follows_module():
    flow = ff.models.build("realnvp", dim=2, layers=2, hidden=8).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    assert flow.log_prob(x).dtype == torch.float64
    assert flow.sample(3).dtype == torch.float64


def test_temperature_shrinks_spread():
    flow = ff.models.build("realnvp", dim=2, layers=2, hidden=8)
    torch.manual_seed(0)
    cold = flow.sample(4000, temperature=0.5)
    hot = flow.sample(4000, temperature=1.0)
    assert cold.std() < hot.std()


def test_standard_normal_base_density():
    base = ff.distributions.StandardNormal((2,))
    z = torch.zeros(1, 2)
    assert math.isclose(float(base.log_prob(z)), -math.log(2 * math.pi), rel_tol=1e-6)


def test_logistic_base_matches_torch():
    base = ff.distributions.StandardLogistic((3,))
    z = torch.randn(4, 3, dtype=torch.float64)
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Uniform(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)),
        [torch.distributions.SigmoidTransform().inv],
    ).log_prob(z).sum(-1)
    torch.testing.assert_close(base.double().log_prob(z), ref)


@pytest.mark.parametrize(
    "x, message",
    [(torch.randn(4, 2), "expected data of shape"), (torch.randn(4), "expected data of shape")],
)
def test_wrong_shape_is_a_clear_error(flow, x, message):
    with pytest.raises(ValueError, match=message):
        flow.log_prob(x)


def test_context_errors(flow):
    with pytest.raises(ValueError, match="unconditional"):
        flow.log_prob(torch.randn(2, 3), torch.randn(2, 1))
    cond = ff.models.build("realnvp", dim=2, layers=2, hidden=8, context_dim=2)
    with pytest.raises(ValueError, match="needs a context"):
        cond.log_prob(torch.randn(2, 2))
    with pytest.raises(ValueError, match="context must have shape"):
        cond.log_prob(torch.randn(2, 2), torch.randn(2, 3))
    assert cond.sample(3, torch.randn(3, 2)).shape == (3, 2)


def test_build_errors_list_valid_choices():
    with pytest.raises(ValueError, match="available models: .*realnvp"):
        ff.models.build("nvp")
    with pytest.raises(ValueError, match="has no option"):
        ff.models.build("realnvp", dim=2, depth=3)
    with pytest.raises(ValueError, match="layers must be a positive integer"):
        ff.models.build("realnvp", dim=2, layers=0)


def test_realnvp_defaults_are_the_classic_model():
    flow = ff.models.build("realnvp", dim=2)
    assert len(flow.transform) == 6
    # separate 1->128->128->1 scale and translation nets per layer (split form)
    assert sum(p.numel() for p in flow.parameters()) == 6 * 2 * (1 * 128 + 128 + 128 * 128 + 128 + 128 + 1)
    assert isinstance(flow.base, ff.distributions.StandardNormal)
