"""Foundation figures: Real NVP on two moons.

* training ms/step of the classic model (full batch 3000, float32) with 1 and
  2 threads, on the exact piecewise path (the default for a scalar conditioner
  input, see flowforge.nets.piecewise) and on the dense matrix-product path
  (forced here; what batches under 64 rows take), against the dense path's GEMM
  floor (36 products of 3000x128x128 per step);
* log_prob and sampling throughput on 100k points, both paths;
* wall time of `flowforge train` with no arguments (what `make demo` runs);
* with --peers: the shared side-by-side harness (../shared/bench) on the
  moons task with --threads 1, flowforge next to nflows, normflows, zuko, FrEIA.

Usage: python benchmarks/foundation.py [--peers] [--skip-demo]
Writes benchmarks/results/foundation.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import flowforge as ff
from flowforge.nets import mlp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@contextlib.contextmanager
def kernel(enabled: bool):
    """Run the block with ParallelMLP's piecewise path on, or forced off (dense products)."""
    threshold = mlp._PIECEWISE_MIN_BATCH
    if not enabled:
        mlp._PIECEWISE_MIN_BATCH = float("inf")
    try:
        yield
    finally:
        mlp._PIECEWISE_MIN_BATCH = threshold


def median_ms(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def moons_standardized() -> torch.Tensor:
    x = ff.data.load_dataset("moons").train
    return (x - x.mean(0)) / x.std(0)


def train_step_ms(threads: int, steps: int = 150) -> float:
    torch.set_num_threads(threads)
    x = moons_standardized()
    torch.manual_seed(0)
    flow = ff.models.build("realnvp", dim=2)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = -flow.log_prob(x).mean()
        loss.backward()
        opt.step()

    return median_ms(step, steps, warmup=20)


def gemm_floor_ms(threads: int) -> float:
    torch.set_num_threads(threads)
    a, w = torch.randn(3000, 128), torch.randn(128, 128)
    return 36 * median_ms(lambda: a @ w, 200, warmup=20)


def throughput(threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    flow = ff.models.build("realnvp", dim=2).eval()
    x = torch.randn(100_000, 2)
    with torch.no_grad():
        lp = median_ms(lambda: flow.log_prob(x), 5, warmup=1)
        sm = median_ms(lambda: flow.sample(100_000), 5, warmup=1)
    return {"log_prob_per_s": 1e5 / (lp / 1000), "samples_per_s": 1e5 / (sm / 1000)}


def demo_wall_s() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flowforge", "train", "--out", f"{tmp}/demo", "--quiet"], check=True)
        return time.perf_counter() - t0


def peers(out: Path) -> None:
    py = Path("/tmp/peers-venv/bin/python")
    if not py.exists():
        subprocess.run(["bash", str(ROOT.parent / "shared/bench/setup_venv.sh")], check=True)
    cmd = [str(py), str(ROOT.parent / "shared/bench/run_all.py"), "--tasks", "moons",
           "--libs", "reference,flowforge,nflows,normflows,zuko,FrEIA", "--threads", "1", "--out", str(out)]
    print("running:", " ".join(cmd), flush=True)
    # this checkout's flowforge on the path: the shared venv itself is left as it is
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", action="store_true", help="also run the shared side-by-side harness (~15 min)")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    result: dict = {"torch": torch.__version__, "machine": f"{torch.get_num_threads()} threads available"}
    for path, enabled in (("piecewise", True), ("dense", False)):
        with kernel(enabled):
            for threads in (1, 2):
                result[f"{path}_threads_{threads}"] = {
                    "train_ms_per_step": train_step_ms(threads),
                    "gemm_floor_ms": gemm_floor_ms(threads),
                    **throughput(threads),
                }
    if not args.skip_demo:
        result["demo_wall_s"] = demo_wall_s()
    (RESULTS / "foundation.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| path | threads | train ms/step (full batch 3000) | GEMM floor ms (dense path) | log_prob/s | samples/s |")
    print("|---|---|---|---|---|---|")
    for key, r in result.items():
        if key.endswith(("threads_1", "threads_2")):
            path, threads = key.split("_threads_")
            print(f"| {path} | {threads} | {r['train_ms_per_step']:.1f} | {r['gemm_floor_ms']:.1f} | "
                  f"{r['log_prob_per_s'] / 1e3:.0f}k | {r['samples_per_s'] / 1e3:.0f}k |")
    if "demo_wall_s" in result:
        print(f"`flowforge train` (the demo) wall time: {result['demo_wall_s']:.1f} s")
    if args.peers:
        peers(RESULTS / "peers-moons")


if __name__ == "__main__":
    main()
