"""``flowforge inpaint``: fill in masked test images by gradient ascent on log p (NICE)."""
from __future__ import annotations

import argparse

import torch

from ..inference.inpaint import MASKS, inpaint, inpainting_mask
from ..training.metrics import bits_per_dim
from .common import examples, positive_float, positive_int, write_json
from .image_common import add_image_args, load_image_run


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inpaint",
        help="complete masked images by projected gradient ascent on the flow's log-likelihood",
        description="NICE's inpainting: the known pixels of test images are clamped, the missing ones start "
        "from uniform noise and climb log p by projected stochastic gradient ascent. Writes "
        "OUT/inpainting.png (original, before, after) and OUT/inpainting.json (log p before and after).",
        epilog=examples(
            "flowforge inpaint runs/digits-nice                     # bottom half missing",
            "flowforge inpaint runs/digits-nice --mask centre --steps 1000 --noise 0 --out pictures/",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_args(p)
    p.add_argument("--mask", choices=MASKS, default="bottom", help="which pixels are missing (default: bottom half)")
    p.add_argument("-n", "--num", type=positive_int, default=8, help="images to inpaint (default: 8)")
    p.add_argument("--steps", type=int, default=500, help="gradient steps (default: 500)")
    p.add_argument("--step-size", type=positive_float, default=0.01,
                   help="initial step size, pixel range scaled to [0, 1] (default: 0.01)")
    p.add_argument("--noise", type=float, default=1.0,
                   help="scale of the gradient noise; 0 = plain ascent (default: 1)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..viz.images import plot_inpainting  # matplotlib only when drawing

    run_ = load_image_run(args, "inpaint")
    x = run_.images(args.split)[: args.num]
    known = inpainting_mask(tuple(x.shape[1:]), args.mask, seed=args.seed).to(x.device)
    gen = torch.Generator().manual_seed(args.seed)
    result = inpaint(run_.flow, x, known, 0.0, float(run_.levels), steps=args.steps, step_size=args.step_size,
                     noise=args.noise, generator=gen)
    with torch.no_grad():
        log_prob_original = run_.flow.log_prob(x)
    path = plot_inpainting(x, result.start, result.images, run_.out / "inpainting.png", run_.levels,
                           result.log_prob_start, result.log_prob_end)
    dims = x[0].numel()
    record = {
        "mask": args.mask,
        "images": int(x.shape[0]),
        "missing_pixels_per_image": int((~known).sum()),
        "log_prob_before": float(result.log_prob_start.mean()),
        "log_prob_after": float(result.log_prob_end.mean()),
        "log_prob_original": float(log_prob_original.mean()),
        "bits_per_dim_before": bits_per_dim(-float(result.log_prob_start.mean()), dims),
        "bits_per_dim_after": bits_per_dim(-float(result.log_prob_end.mean()), dims),
        "trace": result.trace,
    }
    write_json(run_.out / "inpainting.json", record)
    print(
        f"inpainted {record['images']} images ({args.mask} missing): mean log p {record['log_prob_before']:.2f} -> "
        f"{record['log_prob_after']:.2f} nats (original {record['log_prob_original']:.2f}); wrote {path}"
    )
    return 0
