"""One task of the shared harness (../shared/bench) for one library over several training seeds:
the harness's own protocol (``tasks.run_weather``: same split, batches, lr, evaluation), with its
``SEED`` (model init and batch order) set to each seed in turn. Run with the peers' venv:

    /tmp/peers-venv/bin/python benchmarks/harness_seeds.py flowforge 0,1,2 [--task weather-nsf]

Prints one JSON line per seed: test NLL at the best validation step (standardized units), that
step, and the median ms/step.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lib", help="adapter name: flowforge, zuko, nflows, normflows")
    p.add_argument("seeds", help="comma-separated training seeds")
    p.add_argument("--task", default="weather-nsf", help="a weather-* task of the harness")
    p.add_argument("--bench", type=Path, default=BENCH)
    args = p.parse_args()
    sys.path.insert(0, str(args.bench))
    import tasks
    from adapters import discover

    torch.set_num_threads(1)
    adapter = discover()[args.lib]
    for seed in (int(s) for s in args.seeds.split(",")):
        tasks.SEED = seed
        row, _ = tasks.run_weather(args.task, adapter, tasks.config_for(args.task, False))
        print(json.dumps({"lib": args.lib, "task": args.task, "seed": seed, "test_nll": row.get("test_nll_at_best_val"),
                          "best_step": row.get("best_val_step"), "ms_per_step": row.get("ms_per_step")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
