"""What `flowforge train` gives with its defaults (no model, no steps named), run as a user would,
through the command line, on 2 cores. Issue 10's figures:

* moons (the demo), seeds 0-4: test NLL in data units on the bench's 20k test points;
* 2-D densities known exactly (../shared/bench's 8 Gaussians and checkerboard): train.csv of
  50,000 points (seed 0), test.csv of 100,000 (seed 1); KL gap = test NLL - true entropy;
* the weather table in the harness's own split, training seeds 0-2 (train + validation rows given as one .npz with
  splits, test rows = the harness's): test NLL in standardized units, beside GaussianMixture and
  KernelDensity (../shared/bench/classical_baselines.py), and the wall time;
* a 50,000-row table (8 correlated, skewed columns, seed 0): wall time.

    python benchmarks/defaults.py [--only moons,known,weather,rows50k] [--weather-seeds 0,1,2] [--bench ../shared/bench]

Writes benchmarks/results/defaults.json (and prints a table).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "defaults.json"


def flowforge(*args: str) -> float:
    """Run the CLI; returns its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flowforge", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def evaluate(run: Path, data: Path) -> float:
    out = subprocess.run([sys.executable, "-m", "flowforge", "evaluate", str(run), "--data", str(data), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["nll"]


def moons(tmp: Path) -> dict:
    rows = {}
    for seed in range(5):
        run = tmp / f"moons-{seed}"
        wall = flowforge("train", "--seed", str(seed), "--out", str(run), "--quiet", "--no-plots")
        s = summary(run)
        rows[seed] = {"test_nll": s["test_nll"], "best_step": s["best_step"], "steps": s["steps"], "wall_s": wall}
        print(f"moons seed {seed}: test NLL {s['test_nll']:.4f} (best step {s['best_step']}), {wall:.0f} s", flush=True)
    return rows


def known(tmp: Path, bench: Path) -> dict:
    sys.path.insert(0, str(bench))
    import common  # the bench's samplers and exact log-densities

    rows = {}
    for name, target_cls in common.TARGETS.items():
        target = target_cls()
        train, test = tmp / f"{name}-train.csv", tmp / f"{name}-test.csv"
        for path, n, seed in ((train, 50_000, 0), (test, 100_000, 1)):
            np.savetxt(path, target.sample(n, np.random.RandomState(seed)), delimiter=",", header="x1,x2",
                       comments="", fmt="%.8f")
        entropy = common.target_entropy(target, 1_000_000)["entropy"]
        run = tmp / f"{name}-run"
        wall = flowforge("train", "--data", str(train), "--out", str(run), "--quiet", "--no-plots")
        nll = evaluate(run, test)
        rows[name] = {"test_nll": nll, "entropy": entropy, "kl_gap": nll - entropy, "wall_s": wall,
                      "best_step": summary(run)["best_step"], "steps": summary(run)["steps"]}
        print(f"{name}: KL gap {nll - entropy:.4f} nats (test NLL {nll:.4f}, entropy {entropy:.4f}), {wall:.0f} s",
              flush=True)
    return rows


def weather(tmp: Path, bench: Path, seeds: list[int]) -> dict:
    sys.path.insert(0, str(bench))
    import common

    d = common.weather_data(0)
    stats = d["stats"]
    raw = {k: common.weather_unstandardize(d[k], stats) for k in ("train", "val", "test")}
    table = tmp / "weather.npz"
    np.savez(table, train=raw["train"], val=raw["val"], test=raw["test"])
    rows = {}
    for seed in seeds:
        run = tmp / f"weather-run-{seed}"
        wall = flowforge("train", "--data", str(table), "--seed", str(seed), "--out", str(run), "--quiet",
                         "--no-plots")
        s = summary(run)
        std = s["test_nll"] - stats["sum_log_std"]
        rows[seed] = {"test_nll_data": s["test_nll"], "test_nll_std": std, "wall_s": wall, "steps": s["steps"],
                      "best_step": s["best_step"], "model": s["model"]}
        print(f"weather seed {seed}: test NLL {std:.3f} (standardized units), {wall:.0f} s", flush=True)
    return rows


def rows50k(tmp: Path) -> dict:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50_000, 8))
    mix = rng.standard_normal((8, 8))
    x = z @ mix
    x[:, :4] = np.sinh(x[:, :4])  # skewed, heavy-tailed columns
    x[:, 4] += np.where(rng.random(50_000) < 0.3, 4.0, 0.0)  # a bimodal one
    table = tmp / "rows50k.csv"
    np.savetxt(table, x, delimiter=",", header=",".join(f"c{i}" for i in range(8)), comments="", fmt="%.6f")
    run = tmp / "rows50k-run"
    wall = flowforge("train", "--data", str(table), "--out", str(run), "--quiet", "--no-plots")
    s = summary(run)
    print(f"50,000 x 8 table: {wall:.0f} s ({s['steps']} steps, test NLL {s['test_nll']:.3f})", flush=True)
    return {"wall_s": wall, "steps": s["steps"], "test_nll": s["test_nll"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="moons,known,weather,rows50k")
    p.add_argument("--bench", type=Path, default=HERE.parent.parent / "shared" / "bench")
    p.add_argument("--weather-seeds", default="0,1,2", help="training seeds of the weather runs")
    args = p.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.only.split(","):
            if name == "moons":
                results["moons"] = moons(tmp)
            elif name == "known":
                results["known"] = known(tmp, args.bench)
            elif name == "weather":
                seeds = [int(v) for v in args.weather_seeds.split(",")]
                runs = weather(tmp, args.bench, seeds)
                results.setdefault("weather", {}).update({str(k): v for k, v in runs.items()})
            elif name == "rows50k":
                results["rows50k"] = rows50k(tmp)
            else:
                raise SystemExit(f"unknown part {name!r}")
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
