"""Safe boundaries: dtype/device mismatches refused by name, one path from raw data to model
input, train/eval mode restored, nothing set process-wide at import."""
import os
import subprocess
import sys

import pytest
import torch

import flowforge as ff
from flowforge.data import Dataset
from flowforge.inference.latent import interpolate
from flowforge.mode import in_mode
from flowforge.models import build
from flowforge.training.model_input import model_input

ENTRIES = {
    "log_prob": lambda flow, x, c: flow.log_prob(x, c),
    "transform.forward": lambda flow, x, c: flow.transform(x, c),
    "transform.inverse": lambda flow, x, c: flow.transform.inverse(x, c),
    "encode": lambda flow, x, c: flow.encode(x, c),
}


@pytest.mark.parametrize("name", ["realnvp", "maf"])  # a 2-D Real NVP runs the fused CPU path
@pytest.mark.parametrize("model_dtype, data_dtype", [(torch.float32, torch.float64), (torch.float64, torch.float32)])
def test_dtype_mismatch_is_refused_naming_both(name, model_dtype, data_dtype):
    flow = build(name, dim=2, layers=2, hidden=8, context_dim=1).to(model_dtype)
    x, c = torch.randn(5, 2, dtype=data_dtype), torch.randn(5, 1, dtype=data_dtype)
    message = f"{data_dtype} on cpu, but the model is {model_dtype} on cpu"
    for entry, call in ENTRIES.items():
        with pytest.raises(ff.DataError, match=message):
            call(flow, x, c.to(model_dtype))
            pytest.fail(f"{entry} accepted {data_dtype} input")
    with pytest.raises(ff.DataError, match=f"context is {message}"):
        flow.sample(5, c)
    assert torch.isfinite(flow.log_prob(x.to(model_dtype), c.to(model_dtype))).all()


def test_model_input_casts_dequantizes_and_shapes():
    flow = build("maf", dim=4, layers=1, hidden=8).float()
    raw = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]], dtype=torch.float64).repeat(3, 1, 1)
    images = Dataset("t", raw, raw, raw, kind="image", levels=4)
    x = model_input(flow, raw, images, noise=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == (3, 4)
    assert ((x - raw.flatten(1).float() >= 0) & (x - raw.flatten(1).float() < 1)).all()
    assert torch.equal(model_input(flow, raw, images, noise="center"), raw.flatten(1).float() + 0.5)
    continuous = Dataset("t", raw, raw, raw)
    assert torch.equal(model_input(flow, raw, continuous, torch.Generator()), raw.flatten(1).float())  # no noise
    with pytest.raises(ff.DataError, match=r"shape \(3,\) but the model expects \(4,\)"):
        model_input(flow, torch.zeros(2, 3))


@pytest.mark.parametrize("training", [True, False])
def test_helpers_leave_the_mode_as_they_found_it(training):
    flow = build("realnvp", dim=2, layers=2, hidden=8, batch_norm=False).train(training)
    flow.base.train(not training)  # a mix of modes comes back as it was
    interpolate(flow, torch.randn(2, 2), torch.randn(2, 2), steps=3)
    assert flow.training == training and flow.transform.training == training
    assert flow.base.training == (not training)
    with pytest.raises(RuntimeError), in_mode(flow, training=not training):
        assert flow.transform.training == (not training)
        raise RuntimeError("the mode is restored when the block raises")
    assert flow.transform.training == training and flow.base.training == (not training)


def test_importing_flowforge_sets_nothing_process_wide():
    code = (
        "import os, sys, matplotlib; matplotlib.use('svg'); import flowforge, flowforge.viz, flowforge.cli; "
        "print(os.environ.get('OMP_WAIT_POLICY'), matplotlib.get_backend())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MPLBACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["None", "svg"]
