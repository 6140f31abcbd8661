"""Property-based sweep of the transform kit: random sizes, masks and seeds."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowforge.nets import MLP, ParallelMLP
from flowforge.testing import check_transform
from flowforge.transforms import (
    AdditiveMap,
    AffineMap,
    Compose,
    Coupling,
    Permutation,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
)

from ..helpers import perturb


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(2, 7),
    mask_kind=st.sampled_from(["alternating", "half"]),
    parity=st.integers(0, 1),
    affine=st.booleans(),
    parallel=st.booleans(),
    context_dim=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_vector_couplings(dim, mask_kind, parity, affine, parallel, context_dim, seed):
    torch.manual_seed(seed)
    mask = alternating_mask(dim, parity) if mask_kind == "alternating" else half_mask(dim, bool(parity))
    univariate = AffineMap(1.5) if affine else AdditiveMap()
    n_params = univariate.n_params

    def net(i, o):
        return ParallelMLP(i, o, 8, 1, copies=n_params) if parallel else MLP(i, o, 8, 1)

    layers = [Coupling(mask, net, univariate, context_dim), Permutation.random(dim, seed)]
    t = Compose(layers, event_shape=(dim,)).double()
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(4, dim, dtype=torch.float64)
    c = torch.randn(4, context_dim, dtype=torch.float64) if context_dim else None
    assert check_transform(t, x, c).ok(1e-8)


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(2, 7), mask_kind=st.sampled_from(["alternating", "half", "channel"]), parity=st.integers(0, 1),
       seed=st.integers(0, 2**16))
def test_split_couplings_keep_the_masked_out_part_and_agree_with_the_gather_form(dim, mask_kind, parity, seed):
    """Masks of two contiguous blocks are split and concatenated, others gathered: the same map."""
    torch.manual_seed(seed)
    mask = {"alternating": lambda: alternating_mask(dim, parity), "half": lambda: half_mask(dim, bool(parity)),
            "channel": lambda: channel_mask((dim, 2, 3), bool(parity))}[mask_kind]()
    shape = tuple(mask.shape)

    def net(i, o):
        if len(shape) == 3:
            return torch.nn.Conv2d(i, o, 3, padding=1)
        return MLP(i, o, 8, 1)

    t = perturb(Coupling(mask, net, AffineMap(1.5)).double(), 0.3)
    x = torch.randn(4, *shape, dtype=torch.float64)
    y, log_det = t(x)
    assert torch.equal(y[:, ~mask], x[:, ~mask]) and not torch.allclose(y[:, mask], x[:, mask])
    blocks, t.blocks = t.blocks, None  # the general gather form
    y_gather, log_det_gather = t(x)
    torch.testing.assert_close((y, log_det), (y_gather, log_det_gather), rtol=0, atol=1e-12)
    assert blocks is None if mask_kind == "alternating" and dim > 2 else blocks is not None


@settings(max_examples=10, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(2, 4), w=st.integers(2, 4), parity=st.integers(0, 1),
       seed=st.integers(0, 999))
def test_checkerboard_couplings(c, h, w, parity, seed):
    torch.manual_seed(seed)

    def conv(i, o):
        return torch.nn.Sequential(
            torch.nn.Conv2d(i, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, o, 3, padding=1)
        )

    t = Coupling(checkerboard_mask((c, h, w), parity), conv, AffineMap()).double()
    x = torch.randn(3, c, h, w, dtype=torch.float64)
    assert check_transform(t, x).ok(1e-8)
