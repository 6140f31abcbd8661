"""``flowforge export``: a run's ``log_prob`` as an ONNX or TorchScript file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..export import FORMATS, export
from .common import examples, load_run


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained flow's log_prob as ONNX or TorchScript",
        description="Write the run's log_prob as a standalone graph: input x, a float32 batch of data rows or "
        "images (plus context for a conditional flow); output log_prob, the log-density per row in nats. "
        "The batch size is free. ONNX needs the [onnx] extra.",
        epilog=examples(
            "flowforge export runs/moons --format onnx --out moons.onnx",
            "flowforge export runs/digits-glow --format torchscript --out glow.pt",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run folder (or checkpoint file)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="file format (default: onnx)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write")
    p.set_defaults(run=run)


def run(args) -> int:
    flow, _ = load_run(args.run_dir)
    path = export(flow, args.out, args.format)
    print(f"wrote {flow.config.get('name', 'flow')} log_prob as {args.format} to {path}")
    return 0
