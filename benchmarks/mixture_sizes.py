"""The mixture base's size search, laid open: for each data set, EM with K = 1, 4, 16, ... up to
``mixture_components(rows)`` on (at most 20,000) standardized training rows, scored on the
validation rows by the held-out NLL, the assignments' entropy H(r) and their sum, the negated
complete-data log-likelihood that ``GaussianMixture.fit`` minimizes (issue 10).

    python benchmarks/mixture_sizes.py [--sets weather,checkerboard,8gaussians,moons] [--bench ../shared/bench]

Data as in ``benchmarks/defaults.py``: the harness's weather split; 50,000 samples of the bench's
8 Gaussians and checkerboard (seed 0, the last 5,000 held out); moons as ``flowforge train`` draws
it. Writes ``benchmarks/results/mixture_sizes.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from flowforge.data import load_dataset
from flowforge.training.recipes import mixture_components

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "mixture_sizes.json"


def standardized(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    return (train - mean) / std, (val - mean) / std


def data_sets(names: list[str], bench: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    sys.path.insert(0, str(bench))
    import common  # the bench's weather split and 2-D samplers

    sets = {}
    for name in names:
        if name == "weather":
            d = common.weather_data(0)
            sets[name] = (d["train"], d["val"])
        elif name == "moons":
            ds = load_dataset("moons")
            sets[name] = standardized(ds.train.double().numpy(), ds.val.double().numpy())
        else:
            x = common.TARGETS[name]().sample(50_000, np.random.RandomState(0))
            sets[name] = standardized(x[:45_000], x[45_000:])
    return sets


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="weather,checkerboard,8gaussians,moons")
    p.add_argument("--bench", type=Path, default=HERE.parent.parent / "shared" / "bench")
    args = p.parse_args()
    results = {}
    for name, (train, val) in data_sets(args.sets.split(","), args.bench).items():
        bound = mixture_components(len(train))
        sizes = [4**i for i in range(bound.bit_length()) if 4**i < bound] + [bound]
        rows = results[name] = []
        for k in sizes:
            t0 = time.perf_counter()
            em = GaussianMixture(k, covariance_type="full", random_state=0).fit(train[:20_000])
            r = em.predict_proba(val[:20_000])
            nll = -em.score(val[:20_000])
            entropy = float(-(r * np.log(np.where(r > 0, r, 1.0))).sum(1).mean())
            rows.append({"components": k, "val_nll": nll, "entropy": entropy, "complete_data_nll": nll + entropy,
                         "fit_s": time.perf_counter() - t0})
            print(f"{name:12s} K={k:4d}  held-out NLL {nll:.4f}  H(r) {entropy:.4f}  sum {nll + entropy:.4f}",
                  flush=True)
    OUT.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
