"""Conditional flows: a flow trained on a 2-D mixture whose component is the
context learns each component; bad contexts give clear errors."""
from __future__ import annotations

import pytest
import torch

import flowforge as ff

CENTRES = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])


@pytest.fixture(autouse=True)
def _one_thread():
    """Small GEMMs: one thread is faster, and immune to a loaded machine's oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mixture(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``x | c ~ N(centre_c, 0.3^2 I)`` with ``c`` one-hot, half the points per component."""
    component = torch.arange(n) % 2
    x = CENTRES[component] + 0.3 * torch.randn(n, 2, generator=generator)
    return x, torch.nn.functional.one_hot(component, 2).float()


@pytest.mark.parametrize("model", ["maf", "realnvp"])
def test_conditional_flow_learns_each_component(model):
    gen = torch.Generator().manual_seed(0)
    x, c = _mixture(500, gen)
    torch.manual_seed(0)
    flow = ff.models.build(model, dim=2, layers=3, hidden=16, context_dim=2)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        (-flow.log_prob(x, c).mean()).backward()
        opt.step()
    flow.eval()
    x_test, c_test = _mixture(400, gen)
    swapped = c_test.flip(1)
    with torch.no_grad():
        right, wrong = flow.log_prob(x_test, c_test), flow.log_prob(x_test, swapped)
        # a component's points are likely under their own context only
        assert right.mean() > -1.5 and (right - wrong).mean() > 20
        for k in range(2):
            context = torch.nn.functional.one_hot(torch.full((2000,), k), 2).float()
            samples = flow.sample(2000, context)
            torch.testing.assert_close(samples.mean(0), CENTRES[k], atol=0.15, rtol=0)
            torch.testing.assert_close(samples.std(0), torch.full((2,), 0.3), atol=0.1, rtol=0)


@pytest.mark.parametrize("model", ["maf", "iaf"])
def test_context_errors(model):
    flow = ff.models.build(model, dim=3, layers=2, hidden=8, context_dim=2)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="needs a context of width 2"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match=r"context must have shape \(4, 2\)"):
        flow.log_prob(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match="needs a context of width 2"):
        flow.sample(4)
    with pytest.raises(ValueError, match="one per sample"):
        flow.sample(4, torch.randn(3, 2))
    unconditional = ff.models.build(model, dim=3, layers=2, hidden=8)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.log_prob(x, torch.randn(4, 2))
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.sample(4, torch.randn(4, 2))
    # the layers check too, for users composing them by hand
    with pytest.raises(ValueError, match="needs a context of width 2"):
        flow.transform(x)
