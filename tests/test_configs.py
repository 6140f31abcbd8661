"""Complete, versioned model records: every option recorded, old checkpoints load exactly."""
from pathlib import Path

import pytest
import torch

import flowforge as ff
from flowforge.models import CONFIG_VERSION, available, build, model_options, upgrade_config
from flowforge.training.checkpoint import read_metadata

DATA = Path(__file__).parent / "data"
POINTS = torch.tensor([[0.0, 0.0], [0.5, -1.0], [1.5, 0.25], [-2.0, 1.0]])
#: log_prob at POINTS of the checkpoints written by flowforge 0.1.0 (format 1), measured when they were written
PINNED = {
    "realnvp": [-3.580463409423828, -3.5141654014587402, -3.259665012359619, -4.559813499450684],
    "maf": [-2.8281893730163574, -2.782360076904297, -2.5952539443969727, -4.440387725830078],
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_format1_checkpoint_keeps_its_density(name):
    flow = ff.load(DATA / f"{name}_format1.safetensors").float()
    torch.testing.assert_close(flow.log_prob(POINTS.float()), torch.tensor(PINNED[name]), rtol=0, atol=1e-5)
    assert flow.config["config_version"] == CONFIG_VERSION and set(model_options(name)) < set(flow.config)


@pytest.mark.parametrize("name", available())
def test_config_records_every_option(name):
    options = {"shape": [1, 4, 4]} if name == "glow" else {}
    flow = build(name, **options)
    assert set(flow.config) == {"name", "config_version", "preprocess", *model_options(name)}
    assert build(**flow.config).config == flow.config


def test_the_record_alone_rebuilds_the_model(tmp_path, monkeypatch):
    """Changing a default after saving changes new models, not saved ones."""
    from flowforge.models import realnvp as module

    flow = build("realnvp", dim=2, layers=2, hidden=8)
    ff.save(flow, tmp_path / "m.safetensors")
    defaults = list(module.realnvp.__defaults__)
    defaults[model_options("realnvp").index("mask")] = "half"  # a default that keeps tensor shapes
    monkeypatch.setattr(module.realnvp, "__defaults__", tuple(defaults))
    assert build("realnvp", dim=2, layers=2, hidden=8).config["mask"] == "half"
    loaded = ff.load(tmp_path / "m.safetensors")
    assert loaded.config == flow.config and loaded.config["mask"] == "alternating"
    torch.testing.assert_close(loaded.log_prob(POINTS), flow.eval().log_prob(POINTS))


def test_unknown_versions_are_refused(monkeypatch):
    from flowforge.models.registry import MODELS

    with pytest.raises(ff.ConfigError, match="config version 7 is unknown"):
        upgrade_config({"name": "realnvp", "config_version": 7})
    monkeypatch.setitem(MODELS._factories, "newer", lambda dim=2: None)  # a model added after format 1
    with pytest.raises(ff.ConfigError, match="'newer' did not exist in config format 1"):
        upgrade_config({"name": "newer", "dim": 2})
    with pytest.raises(ff.ConfigError, match="config version 1 is not"):
        build("realnvp", config_version=1)
    meta = read_metadata(DATA / "maf_format1.safetensors")
    assert meta["model"]["permutation"] == "random" and meta["model"]["hidden_layers"] == 2


def test_non_json_options_are_named():
    with pytest.raises(ff.ConfigError, match="option.* hidden are not plain JSON"):
        build("realnvp", hidden=object())


def test_a_renamed_option_of_format1_keeps_its_meaning():
    """Image Real NVP's residual blocks were ``hidden_layers`` in format 1, they are ``blocks`` now."""
    old = {"name": "realnvp", "shape": [1, 4, 4], "hidden": 4, "hidden_layers": 3}
    record = upgrade_config(old)
    assert record["blocks"] == 3 and record["hidden_layers"] == 2
    expected = build("realnvp", shape=[1, 4, 4], hidden=4, blocks=3)
    assert build(**record).state_dict().keys() == expected.state_dict().keys()
