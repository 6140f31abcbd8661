"""``flowforge train``: fit a flow to data and leave a run folder."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from ..data import GridWarning, datasets_taking, load_dataset
from ..data.tabular import TABULAR_SUFFIXES
from ..models import build, model_options
from ..training import TrainConfig, distributed, fit
from ..training.recipes import DEFAULT_MODELS, build_for_data, train_defaults
from .common import (
    CLIError,
    add_device_arg,
    data_options,
    examples,
    new_run,
    positive_float,
    positive_int,
    resolve_device,
    resumable_run,
    writing,
)
from .plot import write_run_plots


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a flow (no arguments: a spline flow on two moons)",
        description="Train a flow by exact maximum likelihood. Writes OUT/model.safetensors (best validation "
        "weights + config), OUT/last.safetensors (resume state), OUT/metrics.csv, OUT/summary.json and pictures.",
        epilog=examples(
            "flowforge train                                   # the demo: a spline flow (nsf) on two moons",
            "flowforge train --data my_table.csv --out runs/mine   # defaults for tables: nsf, scaled steps",
            "flowforge train --data moons --model realnvp --steps 3000 --out runs/moons",
            "flowforge train --data my_table.csv --model realnvp --out runs/mine",
            "flowforge train --data table.csv --context-cols y --out runs/cond   # conditional on column y",
            "flowforge train --data weather.csv --dequantize none   # keep grid-recorded columns as recorded",
            "flowforge train --data big.npy --model maf --batch-size 512   # a .npy over 256 MB stays on disk",
            "flowforge train --resume runs/moons --steps 4000  # continue a run",
            "flowforge train --data moons --tensorboard runs/tb  # then: tensorboard --logdir runs/tb",
            "torchrun --nproc_per_node=2 -m flowforge train --data moons --batch-size 512 --out runs/ddp",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="moons", help="built-in data set name or a .csv/.npy/.npz file (default: moons)")
    p.add_argument("--model", help="model name (default: nsf for vectors and tables, realnvp for images)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<data>-<model>)")
    p.add_argument("--steps", type=positive_int, help="optimizer steps (default: from the model's recipe)")
    p.add_argument("--batch-size", type=positive_int, help="examples per step (default: recipe; full batch for toys)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batch order and noise (default: 0)")
    p.add_argument("--layers", type=positive_int, help="number of flow layers (model option)")
    p.add_argument("--hidden", type=positive_int, help="hidden units per conditioner layer (model option)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model option, VALUE as JSON (e.g. --option mask=\"half\"); repeatable")
    p.add_argument("--eval-every", type=positive_int, help="validate every N steps")
    p.add_argument("--patience", type=positive_int, help="early stopping: evaluations without improvement")
    p.add_argument("--clip-grad", type=positive_float, help="max gradient norm")
    p.add_argument("--checkpoint-every", type=positive_int,
                   help="write last.safetensors every N steps (default: at evals)")
    p.add_argument("--max-nonfinite", type=positive_int, help="stop after N non-finite steps in a row (default: 20)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model (first step compiles; its time is reported apart as compile_s)")
    p.add_argument("--schedule", choices=["constant", "cosine"], help="learning-rate schedule")
    p.add_argument("--warmup", type=int, help="steps of linear learning-rate warm-up (default: recipe)")
    p.add_argument("--ema", type=float, help="decay of the weights' moving average, 0 for none (default: recipe)")
    p.add_argument("--context-cols", help="comma-separated CSV columns to condition on (conditional flow)")
    p.add_argument("--data-path", type=Path, metavar="PATH",
                   help="files of a built-in image set (mnist, fashion-mnist, cifar10, image-folder): a folder or "
                        ".npz; recorded in the run (default: $FLOWFORGE_DATA/<name>)")
    p.add_argument("--dequantize", choices=["auto", "none"],
                   help="tables: columns recorded on a grid (tenths, whole dollars) get uniform noise of their "
                        "resolution in training and evaluation (auto, default) or none; recorded in the run")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN from its last state")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--no-plots", action="store_true", help="skip the pictures")
    p.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="also log the metrics and sample pictures of every evaluation to TensorBoard in DIR "
                        "(needs the [tensorboard] extra)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_arg(p)
    p.set_defaults(run=run)


def _model_options(args) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if args.layers is not None:
        options["layers"] = args.layers
    if args.hidden is not None:
        options["hidden"] = args.hidden
    return options


def _train_config(args, base: dict[str, Any]) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in base.items() if k in names}
    keys = ("steps", "batch_size", "lr", "seed", "eval_every", "patience", "clip_grad", "schedule",
            "checkpoint_every", "max_nonfinite", "warmup", "ema", "compile")
    for key in keys:
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    if values.get("ema") == 0:
        values["ema"] = None
    values["device"] = str(resolve_device(args.device))
    values["progress"] = not args.quiet
    return TrainConfig(**values)


def run(args) -> int:
    """Single process, or one rank under ``torchrun --nproc_per_node=N -m flowforge train ...``."""
    dist, args.device = distributed.init_from_env(args.device)
    try:
        return _resume(args) if args.resume is not None else _train(args)
    finally:
        distributed.shutdown()


def _train(args) -> int:
    if args.model is not None:
        model_options(args.model)  # an unknown name fails before any data are loaded
    options: dict[str, Any] = {}
    if args.context_cols:
        options["context_cols"] = [c.strip() for c in args.context_cols.split(",")]
    if args.data_path is not None:
        takes_path = datasets_taking("path")
        if args.data not in takes_path:
            raise CLIError(f"--data-path is for the built-in sets read from files ({', '.join(takes_path)}); "
                           "give a file of your own as --data instead")
        options["path"] = str(args.data_path.expanduser().resolve())
    if args.dequantize is not None:
        if Path(str(args.data)).suffix.lower() not in TABULAR_SUFFIXES:
            raise CLIError(f"--dequantize is for tables ({', '.join(TABULAR_SUFFIXES)} files), not {args.data!r}")
        options["dequantize"] = args.dequantize
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GridWarning)
        dataset = load_dataset(args.data, **options)
    for warning in caught:
        print(f"flowforge train: warning: {warning.message}", file=sys.stderr)
    args.model = args.model or DEFAULT_MODELS[dataset.kind]
    out = args.out or Path("runs") / f"{Path(str(args.data)).stem}-{args.model}"
    config = _train_config(args, train_defaults(args.model, dataset, args.steps))
    torch.manual_seed(config.seed)  # initial weights follow --seed
    flow = build_for_data(args.model, dataset, **_model_options(args))
    with new_run(out, args.overwrite) as run:
        result = fit(flow, dataset, config, out=run, callbacks=_callbacks(args, dataset))
        return _finish(args, out, flow, dataset, result.summary)


def _resume(args) -> int:
    run, meta = resumable_run(args.resume, "train")
    model = dict(meta["model"])
    dataset = load_dataset(meta["data"]["name"], **data_options(meta))
    config = _train_config(args, meta["train_config"])
    flow = build(model.pop("name"), **model)
    with writing(run):
        result = fit(flow, dataset, config, out=run, resume=True, callbacks=_callbacks(args, dataset))
        return _finish(args, run.path, flow, dataset, result.summary)


def _callbacks(args, dataset) -> list:
    if args.tensorboard is None:
        return []
    from ..tensorboard import TensorBoardLogger  # the optional extra, imported only when asked for

    return [TensorBoardLogger(args.tensorboard, dataset)]


def _finish(args, out: Path, flow, dataset, summary: dict[str, Any]) -> int:
    if not distributed.info().is_main:
        return 0
    if not args.no_plots:
        write_run_plots(out, flow, dataset)
    unit = "bits/dim" if summary["test_bits_per_dim"] is not None else "nats"
    test = summary["test_bits_per_dim"] if unit == "bits/dim" else summary["test_nll"]
    print(
        f"trained {summary['model']['name']} on {dataset.name}: {summary['steps']} steps in "
        f"{summary['wall_time_s']:.1f} s; best validation at step {summary['best_step']}; "
        f"test {unit} {test:.4f}; run folder {out}",
        file=sys.stdout,
    )
    return 0
