"""GPU readiness and CIFAR-10-sized throughput (issue 12, item 3), in one script.

1. The transform contract kit on the device (``pytest tests/transforms --device cuda``),
   and ParallelMLP's piecewise path against its dense products there.
2. realnvp, maf and nsf (when registered) trained a few hundred steps on moons on
   the device with ``fit``; samples drawn; the best checkpoint reloaded on the CPU
   and back on the device, log_prob compared with the trained model's.
3. CIFAR-10-sized training on random 8-bit images (3x32x32): Glow at the paper's
   size (3 scales x 32 steps, 512 channels), and the spline-coupling image model
   when ``build("glow", coupling="spline")`` exists: images/s eager, with bf16
   autocast and compiled (``torch.compile``, compile time apart), peak memory
   (``torch.cuda.max_memory_allocated``), and test bits/dim after the same
   number of steps from the same start, fp32 vs bf16.

Results are written to the JSON path given as argument after every stage (a
stage that fails records its error and the script goes on). ``--smoke`` runs
tiny sizes on whatever device there is (CPU here) to check the script itself.

Usage: python benchmarks/gpu.py RESULT.json [--smoke] [--stages contract,vectors,images]
       [--modes eager,compiled,bf16]
Budget on one H100: about 6 minutes (the stages print their progress); the modes run in the
order given, each for every image model, so list the longest (``compiled``) where it may be cut.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

import flowforge as ff
from flowforge.data import Dataset, dequantize, load_dataset
from flowforge.models import available, fit_preprocessing
from flowforge.nets import ParallelMLP
from flowforge.training import TrainConfig, evaluate_nll, fit
from flowforge.training.model_input import model_input
from flowforge.training.recipes import build_for_data

ROOT = Path(__file__).resolve().parents[1]
FULL = {
    "contract_filter": None, "vector_steps": 300, "samples": 10_000,
    "image": {"shape": [3, 32, 32], "scales": 3, "layers": 32, "hidden": 512, "batch": 64, "images": 2048},
    "image_steps": 60, "compiled_steps": 20, "warmup": 5,
}
SMOKE = {
    "contract_filter": "2d-realnvp or made", "vector_steps": 20, "samples": 500,
    "image": {"shape": [3, 8, 8], "scales": 2, "layers": 2, "hidden": 16, "batch": 8, "images": 64},
    "image_steps": 6, "compiled_steps": 4, "warmup": 2,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def contract(device: torch.device, sizes: dict) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/transforms", "--device", device.type]
    if sizes["contract_filter"]:
        cmd += ["-k", sizes["contract_filter"]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return {"returncode": proc.returncode, "summary": tail, "wall_s": time.perf_counter() - t0,
            "failures": [line for line in proc.stdout.splitlines() if line.startswith("FAILED")][:20]}


def piecewise_vs_dense(device: torch.device) -> dict:
    """ParallelMLP on a scalar input: the piecewise path (batch >= 64) against its dense products, float64."""
    torch.manual_seed(0)
    net = ParallelMLP(1, 2, hidden=128).double().to(device)
    x = torch.randn(4096, 1, dtype=torch.float64, device=device) * 3
    with torch.no_grad():
        (w, b), *rest = net.layers()
        h = torch.baddbmm(b, x.unsqueeze(0).expand(2, *x.shape), w)
        for w, b in rest:
            h = torch.baddbmm(b, h.relu(), w)
        dense = h.transpose(0, 1).reshape(x.shape[0], -1)
        return {"max_abs_diff": float((net(x) - dense).abs().max())}


def vectors(device: torch.device, sizes: dict, tmp: Path) -> dict:
    moons = load_dataset("moons")
    models = [m for m in ("realnvp", "maf", "nsf") if m in available()]
    out = {}
    for name in models:
        log(f"vector: training {name} on moons, {sizes['vector_steps']} steps on {device}")
        torch.manual_seed(0)
        flow = build_for_data(name, moons)
        batch = None if name == "realnvp" else 512  # realnvp full batch: the piecewise path on the device
        cfg = TrainConfig(steps=sizes["vector_steps"], batch_size=batch, eval_every=100, progress=False,
                          device=str(device))
        run = tmp / name
        s = fit(flow, moons, cfg, out=run).summary
        with torch.no_grad():
            samples = flow.sample(sizes["samples"])
            x = moons.test[:2000].to(device)
            on_device = flow.log_prob(x)
            cpu = ff.load(run).eval()
            back = ff.load(run, map_location=str(device)).eval()
            diff_cpu = float((cpu.log_prob(x.cpu()) - on_device.cpu()).abs().max())
            diff_back = float((back.log_prob(x) - on_device).abs().max())
        out[name] = {
            "test_nll": s["test_nll"], "ms_per_step_median": s["ms_per_step_median"], "wall_s": s["wall_time_s"],
            "samples_finite": bool(samples.isfinite().all()), "samples_device": str(samples.device),
            "log_prob_max_abs_diff_checkpoint_on_cpu": diff_cpu,
            "log_prob_max_abs_diff_checkpoint_back_on_device": diff_back,
        }
        log(f"vector: {name} {out[name]}")
    return out


def random_images(sizes: dict) -> Dataset:
    g = torch.Generator().manual_seed(0)
    n, shape = sizes["image"]["images"], sizes["image"]["shape"]

    def split(k: int) -> torch.Tensor:
        return torch.randint(0, 256, (k, *shape), generator=g).float()

    return Dataset(name="random-cifar", train=split(n), val=split(n // 8), test=split(n // 8), kind="image",
                   levels=256)


def image_model(ds: Dataset, sizes: dict, **options) -> ff.Flow:
    torch.manual_seed(0)
    img = sizes["image"]
    flow = build_for_data("glow", ds, scales=img["scales"], layers=img["layers"], hidden=img["hidden"], **options)
    fit_preprocessing(flow, model_input(flow, ds.train))
    if flow.transform.is_data_dependent:
        flow.transform.initialize(dequantize(ds.train[: img["batch"]], torch.Generator().manual_seed(1)))
    return flow


def train_images(flow: ff.Flow, ds: Dataset, device: torch.device, sizes: dict, steps: int, mode: str) -> dict:
    """``steps`` Adam steps (lr 1e-3 after a linear warm-up over ``image_steps``) on random batches;
    mode ``eager``, ``bf16`` (autocast) or ``compiled``."""
    flow = flow.to(device).train()
    model = torch.compile(flow) if mode == "compiled" else flow
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3, fused=device.type == "cuda")
    batch, gen = sizes["image"]["batch"], torch.Generator().manual_seed(0)
    data = ds.train.to(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times, losses, first_s = [], [], None
    for step in range(steps):
        idx = torch.randint(0, data.shape[0], (batch,), generator=gen).to(device)
        x = dequantize(data[idx], gen)
        sync(device)
        t0 = time.perf_counter()
        for group in opt.param_groups:  # Glow's linear warm-up: a first full-size Adam step overflows at this depth
            group["lr"] = 1e-3 * min(1.0, (step + 1) / sizes["image_steps"])
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = -model(x).mean()
        loss.backward()
        opt.step()
        sync(device)
        elapsed = time.perf_counter() - t0
        if step == 0:
            first_s = elapsed
        elif step >= sizes["warmup"]:
            times.append(elapsed)
        losses.append(float(loss.detach()))
    median = sorted(times)[len(times) // 2] if times else float("nan")
    result = {
        "steps": steps, "batch": batch, "images_per_s": batch / median, "ms_per_step_median": 1000 * median,
        "first_step_s": first_s, "nonfinite_losses": sum(not math.isfinite(v) for v in losses),
        "last_loss": losses[-1],
    }
    if mode == "compiled":
        result["compile_s"] = first_s - median  # the first step compiles
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    flow.eval()
    result["test_bits_per_dim"] = evaluate_nll(flow, ds.test.to(device), ds, batch_size=256)["bits_per_dim"]
    return result


def images(device: torch.device, sizes: dict, modes: list[str], results: dict, write) -> None:
    ds = random_images(sizes)
    variants = {"glow": {}}
    try:
        ff.models.build("glow", shape=[3, 8, 8], scales=1, layers=1, hidden=4, coupling="spline")
        variants["glow-spline"] = {"coupling": "spline"}
    except (ValueError, TypeError) as err:
        results["images"]["glow-spline"] = {"skipped": f"build('glow', coupling='spline'): {err}"}
    starts = {}
    for name, options in variants.items():
        starts[name] = image_model(ds, sizes, **options)
        entry = results["images"].setdefault(name, {"config": {**sizes["image"], **options}})
        entry["parameters"] = sum(p.numel() for p in starts[name].parameters())
    for name, mode in [(name, mode) for mode in modes for name in variants]:
        entry = results["images"][name]
        steps = sizes["compiled_steps"] if mode == "compiled" else sizes["image_steps"]
        log(f"images: {name} {mode}, {steps} steps of {sizes['image']['batch']} on {device}")
        try:
            entry[mode] = train_images(copy.deepcopy(starts[name]), ds, device, sizes, steps, mode)
        except Exception as err:  # noqa: BLE001 (one failing mode must not lose the others)
            entry[mode] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
        log(f"images: {name} {mode} {entry[mode]}")
        write()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="where to write the JSON results")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (runs on the CPU too)")
    parser.add_argument("--stages", default="contract,vectors,images",
                        help="comma-separated: contract (with the piecewise check), vectors, images")
    parser.add_argument("--modes", default="eager,bf16,compiled", help="image training modes, in this order")
    args = parser.parse_args()
    stages_wanted, modes = args.stages.split(","), args.modes.split(",")
    unknown = sorted(set(stages_wanted) - {"contract", "vectors", "images"}) + sorted(
        set(modes) - {"eager", "bf16", "compiled"})
    if unknown:
        parser.error(f"unknown stage or mode: {', '.join(unknown)}")
    sizes = SMOKE if args.smoke else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True  # fixed image shapes: let cuDNN pick its fastest convolutions
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    results: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "torch": torch.__version__, "smoke": args.smoke, "images": {}}

    def write() -> None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        stages = [("contract", "contract", lambda: contract(device, sizes)),  # (--stages name, result key, run)
                  ("contract", "piecewise_vs_dense", lambda: piecewise_vs_dense(device)),
                  ("vectors", "vectors", lambda: vectors(device, sizes, Path(tmp)))]
        for name, stage in [(key, run) for group, key, run in stages if group in stages_wanted]:
            log(f"stage {name}")
            try:
                results[name] = stage()
            except Exception as err:  # noqa: BLE001 (record and go on)
                results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            log(f"{name}: {results[name]}")
            write()
    if "images" in stages_wanted:
        images(device, sizes, modes, results, write)
    results["wall_s"] = time.perf_counter() - t_start
    write()
    log(f"done in {results['wall_s']:.0f} s: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
