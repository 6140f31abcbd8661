"""Checkpoints: round trip, and every broken file refused with a clear error."""
import json

import pytest
import torch
from safetensors.torch import save_file

import flowforge as ff
from flowforge.training.checkpoint import CheckpointError, read_metadata


@pytest.fixture
def saved(tmp_path):
    flow = ff.models.build("realnvp", dim=3, layers=2, hidden=8, preprocess=["standardize"])
    ff.models.fit_preprocessing(flow, torch.randn(50, 3) * 3 + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ff.save(flow, tmp_path)
    return flow, tmp_path


def test_round_trip_gives_identical_log_prob(saved):
    flow, run = saved
    loaded = ff.load(run)
    x = torch.randn(20, 3)
    assert torch.equal(flow.log_prob(x), loaded.log_prob(x))
    assert loaded.config == flow.config
    assert ff.load(run / "model.safetensors").config == flow.config


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in this folder"):
        ff.load(tmp_path)
    with pytest.raises(CheckpointError, match="no such run folder"):
        ff.load(tmp_path / "nope")


def test_truncated_checkpoint(saved):
    _, run = saved
    f = run / "model.safetensors"
    f.write_bytes(f.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ff.load(run)


def test_garbage_checkpoint(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ff.load(tmp_path)


def _rewrite(run, tensors=None, meta_update=None):
    f = run / "model.safetensors"
    meta = read_metadata(f)
    meta.update(meta_update or {})
    from safetensors.torch import load_file

    save_file(tensors if tensors is not None else load_file(f), f, metadata={"flowforge": json.dumps(meta)})


def test_newer_format_refused(saved):
    _, run = saved
    _rewrite(run, meta_update={"format_version": 99})
    with pytest.raises(CheckpointError, match="newer than this flowforge supports"):
        ff.load(run)


def test_unknown_model_refused(saved):
    _, run = saved
    _rewrite(run, meta_update={"model": {"name": "wavenet"}})
    with pytest.raises(CheckpointError, match="unknown model 'wavenet'"):
        ff.load(run)


def test_mismatched_shapes_refused(saved):
    _, run = saved
    from safetensors.torch import load_file

    tensors = load_file(run / "model.safetensors")
    key = next(k for k in tensors if k.endswith("net.params"))
    tensors[key] = torch.zeros(3, 3)
    _rewrite(run, tensors=tensors)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        ff.load(run)


def test_save_needs_a_config(tmp_path):
    flow = ff.Flow(ff.transforms.Identity(), ff.distributions.StandardNormal((2,)))
    with pytest.raises(CheckpointError, match="no config"):
        ff.save(flow, tmp_path)
