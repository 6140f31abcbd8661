"""``flowforge evaluate``: exact NLL (and bits/dim for images) of a run on data."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data import SPLITS, Dataset, available_datasets, load_dataset
from ..training.metrics import evaluate_nll
from .common import CLIError, add_device_arg, data_options, examples, load_run, run_dataset


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="negative log-likelihood of data under a trained flow",
        description="Mean negative log-likelihood in nats per example (bits per dimension for quantized "
        "data such as images), in the data's original units, every preprocessing log-det included.",
        epilog=examples(
            "flowforge evaluate runs/moons --data moons --split test --json",
            "flowforge evaluate runs/mine --data new_rows.csv      # every row of the file (up to 200,000)",
            "flowforge evaluate runs/weather --dequantize none      # grid columns as recorded, no noise",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file)")
    p.add_argument("--data", help="built-in name or file (default: the run's own data set)")
    p.add_argument("--split", choices=SPLITS, default="test", help="split of a built-in data set (default: test)")
    p.add_argument("--dequantize", choices=["run", "none"], default="run",
                   help="grid-recorded table columns: add the noise the run was trained with (run, default) or "
                        "score the values as recorded (none)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {nll, bits_per_dim, discrete_nll_bound, n}")
    add_device_arg(p)
    p.set_defaults(run=run)


def evaluation_rows(meta: dict, data: str | None, split: str) -> tuple[Dataset, str]:
    """The data set and the split to score: a file contributes every row."""
    if data is not None and data not in available_datasets():
        options = data_options(meta, same_data=False)
        options["dequantize"] = meta.get("data", {}).get("dequantize", "none")  # the run's rule, not a new one
        dataset = load_dataset(data, val_fraction=0.0, test_fraction=0.0, **options)
        return dataset, "train"
    return run_dataset(meta, data), split


def run(args) -> int:
    flow, meta = load_run(args.run_dir, args.device)
    if args.dequantize == "none" and "dequantize" in meta.get("data", {}):
        meta = {**meta, "data": {**meta["data"], "dequantize": "none"}}
    dataset, split = evaluation_rows(meta, args.data, args.split)
    x = dataset.split(split)
    if tuple(x.shape[1:]) != tuple(flow.event_shape) and x[0].numel() != flow.event_shape.numel():
        raise CLIError(
            f"data {dataset.name} has examples of shape {tuple(x.shape[1:])}, "
            f"the checkpoint's model expects {tuple(flow.event_shape)}"
        )
    if flow.context_dim and dataset.context[split] is None:
        raise CLIError(f"this flow is conditional (context width {flow.context_dim}); the data have no context")
    result = evaluate_nll(flow, x, dataset, dataset.context[split], noise_draws=5)
    if args.json:
        print(json.dumps(result))
    else:
        bpd = "" if result["bits_per_dim"] is None else f", {result['bits_per_dim']:.4f} bits/dim"
        if result["discrete_nll_bound"] is not None:
            bpd += f" (dequantized; the recorded grid values: at most {result['discrete_nll_bound']:.4f})"
        print(f"{dataset.name} [{split}]: NLL {result['nll']:.4f} nats per example{bpd} (n={result['n']})")
    return 0
