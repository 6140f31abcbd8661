"""``flowforge vae``: a VAE with a diagonal or IAF posterior and a normal or MAF prior."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from ..data import load_dataset
from ..inference.vae import VAE, fit_vae
from ..training.run import Run
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


def add_parser(sub) -> None:
    p = sub.add_parser(
        "vae",
        help="train a VAE with an IAF posterior and/or a MAF prior on quantized images",
        description="Train a variational auto-encoder on quantized images (e.g. digits) and report the test ELBO "
        "and the importance-weighted log-likelihood bound with k samples, in nats per example. OUT is a run "
        "folder: model.safetensors (best validation ELBO; flowforge.load rebuilds the VAE), last.safetensors "
        "(--resume), metrics.csv, summary.json (test_elbo, test_iw_loglik, k) and vae.png (reconstructions "
        "and samples).",
        epilog=examples(
            "flowforge vae --data digits --posterior iaf --out runs/vae-iaf",
            "flowforge vae --data digits --posterior diag --prior maf --out runs/vae-maf-prior",
            "flowforge vae --data digits --posterior iaf --decoder logistic --k 5000 --out runs/vae-17-levels",
            "flowforge vae --resume runs/vae-iaf                  # continue a run",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="digits", help="quantized image data set (default: digits)")
    p.add_argument("--posterior", choices=["diag", "iaf"], default="iaf", help="q(z|x) (default: iaf)")
    p.add_argument("--prior", choices=["normal", "maf"], default="normal", help="p(z) (default: normal)")
    p.add_argument("--decoder", choices=["bernoulli", "logistic"], default="bernoulli",
                   help="p(x|z): Bernoulli on pixels binarized at half range (default), or a discretized "
                   "logistic on the pixel levels")
    p.add_argument("--out", type=Path, help="run folder")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN from its last state")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
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
    if args.resume is not None:
        return _resume(args)
    if args.out is None:
        raise CLIError("give --out (or --resume RUN)")
    dataset = load_dataset(args.data)
    if dataset.levels is None:
        raise CLIError(f"the VAE models quantized data; {dataset.name!r} is continuous (no pixel levels)")
    torch.manual_seed(args.seed)
    vae = VAE(
        math.prod(dataset.event_shape), levels=dataset.levels, latent=args.latent, hidden=args.hidden,
        posterior=args.posterior, prior=args.prior, decoder=args.decoder, flow_layers=args.flow_layers,
    ).to(resolve_device(args.device))
    with new_run(args.out, args.overwrite) as run:
        result = fit_vae(vae, dataset, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         k=args.k, progress=not args.quiet, out=run)
        return _finish(args, run, vae, dataset, result.summary)


def _resume(args) -> int:
    run, meta = resumable_run(args.resume, "vae")
    dataset = load_dataset(meta["data"]["name"], **data_options(meta))
    vae = VAE.from_config(meta["model"]).to(resolve_device(args.device))
    config = meta["train_config"]
    with writing(run):
        result = fit_vae(vae, dataset, steps=config["steps"], batch_size=config["batch_size"], lr=config["lr"],
                         seed=config["seed"], k=meta["objective"]["k"], progress=not args.quiet, out=run, resume=True)
        return _finish(args, run, vae, dataset, result.summary)


def _finish(args, run: Run, vae: VAE, dataset, summary) -> int:
    if not args.no_plots:
        from ..viz.vi import plot_vae

        x = dataset.test[:10].to(next(vae.parameters()).device)
        plot_vae(vae.observed(x), vae.reconstruct(x), vae.sample(40), run / "vae.png", dataset.levels,
                 image_shape=dataset.event_shape[-2:])
    c = vae.config
    print(
        f"VAE ({c['posterior']} posterior, {c['prior']} prior, {c['decoder']} decoder) on {dataset.name}: "
        f"test ELBO {summary['test_elbo']:.3f}, test IW log-likelihood (k={summary['k']}) "
        f"{summary['test_iw_loglik']:.3f} nats; run folder {run.path}",
        file=sys.stdout,
    )
    return 0
