"""TensorBoard logging: the metrics.csv rows and sample pictures at every
evaluation, from Python and from `flowforge train --tensorboard`, without
changing the training run."""
import csv

import pytest
import torch

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import flowforge as ff  # noqa: E402
from flowforge.cli import main  # noqa: E402
from flowforge.tensorboard import TensorBoardLogger  # noqa: E402
from flowforge.training import TrainConfig, fit  # noqa: E402
from flowforge.training.trainer import RUN_FIELDS, STEP_FIELDS  # noqa: E402


def events(log_dir):
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def small_fit(dataset, **kw):
    torch.manual_seed(0)
    flow = ff.models.build("realnvp", dim=2, layers=2, hidden=8, preprocess=["standardize"])
    fit(flow, dataset, TrainConfig(steps=20, eval_every=10, progress=False), **kw)
    return flow


def test_logs_metrics_and_pictures_at_each_evaluation_without_changing_training(tmp_path):
    moons = ff.data.load_dataset("moons")
    logger = TensorBoardLogger(tmp_path / "tb", moons, samples=200)
    logged = small_fit(moons, out=tmp_path / "run", callbacks=[logger])
    logger.close()
    acc = events(tmp_path / "tb")
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    val = acc.Scalars("metrics/val_nll")
    assert [e.step for e in val] == [10, 20] == [int(r["step"]) for r in rows]
    assert [e.value for e in val] == pytest.approx([float(r["val_nll"]) for r in rows], rel=1e-5)
    assert [e.step for e in acc.Images("samples")] == [10, 20]
    plain = small_fit(moons)
    for (name, a), b in zip(logged.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # sampling for pictures leaves the training RNG alone


def test_image_data_get_a_sample_grid(tmp_path):
    torch.manual_seed(0)
    images = torch.randint(0, 17, (8, 1, 4, 4)).float()
    ds = ff.data.Dataset("tiny", images, images, images, kind="image", levels=17)
    flow = ff.models.build("glow", shape=[1, 4, 4], scales=1, layers=1, hidden=8,
                           preprocess=[{"type": "logit", "levels": 17}])
    logger = TensorBoardLogger(tmp_path, ds, samples=9)
    logger({"step": 3, "val_nll": 1.0}, flow)
    logger.close()
    (image,) = events(tmp_path).Images("samples")
    assert image.step == 3 and (image.width, image.height) == (3 * 5 - 1, 3 * 5 - 1)  # 3x3 grid, 1-pixel gaps


def test_cli_train_tensorboard_writes_every_metric(tmp_path):
    argv = ["train", "--steps", "4", "--eval-every", "2", "--out", str(tmp_path / "run"), "--no-plots", "--quiet",
            "--tensorboard", str(tmp_path / "tb")]
    assert main(argv) == 0
    tags = set(events(tmp_path / "tb").Tags()["scalars"])
    want = {f"metrics/{k}" for k in [*RUN_FIELDS, "val_nll", *STEP_FIELDS] if k != "step"}
    assert want <= tags, want - tags
