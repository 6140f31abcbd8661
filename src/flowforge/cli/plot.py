"""``flowforge plot``: the pictures of a run."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..data import Dataset
from ..distributions import Flow
from ..training.model_input import model_input
from .common import add_device_arg, examples, load_run, run_dataset


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="draw data vs samples, density, latent space and loss curves of a run",
        description="Write PNG pictures of a trained run: data_vs_samples.png, density.png (2-D data), "
        "latent_space.png (coloured by class when the data have labels) and loss_curves.png; for image "
        "flows samples_T1.png and samples_T0.7.png (sample grids at temperatures 1 and 0.7).",
        epilog=examples("flowforge plot runs/moons", "flowforge plot runs/moons --out pictures/"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file)")
    p.add_argument("--data", help="data set to compare with (default: the run's own)")
    p.add_argument("--out", type=Path, help="folder for the pictures (default: the run folder)")
    add_device_arg(p)
    p.set_defaults(run=run)


def write_run_plots(out: Path, flow: Flow, dataset: Dataset) -> list[Path]:
    """Every picture that fits the data: returns the files written."""
    from .. import viz

    flow.eval()
    written = []
    if (out / "metrics.csv").exists() and (out / "metrics.csv").stat().st_size > 60:
        written.append(viz.plot_loss_curves(out / "metrics.csv", out / "loss_curves.png"))
    if dataset.kind == "image" and not flow.context_dim:
        from ..viz.images import plot_image_grid

        for t in (1.0, 0.7):
            samples = flow.sample(64, temperature=t).reshape(64, *dataset.event_shape)
            title = f"samples, temperature {t:g}"
            written.append(plot_image_grid(samples, out / f"samples_T{t:g}.png", dataset.levels or 256, title=title))
    if dataset.kind != "vector":
        return written
    x, labels, ctx = dataset.test, dataset.labels["test"], dataset.context["test"]
    n = min(len(x), 5000)
    x, labels = x[:n], None if labels is None else labels[:n]
    ctx = None if ctx is None else ctx[:n]
    p = next(flow.parameters())
    with torch.no_grad():
        samples = flow.sample(n, None if ctx is None else ctx.to(p.device, p.dtype))
    written.append(viz.plot_data_vs_samples(x, samples.flatten(1), out / "data_vs_samples.png", labels))
    if ctx is not None:
        return written
    if tuple(flow.event_shape) == (2,):
        written.append(viz.plot_density(flow, x, out / "density.png"))
    written.append(viz.plot_latent_space(flow, model_input(flow, x), out / "latent_space.png", labels))
    return written


def run(args) -> int:
    flow, meta = load_run(args.run_dir, args.device)
    dataset = run_dataset(meta, args.data)
    out = args.out or (args.run_dir if args.run_dir.is_dir() else args.run_dir.parent)
    for path in write_run_plots(out, flow, dataset):
        print(path)
    return 0
