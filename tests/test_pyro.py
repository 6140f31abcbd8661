"""flowforge.pyro.to_pyro: a TransformModule in the generative direction, Pyro's
shapes, conditioning, and a flowforge guide that beats AutoNormal on Neal's funnel."""
import pytest
import torch

pyro = pytest.importorskip("pyro")
import pyro.distributions as dist  # noqa: E402
from pyro.infer import SVI, Trace_ELBO  # noqa: E402
from pyro.infer.autoguide import AutoNormal, AutoNormalizingFlow  # noqa: E402

import flowforge as ff  # noqa: E402
from flowforge.pyro import to_pyro  # noqa: E402

from .helpers import perturb  # noqa: E402


def perturbed(name, **config):
    return perturb(ff.models.build(name, dim=3, layers=2, hidden=8, **config), 0.1)


@pytest.mark.parametrize("batch", [(), (4,), (2, 5)])
def test_generative_direction_and_log_det_in_pyro_shapes(batch):
    flow = perturbed("maf")
    t = to_pyro(flow)
    assert isinstance(t, dist.TransformModule) and set(dict(t.named_parameters())) == {
        f"transform.{k}" for k, _ in flow.transform.named_parameters()
    }
    z = torch.randn(*batch, 3)
    x = t(z)
    flat = z.reshape(-1, 3)
    torch.testing.assert_close(x.reshape(-1, 3), flow.decode(flat))
    assert x.shape == z.shape and t.log_abs_det_jacobian(z, x).shape == batch
    torch.testing.assert_close(t.inv(x), z, atol=1e-5, rtol=1e-5)
    # the cached log-det of the sample equals the one recomputed from x alone
    fresh = -flow.transform(x.reshape(-1, 3))[1].reshape(batch)
    torch.testing.assert_close(t.log_abs_det_jacobian(z, x), fresh, atol=1e-5, rtol=1e-5)
    base = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    q = dist.TransformedDistribution(base, [t])
    torch.testing.assert_close(q.log_prob(x), flow.log_prob(x.reshape(-1, 3)).reshape(batch), atol=1e-5, rtol=1e-5)


def test_conditional_flow_is_conditioned_on_context():
    flow = perturbed("maf", context_dim=2)
    t = to_pyro(flow)
    assert isinstance(t, dist.ConditionalTransformModule)
    z, c = torch.randn(4, 3), torch.randn(4, 2)
    x = t.condition(c)(z)
    torch.testing.assert_close(x, flow.decode(z, c))
    assert not torch.allclose(x, t.condition(c + 1)(z))
    q = dist.ConditionalTransformedDistribution(dist.Normal(torch.zeros(3), 1.0).to_event(1), [t]).condition(c)
    torch.testing.assert_close(q.log_prob(x), flow.log_prob(x, c), atol=1e-5, rtol=1e-5)


def test_rejects_what_is_not_a_flow():
    with pytest.raises(TypeError, match="Flow or Transform, got Linear"):
        to_pyro(torch.nn.Linear(2, 2))


def funnel():
    """Neal's funnel: v ~ N(0, 3^2), x | v ~ N(0, e^v I_2); normalized, so log Z = 0."""
    v = pyro.sample("v", dist.Normal(0.0, 3.0))
    pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2).unsqueeze(-1).expand(*v.shape, 2)).to_event(1))


def final_elbo(guide, steps=400):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(funnel, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO(num_particles=8, vectorize_particles=True))
    for _ in range(steps):
        svi.step()
    with torch.no_grad():
        return -Trace_ELBO(num_particles=4000, vectorize_particles=True).loss(funnel, guide)


def test_flowforge_iaf_guide_beats_autonormal_on_the_funnel():
    iaf = AutoNormalizingFlow(funnel, lambda dim: to_pyro(ff.models.build("iaf", dim=dim, layers=3, hidden=32)))
    flow_elbo = final_elbo(iaf)
    assert any(name.startswith("AutoNormalizingFlow.transform") for name in pyro.get_param_store())
    normal_elbo = final_elbo(AutoNormal(funnel))
    assert flow_elbo > normal_elbo + 0.3, (flow_elbo, normal_elbo)  # log Z = 0 bounds both
    assert flow_elbo < 0.05
