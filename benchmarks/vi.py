"""Variational-inference figures (issue 5).

1. Reverse KL to every built-in target with an IAF (8 layers, MADE 2 x 64; one
   run per target, seed 0; 4000 steps, beta annealed over the first 1000):
   |log Z estimate - true log Z| (goal < 0.05), its standard error, and the
   ESS fraction (goal > 0.5 on U1-U3), from 100k importance samples.
2. VAE on digits (binarized, Bernoulli decoder): IAF posterior vs diagonal
   Gaussian posterior at an equal decoder, over 3 seeds; test ELBO and
   importance-weighted test log-likelihood (k = 1000), nats per example.
   The improvement is "outside noise" when every paired difference is
   positive and its mean exceeds twice the standard error of the differences.

Usage: python benchmarks/vi.py [--quick] [--threads N] [--part vi|vae|both]
Writes benchmarks/results/vi.json (vi_quick.json with --quick) and prints markdown
tables. CPU, float32. About 15-25 min on 1 thread of a shared 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

import flowforge as ff
from flowforge.inference import VAE, available_targets, fit_target, fit_vae, make_target

RESULTS = Path(__file__).resolve().parent / "results"
#: one setting for every target (the defaults of `flowforge fit-target`)
IAF = {"layers": 8, "hidden": 64}
VI = {"steps": 4000, "batch_size": 256, "lr": 1e-3, "anneal": 1000, "eval_samples": 100_000}
#: the defaults of `flowforge vae`; Bernoulli decoder on digits binarized at 8/16
VAE_CONFIG = {"latent": 8, "hidden": 256, "decoder": "bernoulli", "flow_layers": 4}
VAE_TRAIN = {"steps": 3000, "batch_size": 100, "lr": 1e-3}
K = 1000


def bench_targets(quick: bool) -> list[dict]:
    config = {**VI, "steps": 100, "anneal": 50, "eval_samples": 10_000} if quick else VI
    rows = []
    for name in available_targets():
        torch.manual_seed(0)
        flow = ff.models.build("iaf", dim=2, **IAF)
        t0 = time.perf_counter()
        r = fit_target(flow, make_target(name), seed=0, **config)
        row = {"target": name, "model": "iaf", "log_z": r.log_z, "true_log_z": r.true_log_z,
               "abs_error": abs(r.log_z - r.true_log_z), "log_z_stderr": r.log_z_stderr,
               "ess_fraction": r.ess_fraction, "elbo": r.elbo, "wall_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"  {name}: |err| {row['abs_error']:.4f}  ESS {row['ess_fraction']:.3f}  ({row['wall_s']:.0f} s)",
              flush=True)
    return rows


def bench_vae(quick: bool, seeds: int = 3) -> dict:
    data = ff.data.load_dataset("digits")
    train = {**VAE_TRAIN, "steps": 50} if quick else VAE_TRAIN
    k = 20 if quick else K
    runs: dict[str, list[dict]] = {"diag": [], "iaf": []}
    for seed in range(seeds):
        for posterior in runs:
            torch.manual_seed(seed)
            vae = VAE(64, levels=data.levels, posterior=posterior, **VAE_CONFIG)
            t0 = time.perf_counter()
            fit_vae(vae, data, seed=seed, k=1, **train)
            torch.manual_seed(1000 + seed)
            test = vae.evaluate(data.test, k=k)
            runs[posterior].append({"seed": seed, "test_elbo": test["elbo"], "test_iw_loglik": test["iw_loglik"],
                                    "wall_s": time.perf_counter() - t0})
            print(f"  seed {seed} {posterior}: ELBO {test['elbo']:.3f}  IW(k={k}) {test['iw_loglik']:.3f} "
                  f"({runs[posterior][-1]['wall_s']:.0f} s)", flush=True)
    diffs = [b["test_iw_loglik"] - a["test_iw_loglik"] for a, b in zip(runs["diag"], runs["iaf"], strict=True)]
    mean = statistics.mean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.inf
    return {"k": k, "config": {**VAE_CONFIG, **train}, "runs": runs, "iw_improvement": diffs,
            "iw_improvement_mean": mean, "iw_improvement_se": se,
            "outside_noise": all(d > 0 for d in diffs) and mean > 2 * se}


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke run, numbers meaningless)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--part", choices=["vi", "vae", "both"], default="both")
    args, _ = parser.parse_known_args()  # `benchmarks/run.py -- ...` passes the same extras to every script
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out: dict = {"threads": args.threads, "quick": args.quick, "vi_config": {**VI, "model": {"name": "iaf", **IAF}}}
    if args.part in ("vi", "both"):
        print("== reverse KL to built-in targets (IAF)", flush=True)
        out["targets"] = bench_targets(args.quick)
    if args.part in ("vae", "both"):
        print("== VAE on digits: diagonal vs IAF posterior", flush=True)
        out["vae"] = bench_vae(args.quick)
    out["wall_s"] = time.perf_counter() - t0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("vi_quick.json" if args.quick else "vi.json")).write_text(json.dumps(out, indent=2) + "\n")

    if "targets" in out:
        print("\n| target | true log Z | log Z est. ± s.e. | abs. error | ESS fraction |")
        print("|---|---|---|---|---|")
        for r in out["targets"]:
            print(f"| {r['target']} | {r['true_log_z']:.4f} | {r['log_z']:.4f} ± {r['log_z_stderr']:.4f} "
                  f"| {r['abs_error']:.4f} | {r['ess_fraction']:.3f} |")
    if "vae" in out:
        v = out["vae"]
        print(f"\n| posterior | test ELBO (nats) | test IW log-lik, k={v['k']} (nats) |")
        print("|---|---|---|")
        for posterior, runs in v["runs"].items():
            print(f"| {posterior} | {_mean_std([r['test_elbo'] for r in runs])} "
                  f"| {_mean_std([r['test_iw_loglik'] for r in runs])} |")
        print(f"\nIAF - diag, IW log-lik per seed: {', '.join(f'{d:+.3f}' for d in v['iw_improvement'])}; "
              f"mean {v['iw_improvement_mean']:+.3f} ± {v['iw_improvement_se']:.3f} (s.e.); "
              f"outside noise: {v['outside_noise']}")
    print(f"\ntotal {out['wall_s'] / 60:.1f} min ({args.threads} thread(s); shared machine, timings noisy)")


if __name__ == "__main__":
    main()
