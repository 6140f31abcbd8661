"""``flowforge sample``: draw samples from a trained flow to a file."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .common import CLIError, add_device_arg, examples, load_run, positive_float, positive_int
from .image_common import require_image_flow, run_levels


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a trained flow",
        description="Draw N samples x = f^-1(z), z ~ base (times --temperature), and write them to a "
        ".csv, .npy or .npz file (one row per sample, flattened).",
        epilog=examples(
            "flowforge sample runs/moons -n 10000 -o samples.csv",
            "flowforge sample runs/cond -n 500 --context 1.0 -o given_y1.csv   # conditional flow",
            "flowforge sample runs/digits-glow -n 64 --temperature 0.7 --grid samples.png   # image flow",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file)")
    p.add_argument("-n", "--num", type=positive_int, default=1000, help="number of samples (default: 1000)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (.csv, .npy, .npz; default: samples.csv unless --grid)")
    p.add_argument("--grid", type=Path, metavar="PNG", help="draw the samples of an image flow as one picture")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="scale of the base samples (default: 1)")
    p.add_argument("--context", help="comma-separated context vector, the same for every sample")
    add_device_arg(p)
    p.set_defaults(run=run)


def parse_context(text: str | None, width: int, n: int, like: torch.Tensor) -> torch.Tensor | None:
    """``"1,2"`` -> an ``(n, width)`` tensor; errors when the flow needs none or another width."""
    if width == 0:
        if text is not None:
            raise CLIError("--context given, but this flow is unconditional")
        return None
    if text is None:
        raise CLIError(f"this flow is conditional: pass --context with {width} comma-separated values")
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CLIError(f"--context must be numbers separated by commas, got {text!r}") from None
    if len(values) != width:
        raise CLIError(f"--context has {len(values)} values, this flow needs {width}")
    return like.new_tensor(values).expand(n, width)


def write_array(path: Path, a: np.ndarray) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy", ".npz"):
        raise CLIError(f"{path}: unsupported output type {suffix!r}; use .csv, .npy or .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        np.savetxt(path, a, delimiter=",", fmt="%.7g")
    elif suffix == ".npy":
        np.save(path, a)
    else:
        np.savez(path, samples=a)


def run(args) -> int:
    flow, meta = load_run(args.run_dir, args.device)
    torch.manual_seed(args.seed)
    p = next(flow.parameters())
    context = parse_context(args.context, flow.context_dim, args.num, p)
    shape = require_image_flow(flow, "--grid", meta) if args.grid is not None else None
    x = flow.sample(args.num, context, temperature=args.temperature)
    if args.grid is not None:
        from ..viz.images import plot_image_grid  # matplotlib only when drawing

        plot_image_grid(x.reshape(len(x), *shape), args.grid, run_levels(meta),
                        title=f"samples, temperature {args.temperature:g}")
        print(f"wrote a grid of {args.num} samples to {args.grid}")
    output = args.output or (None if args.grid is not None else Path("samples.csv"))
    if output is not None:
        write_array(output, x.flatten(1).cpu().numpy())
        print(f"wrote {args.num} samples of shape {tuple(flow.event_shape)} to {output}")
    return 0
