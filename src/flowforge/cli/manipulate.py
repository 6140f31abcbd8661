"""``flowforge manipulate``: Glow's attribute manipulation, with class labels as the attribute."""
from __future__ import annotations

import argparse
import json

from ..inference.latent import attribute_direction, manipulate
from .common import CLIError, examples, positive_int, write_json
from .image_common import add_image_args, load_image_run


def _strengths(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    return values


def add_parser(sub) -> None:
    p = sub.add_parser(
        "manipulate",
        help="move images along the latent direction from one class to another",
        description="d = mean latent of class B - mean latent of class A (training images); test images of "
        "class A are encoded, moved by s * d for each strength s and decoded: one row per image, one column "
        "per strength, in OUT/manipulation.png (and the numbers in OUT/manipulation.json).",
        epilog=examples(
            "flowforge manipulate runs/digits-glow                      # class 0 -> class 1",
            "flowforge manipulate runs/digits-glow --from-class 3 --to-class 8 --strengths 0,0.5,1,1.5",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_args(p)
    p.add_argument("--from-class", type=int, help="label A of the images moved (default: the smallest label)")
    p.add_argument("--to-class", type=int, help="label B they move towards (default: the next label)")
    p.add_argument("--strengths", type=_strengths, default=[-0.5, 0.0, 0.5, 1.0, 1.5],
                   help="comma-separated strengths s (default: -0.5,0,0.5,1,1.5)")
    p.add_argument("-n", "--num", type=positive_int, default=6, help="images to move (default: 6)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..viz.images import plot_manipulation  # matplotlib only when drawing

    run_ = load_image_run(args, "manipulate")
    labels = {s: run_.dataset.labels[s] for s in ("train", args.split)}
    if any(v is None for v in labels.values()):
        raise CLIError(f"{run_.dataset.name} has no labels; manipulate uses labels as the attribute")
    present = sorted(set(labels["train"].tolist()))
    if len(present) < 2:
        raise CLIError(f"manipulate needs two classes; the training labels are {present}")
    source = present[0] if args.from_class is None else args.from_class
    target = next(c for c in present if c != source) if args.to_class is None else args.to_class
    for name, c in (("--from-class", source), ("--to-class", target)):
        if c not in present:
            raise CLIError(f"{name} {c}: no training images with that label; labels are {present}")
    if source == target:
        raise CLIError(f"--from-class and --to-class are both {source}; pick two different labels")
    x_train = run_.images("train")
    direction = attribute_direction(run_.flow, x_train, labels["train"].to(x_train.device), source, target)
    x = run_.images(args.split)[labels[args.split].to(x_train.device) == source][: args.num]
    if x.shape[0] == 0:
        raise CLIError(f"no {args.split} images with label {source}")
    moved = manipulate(run_.flow, x, direction, args.strengths)
    title = f"class {source} -> class {target}: z + s * (mean z[{target}] - mean z[{source}])"
    path = plot_manipulation(moved, args.strengths, run_.out / "manipulation.png", run_.levels, title)
    record = {"from_class": source, "to_class": target, "strengths": args.strengths, "images": int(x.shape[0]),
              "direction_norm": float(direction.norm()), "split": args.split}
    write_json(run_.out / "manipulation.json", record)
    print(f"wrote {path} ({json.dumps(record)})")
    return 0
