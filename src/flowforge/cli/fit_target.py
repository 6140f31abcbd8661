"""``flowforge fit-target``: fit a flow to an unnormalized density by reverse KL."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..inference.targets import available_targets, make_target
from ..inference.vi import fit_target
from ..models import build, model_options
from ..training.run import Run
from .common import (
    CLIError,
    add_device_arg,
    examples,
    new_run,
    positive_float,
    positive_int,
    resolve_device,
    resumable_run,
    writing,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit-target",
        help="fit a flow to a density known up to a constant (variational inference)",
        description="Fit a flow q to p = p~/Z by minimizing KL(q || p) on reparameterized samples, then estimate "
        "log Z by importance sampling. OUT is a run folder: model.safetensors (best validation weights), "
        "last.safetensors (--resume), metrics.csv, summary.json (log_z, log_z_stderr, ess_fraction, elbo, "
        "true_log_z) and target_vs_flow.png.",
        epilog=examples(
            "flowforge fit-target --target banana --model iaf --out runs/banana",
            "flowforge fit-target --target u1 --model realnvp --steps 4000 --out runs/u1",
            "flowforge fit-target --target u3 --model maf --layers 8 --hidden 64 --out runs/u3",
            "flowforge fit-target --resume runs/u3                # continue a run",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", help=f"built-in target: {', '.join(available_targets())}")
    p.add_argument("--model", default="iaf", help="flow model, e.g. iaf, realnvp, maf (default: iaf)")
    p.add_argument("--out", type=Path, help="run folder")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN from its last state")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--steps", type=positive_int, default=4000, help="optimizer steps (default: 4000)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per step (default: 256)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="initial Adam learning rate, cosine decay (1e-3)")
    p.add_argument("--layers", type=positive_int, default=8, help="number of flow layers (default: 8)")
    p.add_argument("--hidden", type=positive_int, default=64, help="hidden units per conditioner layer (default: 64)")
    p.add_argument("--anneal", type=int, default=None,
                   help="steps over which the target's inverse temperature rises from 0.01 to 1 "
                   "(default: a quarter of --steps; 0 for none)")
    p.add_argument("--eval-samples", type=positive_int, default=100_000,
                   help="importance samples for the log Z estimate (default: 100000)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and samples (default: 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the picture")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.resume is not None:
        return _resume(args)
    if args.target is None or args.out is None:
        raise CLIError("give --target and --out (or --resume RUN)")
    if args.target not in available_targets():
        raise CLIError(f"unknown target {args.target!r}; available targets: {', '.join(available_targets())}")
    model_options(args.model)  # an unknown name fails before any work
    target = make_target(args.target)
    anneal = args.steps // 4 if args.anneal is None else args.anneal
    if not 0 <= anneal <= args.steps:
        raise CLIError(f"--anneal must be between 0 and --steps ({args.steps}), got {anneal}")
    torch.manual_seed(args.seed)
    flow = build(args.model, dim=target.dim, layers=args.layers, hidden=args.hidden).to(resolve_device(args.device))
    with new_run(args.out, args.overwrite) as run:
        result = fit_target(flow, target, steps=args.steps, batch_size=args.batch_size, lr=args.lr, anneal=anneal,
                            eval_samples=args.eval_samples, seed=args.seed, progress=not args.quiet, out=run)
        return _finish(args, run, flow, target, result)


def _resume(args) -> int:
    run, meta = resumable_run(args.resume, "fit-target")
    target, options, config = make_target(meta["target"]), meta["objective"], meta["train_config"]
    model = dict(meta["model"])
    flow = build(model.pop("name"), **model).to(resolve_device(args.device))
    with writing(run):
        result = fit_target(flow, target, steps=config["steps"], batch_size=options["batch_size"], lr=config["lr"],
                            clip_grad=config["clip_grad"], anneal=options["anneal"],
                            eval_samples=options["eval_samples"], seed=config["seed"], progress=not args.quiet,
                            out=run, resume=True)
        return _finish(args, run, flow, target, result)


def _finish(args, run: Run, flow, target, result) -> int:
    if not args.no_plots and target.dim == 2:
        from ..viz.vi import plot_target_vs_flow

        plot_target_vs_flow(target, flow, run / "target_vs_flow.png")
    truth = "unknown" if result.true_log_z is None else f"{result.true_log_z:.4f}"
    print(
        f"fitted {flow.config['name']} to {target.name}: log Z = {result.log_z:.4f} +- {result.log_z_stderr:.4f} "
        f"(true {truth}), ESS fraction {result.ess_fraction:.3f}, ELBO {result.elbo:.4f}; run folder {run.path}",
        file=sys.stdout,
    )
    return 0
