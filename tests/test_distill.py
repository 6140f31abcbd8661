"""Density distillation (MAF teacher -> IAF student): the KL objective, the
loop, the student's shared preprocessing, and ``flowforge distill`` leaving a
run folder the other commands accept."""
from __future__ import annotations

import json

import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.data import load_dataset
from flowforge.inference.distill import Distillation, distill, distillation_kl, student_like
from flowforge.models import fit_preprocessing
from flowforge.training import save_checkpoint

from .helpers import perturb
from .test_conditional import _one_thread  # noqa: F401  (autouse: one torch thread in this module too)


def _teacher(dim: int = 3, **options) -> ff.Flow:
    """A MAF with perturbed weights: a non-trivial, correlated density."""
    torch.manual_seed(0)
    return perturb(ff.models.build("maf", dim=dim, layers=2, hidden=16, **options), 0.3).double()


def test_kl_of_a_flow_to_itself_is_zero():
    teacher = _teacher()
    assert abs(distillation_kl(teacher, teacher, 64).item()) < 1e-9


def test_distillation_drives_the_kl_down():
    teacher = _teacher()
    student = student_like(teacher, "iaf", layers=3)
    before = distill(teacher, student, steps=0, eval_samples=2000)
    after = distill(teacher, student, steps=300, batch_size=128, lr=3e-3, eval_samples=2000)
    assert before.kl > 0.3
    assert -3 * after.kl_stderr < after.kl < 0.25 * before.kl
    assert len(after.losses) == 300
    assert all(p.requires_grad for p in teacher.parameters())  # unfrozen again


def test_the_flow_given_is_the_one_scored_and_a_moving_average_trains():
    """Validation and scores are of the flow passed in (the trainer passes the moving average)."""
    teacher = _teacher()
    a, b = student_like(teacher, "iaf", layers=3), perturb(student_like(teacher, "iaf", layers=3), 0.5)
    assert Distillation(teacher, a).validate(b) == Distillation(teacher, b).validate(b)
    assert Distillation(teacher, a).validate(a) != Distillation(teacher, b).validate(b)
    before = distill(teacher, a, steps=0, eval_samples=2000)
    after = distill(teacher, a, steps=300, batch_size=128, lr=3e-3, eval_samples=2000, ema=0.95)
    assert after.kl < 0.25 * before.kl


def test_student_shares_the_teachers_preprocessing():
    teacher = _teacher(preprocess=["standardize"])
    fit_preprocessing(teacher, torch.randn(100, 3, dtype=torch.float64) * 5 + 2)
    student = student_like(teacher, "iaf")
    assert student.config["preprocess"] == ["standardize"] and student.config["layers"] == 2
    torch.testing.assert_close(student.transform[0].std, teacher.transform[0].std)


def test_conditional_pair_needs_contexts():
    teacher = _teacher(context_dim=2)
    student = student_like(teacher, "iaf")
    assert student.context_dim == 2
    with pytest.raises(ValueError, match="pass contexts"):
        distill(teacher, student, steps=1)
    result = distill(teacher, student, steps=5, batch_size=16, contexts=torch.randn(10, 2), eval_samples=32)
    assert torch.isfinite(torch.tensor(result.kl))
    with pytest.raises(ValueError, match="differ"):
        distill(teacher, ff.models.build("iaf", dim=4).double(), steps=1, contexts=torch.randn(10, 2))


def test_cli_distill_writes_a_run_folder(tmp_path):
    data = load_dataset("moons")
    torch.manual_seed(0)
    teacher = ff.models.build("maf", dim=2, layers=2, hidden=16, preprocess=["standardize"])
    fit_preprocessing(teacher, data.train)
    save_checkpoint(tmp_path / "teacher", teacher, {"data": data.describe()})
    out = tmp_path / "student"
    args = ["distill", str(tmp_path / "teacher"), "--student", "iaf", "--out", str(out), "--steps", "30",
            "--quiet", "--speed-samples", "200"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("kl", "teacher_test_nll", "student_test_nll", "sampling_speedup"):
        assert isinstance(summary[key], float), key
    assert summary["sampling_speedup"] > 1
    assert main(["evaluate", str(out)]) == 0
    assert main(["sample", str(out), "-n", "5", "-o", str(tmp_path / "s.csv")]) == 0
    assert main(["check", str(out)]) == 0
    before = ff.load(out).state_dict()
    assert main(["distill", "--resume", str(out), "--quiet", "--speed-samples", "200"]) == 0  # already at its end
    after = ff.load(out).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((out / "summary.json").read_text())["run_kind"] == "distill"
    assert main(args) == 2  # the folder is taken
    assert main([*args, "--overwrite", "--student", "nope"]) == 2


def test_teacher_samples_enter_the_loss_and_are_the_same_on_resume():
    from flowforge.inference.distill import Distillation, teacher_sample_nll

    teacher = _teacher()
    student = student_like(teacher, layers=2, hidden=8).double()  # default: a spline flow read backwards
    assert student.config["name"] == "nsf" and student.config["inverse"]
    objective = Distillation(teacher, student, batch_size=64, pool_size=500)
    objective.setup(torch.device("cpu"), None, seed=3)
    pool = objective.pool[0].clone()
    objective.setup(torch.device("cpu"), None, seed=3)
    assert torch.equal(pool, objective.pool[0]) and pool.shape == (500, 3)
    state = objective.generator.get_state()

    def loss():
        torch.manual_seed(0)  # the same student samples
        objective.generator.set_state(state)
        return objective.loss(student, 0).item()

    with_pool = loss()
    rows = torch.randint(500, (64,), generator=torch.Generator().set_state(state))
    objective.pool = None
    reverse_only = loss()
    assert with_pool == pytest.approx(reverse_only + teacher_sample_nll(student, pool[rows]).item(), rel=1e-9)
