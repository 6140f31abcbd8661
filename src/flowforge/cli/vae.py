"""``flowforge vae``: a VAE with a diagonal or IAF posterior and a normal or MAF prior."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from ..data import load_dataset
from ..inference.vae import VAE, fit_vae
from .common import CLIError, add_device_arg, examples, positive_float, positive_int, resolve_device, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "vae",
        help="train a VAE with an IAF posterior and/or a MAF prior on quantized images",
        description="Train a variational auto-encoder on quantized images (e.g. digits) and report the test ELBO "
        "and the importance-weighted log-likelihood bound with k samples, in nats per example. Writes "
        "OUT/summary.json (test_elbo, test_iw_loglik, k) and OUT/vae.png (reconstructions and samples).",
        epilog=examples(
            "flowforge vae --data digits --posterior iaf --out runs/vae-iaf",
            "flowforge vae --data digits --posterior diag --prior maf --out runs/vae-maf-prior",
            "flowforge vae --data digits --posterior iaf --decoder logistic --k 5000 --out runs/vae-17-levels",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="digits", help="quantized image data set (default: digits)")
    p.add_argument("--posterior", choices=["diag", "iaf"], default="iaf", help="q(z|x) (default: iaf)")
    p.add_argument("--prior", choices=["normal", "maf"], default="normal", help="p(z) (default: normal)")
    p.add_argument("--decoder", choices=["bernoulli", "logistic"], default="bernoulli",
                   help="p(x|z): Bernoulli on pixels binarized at half range (default), or a discretized "
                   "logistic on the pixel levels")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--latent", type=positive_int, default=8, help="latent dimension (default: 8)")
    p.add_argument("--hidden", type=positive_int, default=256, help="encoder/decoder width (default: 256)")
    p.add_argument("--flow-layers", type=positive_int, default=4, help="IAF steps / MAF layers (default: 4)")
    p.add_argument("--steps", type=positive_int, default=3000, help="optimizer steps (default: 3000)")
    p.add_argument("--batch-size", type=positive_int, default=100, help="examples per step (default: 100)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="initial Adam learning rate, cosine decay")
    p.add_argument("--k", type=positive_int, default=1000, help="importance samples per test example (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches and samples (default: 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the picture")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    dataset = load_dataset(args.data)
    if dataset.levels is None:
        raise CLIError(f"the VAE models quantized data; {dataset.name!r} is continuous (no pixel levels)")
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    vae = VAE(
        math.prod(dataset.event_shape), levels=dataset.levels, latent=args.latent, hidden=args.hidden,
        posterior=args.posterior, prior=args.prior, decoder=args.decoder, flow_layers=args.flow_layers,
    ).to(device)
    start = time.perf_counter()
    losses = fit_vae(vae, dataset.train.to(device), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     seed=args.seed, progress=not args.quiet)
    test = vae.evaluate(dataset.test.to(device), k=args.k)
    summary = {
        "test_elbo": test["elbo"],
        "test_iw_loglik": test["iw_loglik"],
        "k": args.k,
        "unit": "nats per example",
        "data": dataset.name,
        "n_test": int(dataset.test.shape[0]),
        "vae": vae.config,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "final_train_loss": sum(losses[-100:]) / max(len(losses[-100:]), 1),
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "summary.json", summary)
    if not args.no_plots:
        from ..viz.vi import plot_vae

        x = dataset.test[:10].to(device)
        plot_vae(vae.observed(x), vae.reconstruct(x), vae.sample(40), args.out / "vae.png", dataset.levels,
                 image_shape=dataset.event_shape[-2:])
    print(
        f"VAE ({args.posterior} posterior, {args.prior} prior, {args.decoder} decoder) on {dataset.name}: "
        f"test ELBO {test['elbo']:.3f}, test IW log-likelihood (k={args.k}) {test['iw_loglik']:.3f} nats; "
        f"folder {args.out}",
        file=sys.stdout,
    )
    return 0
