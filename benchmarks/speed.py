"""Training step time at the shared harness's sizes, and the opt-in compile path (issue 12).

1. ms/step of one harness-style step (``zero_grad``, ``-log_prob(x).mean()``,
   ``backward``, default Adam over ``module.parameters()``) on random data of
   each task's shape: moons (2-D Real NVP, full batch 3000), weather-realnvp
   (D = 6, batch 512), weather-maf (D = 6, batch 512), digits-maf (D = 64,
   batch 128). With the shared harness next door (``../shared/bench``) and the
   peers importable, the peers' models are timed in the same process, steps
   interleaved, so every row sees the same machine: compare ratios, not
   absolute times, on a shared machine.
2. With ``--compile``: ``fit`` with ``TrainConfig(compile=False)`` and
   ``compile=True`` on the same data: median ms/step and the compile time.

Usage: python benchmarks/speed.py [--libs zuko,nflows,FrEIA] [--steps 60] [--compile] [--bench DIR]
(run the peers with their venv, e.g. ``PYTHONPATH=src /tmp/peers-venv/bin/python benchmarks/speed.py``).
Writes benchmarks/results/speed.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import flowforge as ff
from flowforge.data import Dataset
from flowforge.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
#: task -> (model, options, batch)
TASKS = {
    "moons": ("realnvp", {"dim": 2, "layers": 6, "hidden": 128}, 3000),
    "weather-realnvp": ("realnvp", {"dim": 6, "layers": 6, "hidden": 128}, 512),
    "weather-maf": ("maf", {"dim": 6, "layers": 5, "hidden": 128}, 512),
    "digits-maf": ("maf", {"dim": 64, "layers": 5, "hidden": 256}, 128),
}


class Stepper:
    """One library's model with the harness's training step."""

    def __init__(self, name: str, module: torch.nn.Module, log_prob):
        self.name, self.module, self.log_prob = name, module, log_prob
        self.optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step(self, x: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        (-self.log_prob(x).mean()).backward()
        self.optimizer.step()


def peers(task: str, libs: list[str], bench: Path) -> list[Stepper]:
    """The shared harness's adapters for ``libs`` (skipped when the harness or a library is missing)."""
    if not libs or not (bench / "common.py").exists():
        return []
    sys.path.insert(0, str(bench))
    import common
    from adapters import Unsupported, discover

    model, options, _ = TASKS[task]
    spec = (common.RealNVPSpec(dim=options["dim"]) if model == "realnvp" else
            common.MAFSpec(dim=options["dim"], n_layers=options["layers"], hidden=options["hidden"]))
    out, adapters = [], discover()
    for lib in libs:
        adapter = adapters[lib]()
        try:
            adapter.check_available()
            torch.manual_seed(0)
            adapter.build(spec)
        except (ImportError, Unsupported) as err:
            print(f"  {task}: {lib} skipped ({type(err).__name__}: {err})")
            continue
        out.append(Stepper(lib, adapter.module, adapter.log_prob))
    return out


def step_times(task: str, libs: list[str], steps: int, bench: Path) -> dict[str, float]:
    model, options, batch = TASKS[task]
    torch.manual_seed(0)
    flow = ff.models.build(model, **options)
    runs = [Stepper("flowforge", flow, flow.log_prob), *peers(task, libs, bench)]
    x = torch.randn(batch, options["dim"])
    for run in runs:
        for _ in range(10):
            run.step(x)
    times: dict[str, list[float]] = {run.name: [] for run in runs}
    for _ in range(steps):  # interleaved: every library sees the same machine state
        for run in runs:
            t0 = time.perf_counter()
            run.step(x)
            times[run.name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def compile_figures(task: str, steps: int) -> dict[str, dict]:
    model, options, batch = TASKS[task]
    g = torch.Generator().manual_seed(0)
    rows = {split: torch.randn(n, options["dim"], generator=g) for split, n in (("train", 4 * batch), ("val", batch),
                                                                               ("test", batch))}
    data = Dataset(name=task, **rows)
    out = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        flow = ff.models.build(model, **options)
        cfg = TrainConfig(steps=steps, batch_size=batch, eval_every=steps, progress=False, compile=compiled)
        s = fit(flow, data, cfg).summary
        out["compiled" if compiled else "eager"] = {"ms_per_step_median": s["ms_per_step_median"],
                                                    "compile_s": s["compile_s"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list (default: all)")
    parser.add_argument("--libs", default="zuko,nflows,FrEIA", help="peers to time alongside (default: %(default)s)")
    parser.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench",
                        help="the shared harness folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per library (default: 60)")
    parser.add_argument("--compile", action="store_true", help="also time fit() with compile=True vs eager")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1, as the harness)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed.json",
                        help="JSON results (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    libs = [lib for lib in args.libs.split(",") if lib]
    result: dict = {"torch": torch.__version__, "threads": args.threads, "tasks": {}}
    for task in args.tasks.split(","):
        row = {"ms_per_step": step_times(task, libs, args.steps, args.bench)}
        peers_ms = [v for k, v in row["ms_per_step"].items() if k != "flowforge"]
        if peers_ms:
            row["ratio_to_fastest_peer"] = row["ms_per_step"]["flowforge"] / min(peers_ms)
        if args.compile:
            row["compile"] = compile_figures(task, args.steps)
        result["tasks"][task] = row
        print(task, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
