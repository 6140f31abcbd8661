"""Autoregressive-flow figures (issue 4).

1. Sampling throughput at D = 64 (5 MADE layers, 2 x 256 ReLU): MAF (64
   sequential MADE passes per layer), IAF (one pass), and an IAF distilled
   from a MAF teacher trained on digits; the distillation KL, the teacher's and
   the student's test NLL. Goal: IAF >= 20x MAF.
2. `flowforge train --data digits --model maf` (validation split, early
   stopping, best checkpoint): test bits/dim and wall time. Goal: < 2.20 in
   20 minutes on 2 cores.
3. With --peers: the shared harness (../shared/bench, task digits-maf, one run,
   --threads 1) for flowforge, nflows and zuko: median ms per training step
   and test bits/dim at the best validation step. Goal: ms/step <= 0.7x the
   fastest peer, bits/dim no worse than theirs.

Timings come from a machine shared with other jobs: compare rows of one run only.

Usage: python benchmarks/maf.py [--quick] [--peers] [--threads N]
Writes benchmarks/results/maf.json and prints markdown tables. CPU, float32.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from flowforge.data import load_dataset
from flowforge.inference.distill import distill, sampling_rate, student_like
from flowforge.training import evaluate_nll, load_flow

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BENCH = ROOT.parent / "shared" / "bench"
PEERS_PY = Path("/tmp/peers-venv/bin/python")
SIZES = {"layers": 5, "hidden": 256}
#: the `flowforge train` settings measured in part 2 (those of the maf/image recipe)
TRAIN_ARGS = ["--batch-size", "128", "--steps", "3000", "--eval-every", "50", "--patience", "10", "--hidden", "256",
              "--option", 'permutation="random"', "--option", "batch_norm=true"]


def cli(*args: str, threads: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "flowforge", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"flowforge {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def train_digits(tmp: Path, threads: int, quick: bool) -> dict:
    out = tmp / "digits-maf"
    args = ["train", "--data", "digits", "--model", "maf", *TRAIN_ARGS, "--out", str(out), "--quiet", "--no-plots"]
    if quick:
        args += ["--steps", "200"]
    t0 = time.perf_counter()
    cli(*args, threads=threads)
    summary = json.loads((out / "summary.json").read_text())
    return {"run": out, "test_bits_per_dim": summary["test_bits_per_dim"], "best_step": summary["best_step"],
            "steps": summary["steps"], "wall_s": time.perf_counter() - t0, "train_args": " ".join(TRAIN_ARGS)}


def sampling(run: Path, quick: bool) -> dict:
    teacher, meta = load_flow(run)
    dataset = load_dataset(meta["data"]["name"])
    torch.manual_seed(0)
    untrained_iaf = student_like(teacher, "iaf", **SIZES)
    torch.manual_seed(0)
    student = student_like(teacher, "iaf", **SIZES)
    steps = 50 if quick else 2000
    t0 = time.perf_counter()
    result = distill(teacher, student, steps, batch_size=256, lr=1e-3)
    distill_s = time.perf_counter() - t0
    n = 200 if quick else 2000
    rates = {name: sampling_rate(flow, n) for name, flow in
             (("maf", teacher), ("iaf", untrained_iaf), ("distilled_iaf", student))}
    test = dataset.split("test")
    nll = {name: evaluate_nll(flow, test, dataset, noise_draws=5)
           for name, flow in (("teacher", teacher), ("student", student))}
    return {
        "dim": int(teacher.event_shape[0]),
        "samples_per_s": rates,
        "speedup_iaf": rates["iaf"] / rates["maf"],
        "speedup_distilled": rates["distilled_iaf"] / rates["maf"],
        "distill_steps": steps,
        "distill_wall_s": distill_s,
        "kl": result.kl,
        "kl_stderr": result.kl_stderr,
        "teacher_test_nll": nll["teacher"]["nll"],
        "student_test_nll": nll["student"]["nll"],
        "teacher_test_bits_per_dim": nll["teacher"]["bits_per_dim"],
        "student_test_bits_per_dim": nll["student"]["bits_per_dim"],
    }


def peers(tmp: Path, quick: bool) -> dict:
    if not (PEERS_PY.exists() and (BENCH / "run_all.py").exists()):
        return {"skipped": f"needs {PEERS_PY} and {BENCH}/run_all.py (see ../shared/bench/README.md)"}
    out = tmp / "bench"
    cmd = [str(PEERS_PY), str(BENCH / "run_all.py"), "--tasks", "digits-maf", "--libs", "flowforge,nflows,zuko",
           "--threads", "1", "--out", str(out)] + (["--quick"] if quick else [])
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    rows = {r["lib"]: r for r in json.loads((out / "peers.json").read_text())["tasks"]["digits-maf"]["rows"]}
    table = {lib: {k: rows[lib].get(k) for k in ("ms_per_step", "test_bpd_at_best_val", "best_val_step", "params",
                                                  "sample_per_s", "status")} for lib in rows}
    fastest = min(table[lib]["ms_per_step"] for lib in ("nflows", "zuko"))
    return {"rows": table, "ms_ratio_to_fastest_peer": table["flowforge"]["ms_per_step"] / fastest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny step counts")
    parser.add_argument("--peers", action="store_true", help="also run the shared harness (flowforge, nflows, zuko)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict = {"threads": args.threads, "torch": torch.__version__, "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = train_digits(tmp, args.threads, args.quick)
        report["sampling"] = sampling(train.pop("run"), args.quick)
        report["train_digits"] = train
        if args.peers:
            report["peers"] = peers(tmp, args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "maf.json").write_text(json.dumps(report, indent=2) + "\n")

    s, t = report["sampling"], report["train_digits"]
    print(f"\n### Sampling at D = {s['dim']} (samples/s, {args.threads} thread(s); shared machine, noisy)\n")
    print("| model | samples/s | vs MAF |\n|---|---|---|")
    rates = s["samples_per_s"]
    for name in ("maf", "iaf", "distilled_iaf"):
        print(f"| {name} | {rates[name]:.0f} | {rates[name] / rates['maf']:.1f}x |")
    print(f"\ndistillation ({s['distill_steps']} steps, {s['distill_wall_s']:.0f} s): KL {s['kl']:.3f} +- "
          f"{s['kl_stderr']:.3f} nats; test NLL teacher {s['teacher_test_nll']:.2f}, student "
          f"{s['student_test_nll']:.2f} nats ({s['teacher_test_bits_per_dim']:.3f} / "
          f"{s['student_test_bits_per_dim']:.3f} bits/dim)")
    print(f"\n`flowforge train --data digits --model maf {t['train_args']}`: test {t['test_bits_per_dim']:.4f} "
          f"bits/dim, best step {t['best_step']} of {t['steps']}, {t['wall_s']:.0f} s")
    if "peers" in report:
        p = report["peers"]
        if "skipped" in p:
            print(f"\npeers: skipped ({p['skipped']})")
        else:
            print("\n### digits-maf, shared harness, one run, --threads 1\n")
            print("| library | ms/step | test bits/dim at best val (step) | params |\n|---|---|---|---|")
            for lib, r in p["rows"].items():
                print(f"| {lib} | {r['ms_per_step']:.2f} | {r['test_bpd_at_best_val']:.4f} ({r['best_val_step']}) "
                      f"| {r['params']} |")
            print(f"\nflowforge ms/step / fastest of nflows, zuko: {p['ms_ratio_to_fastest_peer']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
