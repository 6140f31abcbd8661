"""Runs survive SIGKILL and resume bit-exactly; torchrun DDP matches one process."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import flowforge as ff
from flowforge.training.checkpoint import read_metadata

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TRAIN = ["train", "--batch-size", "256", "--layers", "2", "--hidden", "16", "--quiet", "--no-plots"]


def flowforge(*args, **kw):
    return subprocess.run([sys.executable, "-m", "flowforge", *args], env=ENV, capture_output=True, text=True, **kw)


def weights(path):
    return ff.load(path).state_dict()


KINDS = {  # command, resume command, steps and the step to kill after
    "train": ([*TRAIN, "--steps", "400", "--checkpoint-every", "5", "--eval-every", "50"], ["train"], 400, 40),
    "fit-target": (["fit-target", "--target", "banana", "--model", "iaf", "--layers", "2", "--hidden", "8",
                    "--steps", "500", "--eval-samples", "2000", "--quiet", "--no-plots"], ["fit-target"], 500, 50),
    "vae": (["vae", "--data", "digits", "--latent", "2", "--hidden", "16", "--flow-layers", "1", "--steps", "200",
             "--k", "2", "--quiet", "--no-plots"], ["vae"], 200, 20),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sigkill_then_resume_ends_with_identical_weights(tmp_path, kind):
    common, resume, steps, kill_after = KINDS[kind]
    ref = flowforge(*common, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    proc = subprocess.Popen([sys.executable, "-m", "flowforge", *common, "--out", str(tmp_path / "killed")],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "last.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline:
        if last.exists() and read_metadata(last)["step"] >= kill_after:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step_at_kill = read_metadata(last)["step"]  # the checkpoint left behind is intact and readable
    assert kill_after <= step_at_kill < steps, "the run finished before it could be killed; make it longer"
    assert (tmp_path / "killed" / ".lock").exists()  # left by the killed run: stale, it must not block

    resumed = flowforge(*resume, "--resume", str(tmp_path / "killed"), "--quiet", "--no-plots")
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(tmp_path / "ref" / "last.safetensors"), weights(last)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one(tmp_path):
    common = [*TRAIN, "--steps", "15", "--eval-every", "5"]
    single = flowforge(*common, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "flowforge", *common, "--out", str(tmp_path / "two")]
    two = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = weights(tmp_path / "one" / "last.safetensors"), weights(tmp_path / "two" / "last.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    assert '"world_size": 2' in (tmp_path / "two" / "summary.json").read_text()


@pytest.mark.parametrize("bad", ["truncated", "header"])
def test_tampered_last_checkpoint_is_refused_on_resume(tmp_path, bad, capsys):
    from flowforge.cli import main

    out = tmp_path / "run"
    assert main([*TRAIN, "--steps", "10", "--eval-every", "5", "--out", str(out)]) == 0
    last = out / "last.safetensors"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3] if bad == "truncated" else b"\xff" * 8 + data[8:])
    assert main(["train", "--resume", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "Traceback" not in err
