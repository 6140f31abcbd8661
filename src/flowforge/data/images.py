"""Image data sets: ``digits`` (bundled with scikit-learn) and loaders for
MNIST, Fashion-MNIST, CIFAR-10 and image folders from local files.

Images are ``(N, C, H, W)`` float tensors holding the integer pixel values
``0 .. levels - 1`` (no rescaling: the data units are the discrete levels, so
bits/dim come out in the original space); labels are ``(N,)`` integers.
Nothing is downloaded: a missing file is an error that says what to put where.
The default folder for a set is ``$FLOWFORGE_DATA/<name>`` (``FLOWFORGE_DATA``
defaults to ``~/.flowforge/data``); pass ``path=...`` to use another.
"""
from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .dataset import SPLITS, DataError, Dataset, register_dataset

__all__ = ["DIGITS_SIZES", "check_images", "image_dataset", "data_root"]

#: The digits split, the same as ../shared/bench (permutation with seed 0; 1300 / 200 / 297).
DIGITS_SIZES = {"train": 1300, "val": 200, "test": 297}

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MNIST_NPZ = {"mnist": "mnist.npz", "fashion-mnist": "fashion-mnist.npz"}
_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def data_root(name: str) -> Path:
    """``$FLOWFORGE_DATA/<name>``, the default folder of a downloaded data set."""
    return Path(os.environ.get("FLOWFORGE_DATA", "~/.flowforge/data")).expanduser() / name


def check_images(x: Tensor, levels: int, source: str, shape: Sequence[int] | None = None) -> Tensor:
    """Check ``(N, C, H, W)`` images: the expected shape, integer values in ``[0, levels)``.

    Raises:
        DataError: naming ``source`` and what is wrong (shape, grey vs colour, range).
    """
    if x.ndim != 4:
        raise DataError(f"{source}: expected images of shape (N, C, H, W), got an array of shape {tuple(x.shape)}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        c, c_want = x.shape[1], shape[0]
        if c != c_want and {c, c_want} <= {1, 3}:
            kind = {1: "grey (1 channel)", 3: "colour (3 channels)"}
            raise DataError(
                f"{source}: the images are {kind[c]} but the model expects {kind[c_want]} images of shape "
                f"{tuple(shape)}; convert them or train a model on this data"
            )
        raise DataError(f"{source}: images have shape {tuple(x.shape[1:])}, the model expects {tuple(shape)}")
    if not torch.isfinite(x).all():
        raise DataError(f"{source}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > levels - 1 or not torch.equal(x, x.round()):
        raise DataError(
            f"{source}: pixel values must be integers in [0, {levels - 1}] ({levels} levels), "
            f"got values in [{lo:.4g}, {hi:.4g}]" + ("" if torch.equal(x, x.round()) else " with fractions")
        )
    return x


def image_dataset(
    name: str,
    train: np.ndarray,
    test: np.ndarray,
    train_labels: np.ndarray | None,
    test_labels: np.ndarray | None,
    levels: int,
    val_size: int | None = None,
    seed: int = 0,
    info: dict | None = None,
) -> Dataset:
    """A :class:`Dataset` from ``(N, C, H, W)`` integer arrays; the validation
    split is ``val_size`` images of ``train`` drawn with ``seed`` (default:
    a tenth of them, at most 5000)."""
    if val_size is None:
        val_size = max(1, min(5000, len(train) // 10))
    if not 0 < val_size < len(train):
        raise DataError(f"{name}: val_size must be in [1, {len(train) - 1}], got {val_size}")
    order = np.random.RandomState(seed).permutation(len(train))
    parts = {"train": order[val_size:], "val": order[:val_size]}
    images = {s: torch.as_tensor(train[idx], dtype=torch.float32) for s, idx in parts.items()}
    images["test"] = torch.as_tensor(test, dtype=torch.float32)
    labels = dict.fromkeys(SPLITS)
    if train_labels is not None:
        labels.update({s: torch.as_tensor(train_labels[idx], dtype=torch.long) for s, idx in parts.items()})
    if test_labels is not None:
        labels["test"] = torch.as_tensor(test_labels, dtype=torch.long)
    for split, x in images.items():
        check_images(x, levels, f"{name} [{split}]", images["train"].shape[1:])
    return Dataset(name=name, **images, labels=labels, kind="image", levels=levels, info=info or {})


@register_dataset("digits")
def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1797 grey images, 17 levels (0..16), labels 0..9.

    Fixed split (permutation with seed 0, as ../shared/bench): 1300 train,
    200 validation, 297 test.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.images.astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    order = np.random.RandomState(0).permutation(len(x))
    bounds = np.cumsum([0, *DIGITS_SIZES.values()])
    idx = {s: order[a:b] for s, a, b in zip(SPLITS, bounds[:-1], bounds[1:], strict=True)}
    images = {s: torch.as_tensor(x[i]) for s, i in idx.items()}
    labels = {s: torch.as_tensor(y[i]) for s, i in idx.items()}
    for split, images_split in images.items():
        check_images(images_split, 17, f"digits [{split}]")
    return Dataset(name="digits", **images, labels=labels, kind="image", levels=17, info={"classes": list(range(10))})


# -- MNIST and Fashion-MNIST --------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file (header says {dims}, {len(raw) - offset} bytes of data)")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims).copy()


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _npz_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; found {data.files}; expected {list(keys)}")
            return {k: data[k] for k in keys}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read as .npz ({e})") from None


def _mnist_like(name: str, path: str | Path | None, val_size: int | None, seed: int) -> Dataset:
    folder = Path(path).expanduser() if path is not None else data_root(name)
    npz = folder if folder.suffix == ".npz" else folder / _MNIST_NPZ[name]
    if npz.exists():
        a = _npz_arrays(npz, ["x_train", "y_train", "x_test", "y_test"])
        arrays = {"train_images": a["x_train"], "train_labels": a["y_train"],
                  "test_images": a["x_test"], "test_labels": a["y_test"]}
    else:
        found = {key: _find(folder, stem) for key, stem in _MNIST_FILES.items()}
        if not all(found.values()):
            raise DataError(
                f"{name}: files not found in {folder}. Put the four IDX files "
                f"({', '.join(f'{s}.gz' for s in _MNIST_FILES.values())}, gzipped or not) there, or one "
                f"{_MNIST_NPZ[name]} with arrays x_train, y_train, x_test, y_test; or pass path=<folder or .npz>"
            )
        arrays = {key: _read_idx(p) for key, p in found.items()}
    images = {k: arrays[k] for k in ("train_images", "test_images")}
    for k, v in images.items():
        if v.ndim != 3:
            raise DataError(f"{name}: {k} must have shape (N, 28, 28), got {v.shape}")
        images[k] = v[:, None]
    return image_dataset(
        name, images["train_images"], images["test_images"], arrays["train_labels"], arrays["test_labels"],
        levels=256, val_size=val_size, seed=seed,
    )


@register_dataset("mnist")
def load_mnist(path: str | Path | None = None, val_size: int | None = None, seed: int = 0) -> Dataset:
    """MNIST from local IDX files or ``mnist.npz``; ``val_size`` training images (default 5000)
    form the validation split."""
    return _mnist_like("mnist", path, val_size, seed)


@register_dataset("fashion-mnist")
def load_fashion_mnist(path: str | Path | None = None, val_size: int | None = None, seed: int = 0) -> Dataset:
    """Fashion-MNIST from local IDX files or ``fashion-mnist.npz`` (same layout as MNIST)."""
    return _mnist_like("fashion-mnist", path, val_size, seed)


# -- CIFAR-10 ----------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR python batches (dicts of numpy arrays) and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 python batch (no data/labels entries)")
    return np.asarray(batch[b"data"]).reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"])


@register_dataset("cifar10")
def load_cifar10(path: str | Path | None = None, val_size: int | None = None, seed: int = 0) -> Dataset:
    """CIFAR-10 from the python batches folder (``cifar-10-batches-py``) or ``cifar10.npz``.

    The ``.npz`` holds ``x_train``, ``y_train``, ``x_test``, ``y_test`` with
    images ``(N, 32, 32, 3)`` or ``(N, 3, 32, 32)``, values 0..255.
    """
    folder = Path(path).expanduser() if path is not None else data_root("cifar10")
    npz = folder if folder.suffix == ".npz" else folder / "cifar10.npz"
    batches = folder / "cifar-10-batches-py" if (folder / "cifar-10-batches-py").is_dir() else folder
    if npz.exists():
        a = _npz_arrays(npz, ["x_train", "y_train", "x_test", "y_test"])
        train, test = (v if v.shape[1] == 3 else v.transpose(0, 3, 1, 2) for v in (a["x_train"], a["x_test"]))
        y_train, y_test = a["y_train"].reshape(-1), a["y_test"].reshape(-1)
    else:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        missing = [n for n in names if not (batches / n).exists()]
        if missing:
            raise DataError(
                f"cifar10: files not found in {folder}. Unpack cifar-10-python.tar.gz there (folder "
                f"cifar-10-batches-py with data_batch_1..5 and test_batch), or put a cifar10.npz with arrays "
                f"x_train, y_train, x_test, y_test; or pass path=<folder or .npz>"
            )
        parts = [_cifar_batch(batches / n) for n in names]
        train = np.concatenate([p[0] for p in parts[:5]])
        y_train = np.concatenate([p[1] for p in parts[:5]])
        test, y_test = parts[5]
    return image_dataset(
        "cifar10", train, test, y_train, y_test, levels=256, val_size=val_size, seed=seed,
        info={"classes": _CIFAR_CLASSES},
    )


# -- image folders -----------------------------------------------------------------------


@register_dataset("image-folder")
def load_image_folder(
    path: str | Path | None = None, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> Dataset:
    """Every image file under ``path`` (PNG, JPEG, ...), all of one size and mode (grey or RGB).

    Sub-folders, if any, are the classes (labels in sorted order). Images are
    split at random with ``seed``; 256 levels. The data set is named by the
    folder, so ``load_dataset(folder)`` (and ``flowforge train --data folder``)
    loads it again.
    """
    if path is None:
        raise DataError("image-folder needs path=<folder of images> (one sub-folder per class, optional)")
    from PIL import Image

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; put the images (PNG, JPEG, ...) in it")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    if len(files) < 3:
        raise DataError(f"{folder}: found {len(files)} image file(s) ({', '.join(_IMAGE_SUFFIXES)}); need at least 3")
    classes = sorted({p.parent.relative_to(folder).as_posix() for p in files})
    arrays, modes = [], set()
    for p in files:
        try:
            with Image.open(p) as im:
                mode = "L" if im.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
                modes.add(mode)
                arrays.append(np.asarray(im.convert(mode)))
        except OSError as e:
            raise DataError(f"{p}: cannot read the image ({e})") from None
    if len(modes) > 1:
        raise DataError(f"{folder}: mixes grey and colour images; convert them all to one mode")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"{folder}: images have different sizes {sorted(shapes)[:3]}; resize them to one size")
    x = np.stack(arrays)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    labels = np.array([classes.index(p.parent.relative_to(folder).as_posix()) for p in files])
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"split fractions must be in [0, 1) and sum below 1, got {val_fraction}, {test_fraction}")
    order = np.random.RandomState(seed).permutation(len(x))
    n_val, n_test = max(1, round(len(x) * val_fraction)), max(1, round(len(x) * test_fraction))
    test_idx, train_idx = order[:n_test], order[n_test:]
    return image_dataset(
        str(folder), x[train_idx], x[test_idx], labels[train_idx], labels[test_idx], levels=256,
        val_size=n_val, seed=seed, info={"classes": classes},
    )
