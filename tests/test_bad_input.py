"""Each bad input: one clear line, non-zero exit, no traceback, nothing written over."""
import numpy as np
import pytest

from flowforge.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "run"
    assert main(
        ["train", "--steps", "5", "--layers", "2", "--hidden", "8", "--out", str(out), "--quiet", "--no-plots"]
    ) == 0
    return out


def _assert_one_line(code, err, *fragments):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


def test_missing_file(capsys, tmp_path):
    _assert_one_line(*run_cli(capsys, "train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")),
                     "nope.csv", "not found")


def test_empty_file(capsys, tmp_path):
    f = tmp_path / "empty.csv"
    f.write_text("")
    _assert_one_line(*run_cli(capsys, "train", "--data", str(f), "--out", str(tmp_path / "o")), "empty")


def test_non_numeric_column_is_named(capsys, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("height,colour\n1.0,red\n2.0,blue\n")
    _assert_one_line(*run_cli(capsys, "train", "--data", str(f), "--out", str(tmp_path / "o")), "'colour'", "line 2")


def test_nan_rows_are_counted(capsys, tmp_path):
    a = np.random.default_rng(0).normal(size=(50, 3))
    a[[4, 9], 1] = np.nan
    a[20, 2] = np.inf
    f = tmp_path / "t.npy"
    np.save(f, a)
    _assert_one_line(*run_cli(capsys, "train", "--data", str(f), "--out", str(tmp_path / "o")),
                     "3 NaN/inf value(s) in 3 row(s)", "4, 9, 20")


def test_dimension_mismatch_with_checkpoint(capsys, tmp_path, trained):
    f = tmp_path / "three.csv"
    np.savetxt(f, np.zeros((10, 3)), delimiter=",")
    _assert_one_line(*run_cli(capsys, "evaluate", str(trained), "--data", str(f)), "(3,)", "expects (2,)")


def test_run_folder_without_checkpoint(capsys, tmp_path):
    _assert_one_line(*run_cli(capsys, "evaluate", str(tmp_path)), "no checkpoint")


def test_corrupt_checkpoint(capsys, tmp_path, trained):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    _assert_one_line(*run_cli(capsys, "sample", str(broken)), "truncated or corrupt")


def test_unknown_model_and_data(capsys, tmp_path):
    _assert_one_line(*run_cli(capsys, "train", "--model", "wavenet", "--out", str(tmp_path / "o")),
                     "unknown model 'wavenet'", "realnvp")
    _assert_one_line(*run_cli(capsys, "train", "--data", "spirals", "--out", str(tmp_path / "o")),
                     "unknown data set 'spirals'", "moons")


@pytest.mark.parametrize("flag, value", [("--steps", "0"), ("--batch-size", "-3"), ("--lr", "0"), ("--lr", "nan")])
def test_non_positive_numbers(capsys, tmp_path, flag, value):
    with pytest.raises(SystemExit) as e:
        main(["train", flag, value, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_existing_run_not_overwritten(capsys, trained):
    before = (trained / "model.safetensors").read_bytes()
    _assert_one_line(*run_cli(capsys, "train", "--out", str(trained)), "already holds a trained run")
    assert (trained / "model.safetensors").read_bytes() == before


def test_a_bug_is_not_the_users_fault(capsys, monkeypatch, trained):
    """A ValueError from inside the library is a bug: exit 1 with its traceback, not 'bad input'."""
    def broken(*args, **kwargs):
        raise ValueError("shapes do not broadcast")

    monkeypatch.setattr("flowforge.cli.evaluate.evaluate_nll", broken)
    code, err = run_cli(capsys, "evaluate", str(trained), "--data", "moons")
    assert code == 1
    assert "Traceback" in err and "shapes do not broadcast" in err and "internal error" in err.splitlines()[-1]


def test_debug_shows_the_traceback_of_a_user_error(capsys, tmp_path):
    code, err = run_cli(capsys, "evaluate", str(tmp_path), "--debug")
    assert code == 2 and "Traceback" in err and "CheckpointError" in err
    assert err.splitlines()[-1].startswith("flowforge evaluate: error:") and "no checkpoint" in err


def test_user_errors_share_one_root():
    from flowforge.errors import CheckpointError, ConfigError, DataError, FlowforgeError
    from flowforge.models import build

    with pytest.raises(ConfigError, match="unknown model 'wavenet'"):
        build("wavenet")
    with pytest.raises(ConfigError, match="'realnvp'.*layers must be a positive integer"):
        build("realnvp", layers=0)
    for kind in (ConfigError, DataError, CheckpointError):
        assert issubclass(kind, FlowforgeError) and issubclass(kind, ValueError)
