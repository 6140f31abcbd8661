"""User tables: pyarrow CSV reading with named errors, and grid-recorded columns
detected, warned about, dequantized in training, recorded in the run and
applied identically when the run's data are reloaded."""
import json
import math

import numpy as np
import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.cli.common import run_dataset
from flowforge.data import DataError, GridWarning, load_dataset
from flowforge.training import TrainConfig, evaluate_nll, fit, nll_loss

pytestmark = pytest.mark.filterwarnings("ignore::flowforge.data.GridWarning")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """``temp`` recorded in tenths, ``x`` continuous."""
    rng = np.random.default_rng(0)
    temp = np.round(rng.normal(15, 5, 600), 1)
    x = 0.3 * temp + rng.normal(size=600)
    path = tmp_path_factory.mktemp("tab") / "weather.csv"
    path.write_text("temp,x\n" + "\n".join(f"{t},{float(v)!r}" for t, v in zip(temp, x, strict=True)) + "\n")
    return path


def test_csv_matches_numpy(tmp_path):
    a = np.random.default_rng(1).normal(size=(300, 4))
    path = tmp_path / "plain.csv"
    np.savetxt(path, a, delimiter=",")
    ds = load_dataset(path, val_fraction=0.0, test_fraction=0.0)
    assert ds.columns == [f"column {i}" for i in range(4)]
    order = np.random.default_rng(0).permutation(300)  # the split's seeded row order
    np.testing.assert_array_equal(ds.train.numpy(), a[order].astype(np.float32))


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("a,b\n1,2\n3\n", ["line 3 has 1 fields, expected 2"]),
        ("a,b\n1,2\n  \n3,4\n", ["line 3 has 1 fields, expected 2"]),
        ("a,b\n1,2\n\n3,x\n", ["column 'b' is not numeric", "line 4 has 'x'"]),
        ("a,b\n1,2\n3,\n", ["column 'b' is not numeric", "line 3 has ''"]),
        ("a,b\n1,2\n3,nan\n4,5\n", ["1 NaN/inf value(s) in 1 row(s)", "column(s) b"]),
        ("a,b\n", ["header but no data rows"]),
    ],
)
def test_csv_errors_name_line_column_and_cell(tmp_path, text, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_dataset(path)
    for f in fragments:
        assert f in str(e.value) and "bad.csv" in str(e.value)


def test_grid_column_is_detected_warned_and_recorded(table):
    with pytest.warns(GridWarning, match=r"weather.csv: 1 column\(s\) recorded on a grid \(resolution\): temp \(0.1\)"):
        ds = load_dataset(table)
    assert ds.resolution == [0.1, 0.0] and ds.quantized
    assert ds.describe()["grid"] == {"temp": 0.1} and ds.describe()["dequantize"] == [0.1, 0.0]


def test_none_turns_dequantization_off(table, recwarn):
    ds = load_dataset(table, dequantize="none")
    assert ds.resolution is None and not ds.quantized and ds.describe()["dequantize"] == "none"
    assert not [w for w in recwarn if issubclass(w.category, GridWarning)]
    with pytest.raises(DataError, match="1 resolution"):
        load_dataset(table, dequantize=[0.1])


def test_constant_column_is_refused(tmp_path):
    path = tmp_path / "const.csv"
    rng = np.random.default_rng(0)
    path.write_text("a,flag\n" + "\n".join(f"{v},7" for v in rng.normal(size=50)))
    with pytest.raises(DataError, match=r"const.csv: column\(s\) flag \(= 7\) hold one value in all 40 rows"):
        load_dataset(path)
    assert load_dataset(path, dequantize="none").resolution is None  # the user's call


def test_training_batches_get_fresh_noise_on_grid_columns_only(table):
    ds = load_dataset(table)
    batches = []

    def spy(model, x, c):
        batches.append(x.detach().clone())
        return nll_loss(model, x, c)

    torch.manual_seed(0)
    flow = ff.models.build("maf", dim=2, layers=2, hidden=8, preprocess=["standardize"])
    fit(flow, ds, TrainConfig(steps=2, eval_every=2, progress=False), loss=spy)
    first, second = batches  # full batch: the same rows at both steps
    assert torch.equal(first[:, 1], ds.train[:, 1]) and torch.equal(second[:, 1], ds.train[:, 1])
    for b in batches:
        offset = b[:, 0] - ds.train[:, 0]
        assert offset.min() >= 0 and offset.max() < 0.1 + 1e-6
    assert not torch.equal(first[:, 0], second[:, 0])


def test_run_records_the_rule_and_evaluation_applies_it(table, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(table), "--model", "maf", "--layers", "2", "--hidden", "16", "--steps", "30",
            "--out", str(out), "--quiet", "--no-plots"]
    assert main(args) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["grid"] == {"temp": 0.1} and summary["data"]["dequantize"] == [0.1, 0.0]
    assert summary["test_discrete_nll_bound"] == pytest.approx(summary["test_nll"] - math.log(0.1))

    flow, meta = ff.training.checkpoint.load_flow(out)
    reloaded = run_dataset(meta, str(table))  # as evaluate / check / plot reload it: the recorded widths
    assert reloaded.resolution == [0.1, 0.0]
    again = evaluate_nll(flow, reloaded.test, reloaded, noise_draws=5)
    assert again["nll"] == pytest.approx(summary["test_nll"], rel=1e-9)

    assert main(["evaluate", str(out), "--data", str(table), "--json"]) == 0
    noisy = json.loads(capsys.readouterr().out)
    assert noisy["discrete_nll_bound"] == pytest.approx(noisy["nll"] - math.log(0.1)) and noisy["n"] == 600
    assert main(["evaluate", str(out), "--data", str(table), "--json", "--dequantize", "none"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["discrete_nll_bound"] is None and raw["nll"] != noisy["nll"]
    assert main(["check", str(out), "--data", str(table), "--json", "--n", "32"]) == 0

    assert main(["train", "--resume", str(out), "--steps", "40", "--quiet", "--no-plots"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["steps"] == 40 and resumed["data"]["dequantize"] == [0.1, 0.0]


def test_cli_none_and_the_warning_line(table, tmp_path, capsys):
    common = ["--data", str(table), "--model", "maf", "--layers", "1", "--hidden", "8", "--steps", "2",
              "--quiet", "--no-plots"]
    assert main(["train", *common, "--out", str(tmp_path / "auto")]) == 0
    err = capsys.readouterr().err
    assert "flowforge train: warning: " in err and "temp (0.1)" in err
    assert main(["train", *common, "--dequantize", "none", "--out", str(tmp_path / "none")]) == 0
    assert "warning" not in capsys.readouterr().err
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["data"]["dequantize"] == "none" and summary["test_discrete_nll_bound"] is None
    assert main(["train", "--data", "moons", "--dequantize", "none", "--out", str(tmp_path / "m")]) == 2
