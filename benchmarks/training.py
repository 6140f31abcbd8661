"""Fault-tolerance and scale-out figures (issue: training that survives faults).

1. SIGKILL: a run is killed at a random moment, resumed with --resume, and its
   final weights compared with an uninterrupted run (bit-identical expected);
   reports the checkpoint step found after the kill and the checkpoint interval.
2. DDP: wall time per step of `flowforge train` with 1 process vs
   `torchrun --nproc_per_node=2` (gloo, CPU) at the same global batch.
3. Bad inputs: each one run through the CLI; its exit status and message.

Usage: python benchmarks/training.py      (about 3 minutes on 2 cores)
Writes benchmarks/results/training.json and prints markdown tables.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import flowforge as ff
from flowforge.training.checkpoint import read_metadata

RESULTS = Path(__file__).resolve().parent / "results"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
SMALL = ["--layers", "4", "--hidden", "64", "--quiet", "--no-plots"]


def cli(*args: str, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowforge", *args], env=env, capture_output=True, text=True)


def sigkill(tmp: Path) -> dict:
    common = ["train", "--steps", "600", "--batch-size", "256", "--checkpoint-every", "10", "--eval-every", "100",
              *SMALL]
    assert cli(*common, "--out", str(tmp / "ref")).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", *common, "--out", str(tmp / "killed")], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp / "killed" / "last.safetensors"
    while not last.exists():
        time.sleep(0.01)
    time.sleep(random.Random(0).uniform(0.5, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = read_metadata(last)["step"]
    assert cli("train", "--resume", str(tmp / "killed"), "--quiet", "--no-plots").returncode == 0
    a = ff.load(tmp / "ref" / "last.safetensors").state_dict()
    b = ff.load(last).state_dict()
    identical = all(torch.equal(a[k], b[k]) for k in a)
    return {"checkpoint_step_after_kill": step, "checkpoint_every": 10, "final_weights_identical": identical}


def ddp(tmp: Path) -> dict:
    args = ["--steps", "300", "--batch-size", "2048", "--eval-every", "300", *SMALL]
    t0 = time.perf_counter()
    one = cli("train", *args, "--out", str(tmp / "one"))
    t_one = time.perf_counter() - t0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--master_addr=127.0.0.1",
                          f"--master_port={port}", "-m", "flowforge", "train", *args, "--out", str(tmp / "two")],
                         env=ENV, capture_output=True, text=True)
    t_two = time.perf_counter() - t0
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-1000:]
    s1 = json.loads((tmp / "one" / "summary.json").read_text())
    s2 = json.loads((tmp / "two" / "summary.json").read_text())
    return {
        "global_batch": 2048,
        "ms_per_step_1proc": s1["ms_per_step_median"],
        "ms_per_step_2proc": s2["ms_per_step_median"],
        "speedup": s1["ms_per_step_median"] / s2["ms_per_step_median"],
        "wall_s_1proc_incl_startup": t_one,
        "wall_s_2proc_incl_startup": t_two,
        "test_nll_1proc": s1["test_nll"],
        "test_nll_2proc": s2["test_nll"],
    }


def bad_inputs(tmp: Path) -> list[dict]:
    run = tmp / "ok"
    assert cli("train", "--steps", "5", "--out", str(run), *SMALL).returncode == 0
    files = {
        "empty.csv": "",
        "text.csv": "height,colour\n1.0,red\n2.0,blue\n",
        "ragged.csv": "1,2\n3\n",
        "three_cols.csv": "1,2,3\n4,5,6\n7,8,9\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    a = np.random.default_rng(0).normal(size=(50, 2))
    a[[4, 9], 1] = np.nan
    np.save(tmp / "nan.npy", a)
    broken = tmp / "broken"
    broken.mkdir()
    data = (run / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases = {
        "missing file": ["train", "--data", str(tmp / "nope.csv"), "--out", str(tmp / "x")],
        "empty file": ["train", "--data", str(tmp / "empty.csv"), "--out", str(tmp / "x")],
        "non-numeric column": ["train", "--data", str(tmp / "text.csv"), "--out", str(tmp / "x")],
        "ragged CSV row": ["train", "--data", str(tmp / "ragged.csv"), "--out", str(tmp / "x")],
        "NaN rows": ["train", "--data", str(tmp / "nan.npy"), "--out", str(tmp / "x")],
        "data dimension vs checkpoint": ["evaluate", str(run), "--data", str(tmp / "three_cols.csv")],
        "run folder without checkpoint": ["evaluate", str(tmp)],
        "truncated checkpoint": ["sample", str(broken)],
        "unknown model": ["train", "--model", "wavenet", "--out", str(tmp / "x")],
        "unknown data set": ["train", "--data", "spirals", "--out", str(tmp / "x")],
        "non-positive steps": ["train", "--steps", "0"],
        "non-positive learning rate": ["train", "--lr", "-1"],
        "context for an unconditional flow": ["sample", str(run), "--context", "1"],
        "existing run": ["train", "--out", str(run)],
    }
    rows = []
    for what, args in cases.items():
        res = cli(*args)
        message = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
        rows.append({"input": what, "exit": res.returncode, "message": message.replace(str(tmp), "<tmp>")})
    return rows


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {"sigkill": sigkill(tmp / "k"), "ddp": ddp(tmp / "d"), "bad_inputs": bad_inputs(tmp / "b")}
    (RESULTS / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    k = result["sigkill"]
    print(f"SIGKILL: checkpoint found at step {k['checkpoint_step_after_kill']} (interval {k['checkpoint_every']}); "
          f"resumed run's final weights identical to an uninterrupted run: {k['final_weights_identical']}")
    d = result["ddp"]
    print(f"DDP, global batch {d['global_batch']}: {d['ms_per_step_1proc']:.1f} ms/step with 1 process, "
          f"{d['ms_per_step_2proc']:.1f} ms/step with 2 (speed-up {d['speedup']:.2f}x); "
          f"test NLL {d['test_nll_1proc']:.4f} vs {d['test_nll_2proc']:.4f}")
    print("\n| bad input | exit | message |\n|---|---|---|")
    for row in result["bad_inputs"]:
        print(f"| {row['input']} | {row['exit']} | `{row['message']}` |")


if __name__ == "__main__":
    main()
