"""``flowforge check``: numerical verification of a trained flow on data, in float64."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..testing import check_transform
from ..training.model_input import model_input
from .common import add_device_arg, examples, load_run, positive_float, positive_int, run_dataset


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check",
        help="verify invertibility and log-determinants of a trained flow numerically",
        description="On a batch of data (float64): max |x - f^-1(f(x))|, max |z - f(f^-1(z))| for base "
        "samples z, and max |log-det - log|det J|| against the autograd Jacobian, both directions. "
        "Exits 1 when any exceeds --tol.",
        epilog=examples("flowforge check runs/moons", "flowforge check runs/moons --n 1000 --tol 1e-8 --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file)")
    p.add_argument("--data", help="data set to check on (default: the run's own, test split)")
    p.add_argument("--n", type=positive_int, default=256, help="examples to check (default: 256)")
    p.add_argument("--jacobian-samples", type=positive_int, default=3, help="examples for the Jacobian check")
    p.add_argument("--tol", type=positive_float, default=1e-6, help="tolerance (default: 1e-6)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    flow, meta = load_run(args.run_dir, args.device)
    dataset = run_dataset(meta, args.data)
    flow = flow.double().eval()
    p = next(flow.parameters())
    x = model_input(flow, dataset.test[: args.n], dataset, torch.Generator().manual_seed(0))
    ctx = dataset.context["test"]
    ctx = None if ctx is None else ctx[: args.n].to(p.device, torch.float64)
    dims = x[0].numel()
    report = check_transform(flow.transform, x, ctx, args.jacobian_samples, check_jacobian=dims <= 4096)
    with torch.no_grad():
        z = flow.base.sample(x.shape[0])
        z_rec = flow.transform(flow.transform.inverse(z, ctx)[0], ctx)[0]
    report.reconstruction_z = max(report.reconstruction_z, float((z - z_rec).abs().max()))
    ok = report.ok(args.tol)
    result = {"ok": ok, "tol": args.tol, "n": int(x.shape[0]), "dims": dims, **report.as_dict()}
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("reconstruction_x", "reconstruction_z", "log_det_consistency", "log_det_forward",
                    "log_det_inverse", "batch_leakage"):
            print(f"{key:>22}: {result[key]:.3e}")
        for problem in report.problems:
            print(f"problem: {problem}")
        print(f"{'OK' if ok else 'FAILED'} (tol {args.tol:g}, {x.shape[0]} examples, float64)")
    return 0 if ok else 1
