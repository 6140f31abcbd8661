"""Tables larger than memory: a .npy left on disk gives the same splits, batches,
training and likelihoods as the same file loaded, without holding the file."""
from pathlib import Path

import numpy as np
import pytest
import torch

import flowforge as ff
from flowforge.data import DataError, DiskRows, load_dataset
from flowforge.data.tabular import split_blocks
from flowforge.data.validate import check_table, check_table_chunks
from flowforge.training import TrainConfig, evaluate_nll, fit

N = 70_001  # over 65,536 rows: blocks of 2 rows, the last one short


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("mapped") / "big.npy"
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N, 3)).astype(np.float32)
    a[:, 2] += a[:, 0] ** 2
    np.save(path, a)
    return path, a


def test_blocks_partition_the_rows():
    parts, block_rows = split_blocks(N, 0.1, 0.1, seed=3)
    assert block_rows == 2
    covered = np.concatenate([(b[:, None] * 2 + np.arange(2)).ravel() for b in parts.values()])
    covered = covered[covered < N]
    assert np.array_equal(np.sort(covered), np.arange(N))
    assert abs(len(parts["test"]) * 2 - 0.1 * N) <= 2
    small, one = split_blocks(1000, 0.1, 0.2, seed=3)  # up to 65,536 rows: a row permutation, as always
    order = np.random.default_rng(3).permutation(1000)
    assert one == 1 and np.array_equal(small["test"], order[:200]) and np.array_equal(small["train"], order[300:])


def test_mapped_splits_equal_the_loaded_ones(big):
    path, a = big
    mapped, loaded = load_dataset(path, on_disk=True), load_dataset(path, on_disk=False)
    assert isinstance(mapped.train, DiskRows) and isinstance(loaded.train, torch.Tensor)
    for s in ("train", "val", "test"):
        assert mapped.split(s).shape == loaded.split(s).shape
        assert torch.equal(mapped.split(s)[:], loaded.split(s))
    assert mapped.describe() == loaded.describe()


def test_indexing_like_a_tensor(big):
    path, _ = big
    rows, loaded = load_dataset(path, on_disk=True).val, load_dataset(path).val
    idx = torch.tensor([5, 0, len(rows) - 1, 5])
    assert torch.equal(rows[idx], loaded[idx]) and torch.equal(rows[idx.numpy()], loaded[idx])
    assert torch.equal(rows[-1], loaded[-1]) and torch.equal(rows[10:200:7], loaded[10:200:7])
    with pytest.raises(IndexError):
        rows[len(rows)]
    with pytest.raises(IndexError):
        rows[torch.tensor([len(rows)])]
    with pytest.raises(TypeError, match="1-D integer index"):
        rows[torch.tensor([0.5])]


def test_a_read_leaves_no_mapping_behind(big):
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    path, _ = big
    rows = load_dataset(path, on_disk=True).train
    batch = rows[torch.randperm(len(rows))[:512]]
    assert batch.shape == (512, 3) and str(path) not in maps.read_text()


def test_nonfinite_values_are_found_chunk_by_chunk(big, tmp_path):
    a = np.random.default_rng(0).normal(size=(50, 3))
    a[[4, 9], 1] = np.nan
    a[20, 2] = np.inf
    with pytest.raises(DataError) as whole:
        check_table(a, "t")
    with pytest.raises(DataError) as chunked:
        check_table_chunks(a.shape, a.dtype, lambda i, j: a[i:j], "t", chunk_rows=7)
    assert str(whole.value) == str(chunked.value)
    assert "3 NaN/inf value(s) in 3 row(s) (first rows 4, 9, 20; column(s) 1, 2)" in str(chunked.value)
    path = tmp_path / "nan.npy"
    np.save(path, a.astype(np.float32))
    with pytest.raises(DataError, match="nan.npy: 3 NaN/inf"):
        load_dataset(path, on_disk=True)


def test_training_from_the_map_is_training_from_memory(big):
    path, _ = big
    config = TrainConfig(steps=6, batch_size=256, eval_every=3, progress=False)
    states, scores = [], []
    for on_disk in (True, False):
        data = load_dataset(path, on_disk=on_disk)
        torch.manual_seed(0)
        flow = ff.models.build("maf", dim=3, layers=2, hidden=16, preprocess=["standardize"])
        summary = fit(flow, data, config).summary
        states.append(flow.state_dict())
        scores.append((summary["test_nll"], evaluate_nll(flow, data.test, data, max_rows=1000)["nll"]))
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), name
    assert scores[0] == scores[1]


def test_a_mapped_split_is_not_trained_full_batch(big):
    path, _ = big
    flow = ff.models.build("maf", dim=3, layers=1, hidden=8)
    with pytest.raises(ValueError, match="training split read from disk .* set batch_size"):
        fit(flow, load_dataset(path, on_disk=True), TrainConfig(steps=1, progress=False))
