"""Image flows on digits (issue 3): bits/dim, ms/step, peak memory; Glow's ablation.

1. nice, realnvp and glow with their ``flowforge train --data digits`` recipes,
   all under one fixed budget (``--steps`` optimizer steps, batch 64, lr 1e-3,
   validation every 100 steps, the best-validation weights scored on the test
   split with 5 dequantization draws): test bits/dim, median ms per step,
   peak resident memory of the process, parameters.
2. Glow ablation (Glow, Sec. 5.1 / Fig. 3): additive vs affine coupling, each
   with reverse vs random permutation vs LU 1x1 convolution, same budget.
   Glow reports the ordering 1x1 conv <= random <= reverse in NLL.
3. Throughput of a CIFAR-10-sized Glow (3x32x32, 3 scales x 8 steps, 256
   hidden channels) on random data: training images/s and sampling images/s,
   on CUDA when available (else a short CPU measurement).

Each configuration runs in its own process (so peak memory is its own) with
``--threads`` intra-op threads (default 1: on a shared 2-core machine more
threads make small convolutions slower, not faster). Timings are noisy when
other work runs on the machine.

Usage: python benchmarks/images.py [--steps 1000] [--threads 1] [--skip-ablation] [--skip-throughput]
Writes benchmarks/results/images.json and images.md (markdown tables).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

MODELS = {"nice": {}, "realnvp": {}, "glow": {}}
ABLATION = [
    {"coupling": c, "permutation": p} for c in ("additive", "affine") for p in ("reverse", "random", "lu")
]


def worker(spec: dict) -> dict:
    """Train one configuration on digits and report its numbers (runs in a child process)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from flowforge.data import load_dataset
    from flowforge.training import TrainConfig, fit
    from flowforge.training.recipes import build_for_data, recipe

    data = load_dataset("digits")
    torch.manual_seed(0)
    flow = build_for_data(spec["model"], data, **spec["options"])
    base = recipe(spec["model"], "image")["train"]
    config = TrainConfig(**{**base, "steps": spec["steps"], "patience": None, "progress": False, "seed": 0})
    out = Path(spec["out"])
    result = fit(flow, data, config, out=out)  # ends holding the best-validation weights
    s = result.summary
    return {
        "model": spec["model"],
        "options": spec["options"],
        "config": flow.config,
        "parameters": s["parameters"],
        "steps": s["steps"],
        "best_step": s["best_step"],
        "ms_per_step": s["ms_per_step_median"],
        "wall_s": s["wall_time_s"],
        "train_bpd_final": result.history[-1]["train_loss"] / (64 * math.log(2)),
        "best_val_bpd": min(r["val_bits_per_dim"] for r in result.history),
        "test_bpd": s["test_bits_per_dim"],  # best-validation weights, 5 dequantization draws
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def throughput(spec: dict) -> dict:
    """Images/s of a CIFAR-sized Glow on random data (child process)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from flowforge.models import build

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = 64 if device.type == "cuda" else 8
    steps = 20 if device.type == "cuda" else 3
    torch.manual_seed(0)
    flow = build("glow", shape=[3, 32, 32], scales=3, layers=8, hidden=256,
                 preprocess=[{"type": "logit", "levels": 256}]).to(device)
    x = torch.randint(0, 256, (batch, 3, 32, 32), device=device).float() + torch.rand(batch, 3, 32, 32, device=device)
    flow.transform.initialize(x)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        opt.zero_grad(set_to_none=True)
        (-flow.log_prob(x).mean()).backward()
        opt.step()

    train_step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    train_ips = batch * steps / (time.perf_counter() - t0)
    flow.eval()
    with torch.no_grad():
        flow.sample(batch)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            flow.sample(batch)
        sync()
        sample_ips = batch * steps / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "batch": batch,
            "parameters": sum(p.numel() for p in flow.parameters()), "train_images_per_s": train_ips,
            "sample_images_per_s": sample_ips, "peak_cuda_mib": peak}


def run_child(kind: str, spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, f"--{kind}", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {spec} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps per configuration")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads per configuration")
    p.add_argument("--skip-ablation", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--throughput", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.throughput:
        print(json.dumps(throughput(json.loads(args.throughput))))
        return 0

    import tempfile

    RESULTS.mkdir(exist_ok=True)
    record: dict = {"steps": args.steps, "threads": args.threads, "models": [], "ablation": [], "throughput": None}
    lines = [f"# Image flows on digits ({args.steps} steps, batch 64, lr 1e-3, best-validation weights; "
             f"{args.threads} thread(s); timings noisy on a shared machine)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        common = {"steps": args.steps, "threads": args.threads}
        lines += ["| model | parameters | test bits/dim | best val bits/dim (step) | ms/step | peak RSS MiB |",
                  "|---|---|---|---|---|---|"]
        for name, options in MODELS.items():
            r = run_child("worker", {**common, "model": name, "options": options, "out": f"{tmp}/{name}"})
            record["models"].append(r)
            label = ", ".join(f"{k}={v}" for k, v in r["config"].items() if k not in ("name", "shape", "preprocess"))
            lines.append(f"| {name} {label} | {r['parameters']} | {fmt(r['test_bpd'])} | "
                         f"{fmt(r['best_val_bpd'])} ({r['best_step']}) | {fmt(r['ms_per_step'], 1)} | "
                         f"{fmt(r['peak_rss_mib'], 0)} |")
            print(lines[-1], flush=True)
        if not args.skip_ablation:
            lines += ["", "Glow ablation (default Glow otherwise):", "",
                      "| coupling | permutation | test bits/dim | best val bits/dim (step) "
                      "| train bits/dim at the end | ms/step |",
                      "|---|---|---|---|---|---|"]
            for options in ABLATION:
                tag = f"{options['coupling']}-{options['permutation']}"
                r = run_child("worker", {**common, "model": "glow", "options": options, "out": f"{tmp}/{tag}"})
                record["ablation"].append(r)
                lines.append(f"| {options['coupling']} | {options['permutation']} | {fmt(r['test_bpd'])} | "
                             f"{fmt(r['best_val_bpd'])} ({r['best_step']}) | {fmt(r['train_bpd_final'])} | "
                             f"{fmt(r['ms_per_step'], 1)} |")
                print(lines[-1], flush=True)
    if not args.skip_throughput:
        r = run_child("throughput", {"threads": args.threads})
        record["throughput"] = r
        lines += ["", f"CIFAR-10-sized Glow (3x32x32, 3 scales x 8 steps, hidden 256, {r['parameters']} parameters) "
                  f"on random data, {r['device']}, batch {r['batch']}: "
                  f"{r['train_images_per_s']:.1f} training images/s, "
                  f"{r['sample_images_per_s']:.1f} sampled images/s"
                  + (f", peak {r['peak_cuda_mib']:.0f} MiB" if r["peak_cuda_mib"] else "")]
        print(lines[-1], flush=True)
    (RESULTS / "images.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "images.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
