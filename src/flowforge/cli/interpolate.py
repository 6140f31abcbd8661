"""``flowforge interpolate``: latent interpolation between pairs of test images."""
from __future__ import annotations

import argparse

import torch

from ..inference.latent import INTERPOLATIONS, interpolate
from .common import examples, positive_int
from .image_common import add_image_args, load_image_run


def add_parser(sub) -> None:
    p = sub.add_parser(
        "interpolate",
        help="decode latent interpolations between pairs of images of an image flow",
        description="Encode pairs of images (bin centres of the pixel values), walk from one latent to the "
        "other and decode each point: one strip per pair, endpoints included, in OUT/interpolation.png.",
        epilog=examples(
            "flowforge interpolate runs/digits-glow",
            "flowforge interpolate runs/digits-glow --pairs 6 --steps 10 --mode ellipse --out pictures/",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_args(p)
    p.add_argument("--pairs", type=positive_int, default=5, help="number of image pairs (default: 5)")
    p.add_argument("--steps", type=int, default=8, help="images per strip, endpoints included (default: 8)")
    p.add_argument("--mode", choices=INTERPOLATIONS, default="linear",
                   help="linear, or ellipse: cos/sin weights that keep the latent norm (default: linear)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..viz.images import plot_interpolations  # matplotlib only when drawing

    run_ = load_image_run(args, "interpolate")
    x = run_.images(args.split)
    n = min(2 * args.pairs, x.shape[0] - x.shape[0] % 2)
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))[:n]
    x = x[order.to(x.device)]
    strips = interpolate(run_.flow, x[0::2], x[1::2], steps=args.steps, mode=args.mode)
    path = plot_interpolations(strips, run_.out / "interpolation.png", run_.levels)
    print(f"wrote {strips.shape[0]} interpolation strips of {args.steps} images ({args.mode}) to {path}")
    return 0
