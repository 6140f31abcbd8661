"""Data larger than memory (issue 12 item 4).

1. CSV: writes a 10,000,000 x 10 CSV (6 decimals, about 1 GB) and times
   ``flowforge.data.load_dataset`` on it (pyarrow's multi-threaded reader, then
   the checks, the split and the tensors), and on its first 200,000 rows
   against ``numpy.loadtxt`` on the same rows (best of 3).
2. On disk: writes a 10,000,000 x 20 float32 ``.npy`` (800 MB) and runs
   ``flowforge train --data big.npy --model maf --batch-size 512`` in a child
   process; reports the child's peak resident memory (``VmHWM`` of
   ``/proc/self/status``, which exec resets; the ``ru_maxrss`` of a child
   started from this process would include this process's own memory at the
   fork), next to a child that only imports flowforge.

Usage: python benchmarks/data_scale.py [--rows 10000000] [--steps 500] [--dir /tmp]
(about 3 minutes on 2 cores; needs about 2 GB free in --dir, removed at the end).
Writes benchmarks/results/data_scale.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from flowforge.data import load_dataset

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 1_000_000
#: Run in a child: the flowforge command line, then its own peak resident memory (kB) as the last stderr line.
REPORT = (
    "import sys\n"
    "from flowforge.cli import main\n"
    "code = main(sys.argv[1:]) if len(sys.argv) > 1 else 0\n"
    "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
    "print(peak.split()[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def write_csv(path: Path, rows: int, cols: int = 10) -> None:
    """Correlated Gaussian rows, 6 decimals, written chunk by chunk by pyarrow."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(cols, cols))
    names = [f"x{j}" for j in range(cols)]
    with pacsv.CSVWriter(path, pa.schema([(n, pa.float64()) for n in names])) as writer:
        for start in range(0, rows, CHUNK):
            block = np.round(rng.normal(size=(min(CHUNK, rows - start), cols)) @ mix, 6)
            writer.write_table(pa.table(dict(zip(names, block.T, strict=True))))


def write_npy(path: Path, rows: int, cols: int = 20) -> None:
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(cols, cols)).astype(np.float32) / np.sqrt(cols)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for start in range(0, rows, CHUNK):
        z = rng.normal(size=(min(CHUNK, rows - start), cols)).astype(np.float32)
        out[start : start + len(z)] = np.tanh(z) @ mix + 0.1 * z
    out.flush()
    del out


def timed(fn, repeat: int = 1):
    """(value, best wall seconds of ``repeat`` calls)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return value, best


def csv_figures(tmp: Path, rows: int) -> dict:
    big, small = tmp / "big.csv", tmp / "slice.csv"
    write_csv(big, rows)
    with big.open() as src, small.open("w") as dst:
        for _ in range(200_001):  # header + 200,000 rows
            dst.write(src.readline())
    ds, t_big = timed(lambda: load_dataset(big))
    _, t_arrow = timed(lambda: pacsv.read_csv(big))
    _, t_small = timed(lambda: load_dataset(small), repeat=3)
    _, t_small_arrow = timed(lambda: pacsv.read_csv(small), repeat=3)
    _, t_loadtxt = timed(lambda: np.loadtxt(small, delimiter=",", skiprows=1), repeat=3)
    result = {
        "csv_rows": rows, "csv_bytes": big.stat().st_size, "train_rows": len(ds.train),
        "flowforge_load_s": t_big, "pyarrow_read_only_s": t_arrow,
        "slice_rows": 200_000, "flowforge_slice_s": t_small, "pyarrow_read_only_slice_s": t_small_arrow,
        "numpy_loadtxt_slice_s": t_loadtxt,
    }
    big.unlink()
    return result


def child(*args: str) -> tuple[int, float, float]:
    """(exit status, peak RSS in MB, wall seconds) of ``flowforge ARGS`` in a child process (no ARGS: import only)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", REPORT, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.stderr.write(proc.stderr)
    return proc.returncode, int(proc.stderr.strip().splitlines()[-1]) / 1024, wall


def npy_figures(tmp: Path, rows: int, steps: int) -> dict:
    npy = tmp / "big.npy"
    write_npy(npy, rows)
    _, floor_mb, _ = child()
    out = tmp / "run"
    code, peak_mb, wall = child("train", "--data", str(npy), "--model", "maf", "--steps", str(steps),
                                "--batch-size", "512", "--eval-every", "100", "--out", str(out), "--quiet",
                                "--no-plots")
    if code:
        raise SystemExit(f"training from the .npy on disk failed (exit {code})")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "npy_rows": rows, "npy_bytes": npy.stat().st_size, "steps": steps, "batch_size": 512,
        "peak_rss_mb": peak_mb, "import_only_rss_mb": floor_mb, "wall_s": wall,
        "ms_per_step_median": summary["ms_per_step_median"], "test_nll": summary["test_nll"],
        "sizes": summary["data"]["sizes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    print(f"free space in {args.dir}: {shutil.disk_usage(args.dir).free / 2**30:.1f} GiB", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="flowforge-data-scale-", dir=args.dir))
    try:
        results = {"csv": csv_figures(tmp, args.rows)}
        print(json.dumps(results["csv"], indent=2), flush=True)
        results["npy"] = npy_figures(tmp, args.rows, args.steps)
        print(json.dumps(results["npy"], indent=2), flush=True)
    finally:
        shutil.rmtree(tmp)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data_scale.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
