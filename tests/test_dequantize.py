"""Grid-recorded columns: the resolution is found, and dequantization stays inside each value's bin."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowforge.data import Dataset, dequantize, grid_resolution

rng = np.random.default_rng(0)


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.round(rng.normal(15, 5, 5000), 1), 0.1),  # temperatures in tenths
        (np.round(rng.normal(15, 5, 5000), 1).astype(np.float32), 0.1),  # ... stored in float32
        (np.round(rng.lognormal(3, 1, 5000)), 1.0),  # prices in whole dollars
        (np.round(rng.normal(size=5000) * 4) / 4 + 0.05, 0.25),  # a quarter grid, offset from 0
        (rng.integers(0, 100, 1000) * 5.0, 5.0),
        (np.tile([0.2, 0.5, 0.9], 100), 0.1),  # the gaps 0.3 and 0.4 share the grid 0.1
        (rng.integers(0, 2, 300).astype(float), 1.0),  # a binary column
        (rng.normal(size=5000), None),  # continuous
        (np.round(rng.normal(size=5000), 6), None),  # 6 decimals: a grid finer than the data show
        (np.array([0.2, 0.5, 0.9, 0.2]), None),  # 8 grid points over the range, only 4 rows
        (np.full(10, 3.0), None),  # constant: no resolution
    ],
)
def test_grid_resolution(values, expected):
    found = grid_resolution(values)
    assert found == (None if expected is None else pytest.approx(expected, rel=1e-6))


def test_noise_stays_in_each_columns_bin_and_is_fresh():
    x = torch.tensor([[1.2, 0.123], [3.0, -2.5]], dtype=torch.float64).repeat(500, 1)
    width = torch.tensor([0.1, 0.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    a, b = dequantize(x, gen, width), dequantize(x, gen, width)
    assert torch.equal(a[:, 1], x[:, 1])  # a continuous column is left alone
    offset = a[:, 0] - x[:, 0]
    assert offset.min() >= 0 and offset.max() < 0.1 and offset.std() > 0.02  # U[0, 0.1)
    assert not torch.equal(a, b)


def test_dataset_dequantize_follows_levels_or_resolution():
    x = torch.zeros(4, 2)
    base = dict(name="t", train=x, val=x, test=x)
    assert Dataset(**base).dequantize(x) is x and not Dataset(**base).quantized
    images = Dataset(**base, levels=17).dequantize(x, torch.Generator().manual_seed(0))
    assert (images > 0).all() and (images < 1).all()
    table = Dataset(**base, resolution=[0.0, 2.0]).dequantize(x, torch.Generator().manual_seed(0))
    assert (table[:, 0] == 0).all() and (table[:, 1] > 0).all() and (table[:, 1] < 2).all()


@settings(max_examples=60, deadline=None)
@given(
    r=st.sampled_from([0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0, 1.15078]),
    k=st.lists(st.integers(0, 60), min_size=30, max_size=200),
    k0=st.integers(-1000, 1000),
    offset=st.floats(-0.5, 0.5),
    float32=st.booleans(),
)
def test_any_recorded_grid_is_found(r, k, k0, offset, float32):
    k = np.array([k0, k0 + 1, *(k0 + np.array(k))])  # two neighbours: the grid is r, not a multiple of it
    values = (offset + k * r).astype(np.float32 if float32 else np.float64)
    if float32 and np.abs(values).max() * 1e-6 > 0.01 * r:
        return  # float32 cannot hold this grid to 1% of a step
    found = grid_resolution(values)
    cells = (k.max() - k.min()) + 1
    assert found == (None if cells > values.size else pytest.approx(r, rel=1e-4))
