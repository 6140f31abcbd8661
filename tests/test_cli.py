"""The command line end to end: files produced, output contract, exit codes."""
import json
import subprocess
import sys

import numpy as np
import pytest

from flowforge.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    args = ["train", "--data", "moons", "--model", "realnvp", "--steps", "40", "--batch-size", "256",
            "--layers", "2", "--hidden", "16", "--out", str(out), "--quiet", "--eval-every", "20"]
    assert main(args) == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    for name in ("model.safetensors", "last.safetensors", "metrics.csv", "summary.json",
                 "data_vs_samples.png", "density.png", "latent_space.png", "loss_curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["model"]["layers"] == 2
    assert all(np.isfinite(summary[k]) for k in ("train_nll", "val_nll", "test_nll"))


def test_evaluate_json_contract(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--data", "moons", "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"nll", "bits_per_dim", "discrete_nll_bound", "n"}
    assert result["bits_per_dim"] is None and result["n"] == 20000
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result["nll"] == pytest.approx(summary["test_nll"], rel=1e-6)


def test_evaluate_a_file_uses_every_row(run_dir, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, np.random.default_rng(0).normal(size=(37, 2)), delimiter=",")
    assert main(["evaluate", str(run_dir), "--data", str(rows), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 37


def test_sample_writes_rows(run_dir, tmp_path):
    out = tmp_path / "s.csv"
    assert main(["sample", str(run_dir), "-n", "123", "-o", str(out)]) == 0
    assert np.loadtxt(out, delimiter=",").shape == (123, 2)
    npy = tmp_path / "s.npy"
    assert main(["sample", str(run_dir), "-n", "5", "-o", str(npy), "--temperature", "0.5"]) == 0
    assert np.load(npy).shape == (5, 2)


def test_check_passes_and_reports(run_dir, capsys):
    assert main(["check", str(run_dir), "--json", "--n", "64"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["log_det_forward"] < 1e-8 and report["reconstruction_x"] < 1e-8


def test_plot_redraws(run_dir, tmp_path):
    assert main(["plot", str(run_dir), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "density.png").exists() and (tmp_path / "latent_space.png").exists()


def test_user_csv_with_header_and_context(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 2)) + 3 * y[:, None]
    table = tmp_path / "table.csv"
    table.write_text("a,b,y\n" + "\n".join(f"{u},{v},{w}" for (u, v), w in zip(x, y, strict=True)))
    out = tmp_path / "cond"
    args = ["train", "--data", str(table), "--context-cols", "y", "--steps", "20", "--layers", "2", "--hidden", "8",
            "--out", str(out), "--quiet", "--no-plots"]
    assert main(args) == 0
    assert main(["sample", str(out), "-n", "7", "--context", "1", "-o", str(tmp_path / "c.csv")]) == 0
    assert main(["evaluate", str(out), "--data", str(table), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 400


def test_resume_continues(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["train", "--resume", str(copy), "--steps", "60", "--quiet", "--no-plots"]) == 0
    assert json.loads((copy / "summary.json").read_text())["steps"] == 60


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "flowforge", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "examples:" in out.stdout and "--batch-size" in out.stdout
