"""Run folders: one writer at a time (named when refused), stale locks from killed runs do not block."""
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from flowforge.cli import main
from flowforge.errors import CheckpointError
from flowforge.training.checkpoint import read_metadata
from flowforge.training.run import LOCK_FILE, Run

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TRAIN = ["train", "--layers", "2", "--hidden", "8", "--batch-size", "64", "--quiet", "--no-plots"]


def _lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "started": "2026-01-01 00:00:00 UTC"}
    (folder / LOCK_FILE).write_text(json.dumps(holder))


def test_two_trainings_into_one_folder_one_is_refused(tmp_path):
    out = str(tmp_path / "run")
    procs = [subprocess.Popen([sys.executable, "-m", "flowforge", *TRAIN, "--steps", "100", "--seed", str(seed),
                               "--out", out], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (0, 1)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    winner = [seed for seed, (code, _) in enumerate(results) if code == 0][0]
    loser_err = [err for code, err in results if code == 2][0]
    assert "being written by another run (pid" in loser_err or "already holds a trained run" in loser_err, loser_err
    assert read_metadata(tmp_path / "run" / "last.safetensors")["train_config"]["seed"] == winner
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def _contend(path, start, tried, won, done):
    start.wait()
    try:
        with Run(path).lock():
            won.value += 1
            with tried.get_lock():
                tried.value += 1
            done.wait()  # keep the lock until every contender has tried
    except CheckpointError:
        with tried.get_lock():
            tried.value += 1


def test_processes_racing_for_one_folder_let_exactly_one_in(tmp_path):
    """A lock is never seen half-written, so no contender mistakes a starting run for a dead one."""
    ctx = multiprocessing.get_context("fork")
    n = 8
    for _ in range(20):
        start, tried, won, done = ctx.Barrier(n), ctx.Value("i", 0), ctx.Value("i", 0), ctx.Event()
        procs = [ctx.Process(target=_contend, args=(tmp_path / "run", start, tried, won, done)) for _ in range(n)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 120
        while tried.value < n and time.monotonic() < deadline:
            time.sleep(0.01)
        done.set()
        for p in procs:
            p.join(60)
        assert (tried.value, won.value) == (n, 1)
        assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_live_lock_is_refused_naming_its_holder(tmp_path, capsys):
    _lock(tmp_path / "run", os.getppid())  # a process that is alive
    assert main([*TRAIN, "--steps", "5", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"pid {os.getppid()} on {socket.gethostname()}, started 2026-01-01" in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_stale_lock_does_not_block_resume(tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--steps", "10", "--eval-every", "5", "--out", str(out)]) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is no longer alive
    _lock(out, dead.pid)
    assert main(["train", "--resume", str(out), "--steps", "20", "--quiet", "--no-plots"]) == 0
    assert not (out / LOCK_FILE).exists()


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    run = Run(tmp_path / "run")
    with run.lock(), Run(tmp_path / "run").lock():
        assert (tmp_path / "run" / LOCK_FILE).exists()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    with pytest.raises(RuntimeError), run.lock():
        raise RuntimeError("released on error too")
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_resume_names_the_command_of_another_run_kind(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--steps", "5", "--out", str(out)]) == 0
    assert main(["vae", "--resume", str(out), "--quiet"]) == 2
    assert f"holds a train run; continue it with `flowforge train --resume {out}`" in capsys.readouterr().err


def test_a_run_started_from_python_records_what_it_read(tmp_path, capsys):
    """The data layer records its options, so the CLI reloads a Python run's data the same way."""
    import numpy as np
    import torch

    import flowforge as ff

    table = tmp_path / "t.csv"
    rows = np.random.default_rng(0).normal(size=(200, 3))
    np.savetxt(table, rows, delimiter=",", header="a,b,c", comments="")
    data = ff.data.load_dataset(table, context_cols=["c"])
    torch.manual_seed(0)
    flow = ff.models.build("realnvp", dim=2, layers=2, hidden=8, context_dim=1)
    ff.training.fit(flow, data, ff.training.TrainConfig(steps=5, progress=False), out=tmp_path / "run")
    assert read_metadata(tmp_path / "run" / "model.safetensors")["data"]["context_cols"] == ["c"]
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(table), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 200
