"""``flowforge distill``: distill a trained flow (a MAF) into a fast-sampling student (an IAF)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..inference.distill import distill, sampling_rate, student_like
from ..models import build, model_options
from ..training import evaluate_nll
from ..training.run import Run
from .common import (
    CLIError,
    add_device_arg,
    examples,
    load_run,
    new_run,
    positive_float,
    positive_int,
    resumable_run,
    run_dataset,
    writing,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "distill",
        help="distill a trained flow into a student that samples in one pass (MAF -> IAF)",
        description="Train a student flow q (default: IAF) to minimize KL(q || p_teacher) = E_q[log q - log p] on "
        "its own reparameterized samples. OUT becomes a run folder like any other (evaluate, sample, check "
        "accept it; model.safetensors holds the best validation KL, last.safetensors the --resume state) with "
        "OUT/summary.json: kl (nats, final estimate), kl_stderr, teacher_test_nll and "
        "student_test_nll (nats per example on the teacher's test split), sampling_speedup (student "
        "samples/s over teacher samples/s).",
        epilog=examples(
            "flowforge distill runs/digits-maf --student iaf --out runs/digits-iaf",
            "flowforge distill runs/digits-maf --out runs/iaf --steps 4000 --layers 5 --hidden 256",
            "flowforge distill --resume runs/digits-iaf           # continue a distillation",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("teacher", type=Path, nargs="?", metavar="TEACHER_RUN", help="run folder of the trained teacher")
    p.add_argument("--student", default="nsf",
                   help="student model (default: nsf read backwards, a spline IAF; iaf for the affine one)")
    p.add_argument("--out", type=Path, help="run folder for the student")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the distillation in RUN from its last state")
    p.add_argument("--steps", type=positive_int, default=10000, help="optimizer steps (default: 10000)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="student samples per step (default: 256)")
    p.add_argument("--lr", type=positive_float, default=3e-4,
                   help="Adam learning rate after a warm-up, cosine decay (default: 3e-4)")
    p.add_argument("--forward-weight", type=float, default=1.0,
                   help="weight of the teacher-sample NLL beside the reverse KL (0: reverse KL alone; default 1)")
    p.add_argument("--layers", type=positive_int, help="student layers (default: the teacher's)")
    p.add_argument("--hidden", type=positive_int, help="student hidden units (default: the teacher's)")
    p.add_argument("--speed-samples", type=positive_int, default=1000,
                   help="samples per timed call for the sampling speed-up (default: 1000)")
    p.add_argument("--ema", type=float, default=None,
                   help="decay of a moving average of the student's weights, validated and kept instead of them")
    p.add_argument("--seed", type=int, default=0, help="seed of the student's weights and samples (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a student already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.resume is not None:
        return _resume(args)
    if args.teacher is None or args.out is None:
        raise CLIError("give TEACHER_RUN and --out (or --resume RUN)")
    model_options(args.student)  # an unknown name fails before the teacher is loaded
    teacher, meta = load_run(args.teacher, args.device)
    dataset = run_dataset(meta, None)
    torch.manual_seed(args.seed)
    options = {k: getattr(args, k) for k in ("layers", "hidden") if getattr(args, k) is not None}
    student = student_like(teacher, args.student, **options)
    with new_run(args.out, args.overwrite) as run:
        record = {"data": meta.get("data", {}), "distilled_from": str(args.teacher)}
        result = distill(teacher, student, args.steps, batch_size=args.batch_size, lr=args.lr,
                         contexts=dataset.context["train"], forward_weight=args.forward_weight,
                         progress=not args.quiet, seed=args.seed, out=run, record=record, ema=args.ema)
        return _finish(args, run, teacher, student, dataset, result)


def _resume(args) -> int:
    run, meta = resumable_run(args.resume, "distill")
    teacher, teacher_meta = load_run(meta["distilled_from"], args.device)
    dataset = run_dataset(teacher_meta, None)
    model = dict(meta["model"])
    student = build(model.pop("name"), **model).to(next(teacher.parameters()))
    config, options = meta["train_config"], meta["objective"]
    record = {"data": meta["data"], "distilled_from": meta["distilled_from"]}
    with writing(run):
        result = distill(teacher, student, config["steps"], batch_size=options["batch_size"], lr=config["lr"],
                         clip_grad=config["clip_grad"], contexts=dataset.context["train"],
                         eval_samples=options["eval_samples"], forward_weight=options["forward_weight"],
                         progress=not args.quiet, seed=config["seed"], out=run,
                         resume=True, record=record, ema=config.get("ema"))
        return _finish(args, run, teacher, student, dataset, result)


def _finish(args, run: Run, teacher, student, dataset, result) -> int:
    """Add the test NLL of both flows and their sampling rates to the run's summary."""
    test_context = dataset.context["test"]
    scores = {
        name: evaluate_nll(flow, dataset.split("test"), dataset, test_context, noise_draws=5 if dataset.levels else 1)
        for name, flow in (("teacher", teacher), ("student", student))
    }
    n = args.speed_samples
    speed_context = None if test_context is None else test_context[torch.randint(len(test_context), (n,))]
    rates = {name: sampling_rate(flow, n, speed_context) for name, flow in (("teacher", teacher), ("student", student))}
    summary = {
        **json.loads((run / "summary.json").read_text()),
        "teacher_test_nll": scores["teacher"]["nll"],
        "student_test_nll": scores["student"]["nll"],
        "teacher_test_bits_per_dim": scores["teacher"]["bits_per_dim"],
        "student_test_bits_per_dim": scores["student"]["bits_per_dim"],
        "teacher_samples_per_s": rates["teacher"],
        "student_samples_per_s": rates["student"],
        "sampling_speedup": rates["student"] / rates["teacher"],
    }
    run.write_summary(summary)
    print(
        f"distilled {teacher.config.get('name')} -> {student.config['name']}: KL {result.kl:.4f} +- "
        f"{result.kl_stderr:.4f} nats; test NLL teacher {summary['teacher_test_nll']:.4f}, student "
        f"{summary['student_test_nll']:.4f} nats; sampling {summary['sampling_speedup']:.1f}x faster; "
        f"run folder {run.path}",
        file=sys.stdout,
    )
    return 0
