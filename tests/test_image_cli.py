"""Image sub-commands end to end (train, evaluate, sample --grid, interpolate,
manipulate, inpaint) and their one-line errors on bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flowforge.cli import main
from flowforge.models import build
from flowforge.training import save_checkpoint


@pytest.fixture(scope="module")
def glow_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits-glow"
    args = ["train", "--data", "digits", "--model", "glow", "--steps", "20", "--batch-size", "32", "--eval-every", "10",
            "--hidden", "8", "--layers", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    return out


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A $FLOWFORGE_DATA with small local files, as a user would provide them."""
    monkeypatch.setenv("FLOWFORGE_DATA", str(tmp_path))
    return tmp_path


def write_npz(folder, name, x_train, x_test):
    folder.mkdir(parents=True, exist_ok=True)
    n, m = len(x_train), len(x_test)
    np.savez(folder / name, x_train=x_train, y_train=np.arange(n) % 10, x_test=x_test, y_test=np.arange(m) % 10)


def test_train_leaves_bits_per_dim_and_sample_grids(glow_run, capsys):
    summary = json.loads((glow_run / "summary.json").read_text())
    assert summary["model"]["shape"] == [1, 8, 8]
    assert summary["model"]["preprocess"] == [{"type": "logit", "levels": 17, "alpha": 0.05}]
    assert 0 < summary["test_bits_per_dim"] < math.log2(17)
    for name in ("samples_T1.png", "samples_T0.7.png"):
        assert (glow_run / name).stat().st_size > 0
    assert main(["evaluate", str(glow_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bits_per_dim"] == pytest.approx(summary["test_bits_per_dim"], rel=1e-6)


def test_sample_grid_with_temperature(glow_run, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(glow_run), "-n", "16", "--temperature", "0.7", "--grid", str(grid)]) == 0
    assert grid.stat().st_size > 0
    assert not (tmp_path / "samples.csv").exists()


def test_interpolate_manipulate_inpaint_write_pictures(glow_run, tmp_path, capsys):
    assert main(["interpolate", str(glow_run), "--pairs", "2", "--steps", "4", "--out", str(tmp_path)]) == 0
    assert main(["manipulate", str(glow_run), "--from-class", "3", "--to-class", "8", "-n", "2",
                 "--out", str(tmp_path)]) == 0
    assert main(["inpaint", str(glow_run), "--steps", "5", "-n", "3", "--mask", "centre", "--out", str(tmp_path)]) == 0
    for name in ("interpolation.png", "manipulation.png", "inpainting.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / "inpainting.json").read_text())
    assert record["missing_pixels_per_image"] == 16 and record["images"] == 3
    assert set(record) >= {"log_prob_before", "log_prob_after", "log_prob_original"}
    assert json.loads((tmp_path / "manipulation.json").read_text())["to_class"] == 8


def test_defaults_write_into_the_run_folder(glow_run):
    assert main(["interpolate", str(glow_run)]) == 0
    assert (glow_run / "interpolation.png").exists()


def run_error(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_unknown_class_is_a_one_line_error(glow_run, capsys):
    err = run_error(["manipulate", str(glow_run), "--from-class", "42"], capsys)
    assert "--from-class 42: no training images with that label" in err


def test_vector_run_is_refused_by_image_commands(tmp_path, capsys):
    flow = build("realnvp", dim=2, layers=2, hidden=4)
    save_checkpoint(tmp_path, flow, {"data": {"name": "moons", "kind": "vector"}})
    err = run_error(["interpolate", str(tmp_path)], capsys)
    assert "needs a flow trained on images" in err
    err = run_error(["sample", str(tmp_path), "--grid", str(tmp_path / "g.png")], capsys)
    assert "--grid needs a flow trained on images" in err


def test_images_of_the_wrong_shape_or_colour_for_the_checkpoint(glow_run, data_root, capsys):
    grey = np.random.default_rng(0).integers(0, 256, (30, 12, 12), dtype=np.uint8)
    write_npz(data_root / "mnist", "mnist.npz", grey[:20], grey[20:])
    err = run_error(["interpolate", str(glow_run), "--data", "mnist", "--out", str(data_root)], capsys)
    assert "images have shape (1, 12, 12), the model expects (1, 8, 8)" in err
    colour = np.random.default_rng(0).integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    write_npz(data_root / "cifar10", "cifar10.npz", colour[:20], colour[20:])
    err = run_error(["inpaint", str(glow_run), "--data", "cifar10", "--out", str(data_root)], capsys)
    assert "colour (3 channels) but the model expects grey (1 channel)" in err


def test_pixel_values_outside_the_declared_range(data_root, capsys):
    x = np.full((30, 8, 8), 300, dtype=np.uint16)
    write_npz(data_root / "mnist", "mnist.npz", x[:20], x[20:])
    err = run_error(["train", "--data", "mnist", "--model", "glow", "--out", str(data_root / "r")], capsys)
    assert "pixel values must be integers in [0, 255]" in err and "[300, 300]" in err


def test_odd_image_size_names_the_shape_and_a_fix(data_root, capsys):
    x = np.zeros((30, 7, 7), dtype=np.uint8)
    write_npz(data_root / "mnist", "mnist.npz", x[:20], x[20:])
    err = run_error(["train", "--data", "mnist", "--model", "glow", "--out", str(data_root / "r")], capsys)
    assert "got image shape (1, 7, 7)" in err and "1x8x8" in err


def test_missing_files_say_what_to_put_where(data_root, capsys):
    err = run_error(["train", "--data", "mnist", "--model", "glow", "--out", str(data_root / "r")], capsys)
    assert str(data_root / "mnist") in err and "train-images-idx3-ubyte.gz" in err and "mnist.npz" in err


def write_pngs(folder, mode, n, size=(4, 4)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        shape = size + ((3,) if mode == "RGB" else ())
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(sub / f"{mode}{i}.png")


def test_image_folder_trains_from_the_command_line(tmp_path, capsys):
    write_pngs(tmp_path / "imgs", "L", 12)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "imgs"), "--model", "nice", "--steps", "3", "--hidden", "8",
                 "--out", str(out), "--quiet", "--no-plots"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["event_shape"] == [1, 4, 4] and summary["data"]["levels"] == 256
    assert summary["data"]["classes"] == ["class0", "class1"]
    assert main(["inpaint", str(out), "--steps", "2", "-n", "2"]) == 0  # reloads the folder by its name


def test_image_folder_mixing_grey_and_colour_is_refused(tmp_path, capsys):
    write_pngs(tmp_path / "imgs", "L", 4)
    write_pngs(tmp_path / "imgs", "RGB", 2)
    args = ["train", "--data", str(tmp_path / "imgs"), "--model", "nice", "--out", str(tmp_path / "r")]
    err = run_error(args, capsys)
    assert "mixes grey and colour images" in err


def test_mnist_idx_files_and_cifar_python_batches_load(data_root):
    import gzip
    import pickle

    from flowforge.data import load_dataset

    rng = np.random.default_rng(0)
    folder = data_root / "fashion-mnist"
    folder.mkdir()
    for stem, array in {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
                        "train-labels-idx1-ubyte": np.arange(20, dtype=np.uint8) % 10,
                        "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
                        "t10k-labels-idx1-ubyte": np.arange(6, dtype=np.uint8)}.items():
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with gzip.open(folder / f"{stem}.gz", "wb") as fh:
            fh.write(header + array.tobytes())
    data = load_dataset("fashion-mnist")
    assert data.event_shape == (1, 4, 4) and data.levels == 256 and data.kind == "image"
    assert (data.train.shape[0], data.val.shape[0], data.test.shape[0]) == (18, 2, 6)
    assert data.labels["test"].tolist() == list(range(6))

    batches = data_root / "cifar10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}
        (batches / name).write_bytes(pickle.dumps(batch, protocol=2))
    cifar = load_dataset("cifar10")
    assert cifar.event_shape == (3, 32, 32) and cifar.train.shape[0] + cifar.val.shape[0] == 20
    assert cifar.info["classes"][1] == "automobile"


def test_a_cifar_batch_that_would_run_code_is_refused(data_root, capsys):
    import pickle

    batches = data_root / "cifar10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (batches / name).write_bytes(pickle.dumps({b"data": print, b"labels": []}))
    err = run_error(["train", "--data", "cifar10", "--model", "glow", "--out", str(data_root / "r")], capsys)
    assert "not a CIFAR-10 python batch" in err and "refusing to load builtins.print" in err


def test_data_path_is_used_and_recorded_for_later_commands(data_root, tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, size=(60, 8, 8), dtype=np.uint8)
    write_npz(tmp_path / "elsewhere", "my-mnist.npz", x[:40], x[40:])  # not under $FLOWFORGE_DATA
    run = tmp_path / "run"
    args = ["train", "--data", "mnist", "--data-path", str(tmp_path / "elsewhere" / "my-mnist.npz"), "--model", "nice",
            "--steps", "2", "--batch-size", "8", "--eval-every", "1", "--out", str(run), "--quiet", "--no-plots"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0  # finds the files through the run's metadata
    assert json.loads(capsys.readouterr().out)["n"] == 20
    assert main(["train", "--resume", str(run), "--steps", "3", "--quiet", "--no-plots"]) == 0


def test_data_path_only_for_sets_read_from_files(tmp_path, capsys):
    err = run_error(["train", "--data", "moons", "--data-path", str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    assert "--data-path is for the built-in sets read from files" in err and "mnist" in err
