"""Checkpoints: safetensors weights + JSON metadata. Loading never unpickles.

A run folder holds:

* ``model.safetensors``: the best weights; metadata key ``flowforge`` is JSON
  with ``format_version``, ``model`` (the complete config ``build`` takes;
  format 1's partial records are completed when read), ``data`` (what the
  model was trained on) and ``versions``.
* ``last.safetensors``: the latest state for ``--resume``: weights
  (``model.*``), optimizer tensors (``optim.*``), RNG states (``rng.*``); its
  JSON holds the step counter and the optimizer's non-tensor state.

Files are written to a temporary name, flushed, and renamed, so a kill at any
instant leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..distributions import Flow
from ..errors import CheckpointError, ConfigError
from ..models.registry import build, upgrade_config

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "MODEL_FILE",
    "LAST_FILE",
    "save_checkpoint",
    "load_flow",
    "load_module",
    "load_weights",
    "read_checkpoint",
    "read_metadata",
    "resolve_checkpoint",
    "atomic_write_text",
    "save_training_state",
    "load_training_state",
]

FORMAT_VERSION = 2  # 2: the model record is complete (see flowforge.models.registry)
MODEL_FILE = "model.safetensors"
LAST_FILE = "last.safetensors"
_META_KEY = "flowforge"


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"flowforge": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(clean, tmp, metadata={_META_KEY: json.dumps(meta)})
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: str | Path, flow: Flow, meta: dict[str, Any] | None = None) -> Path:
    """Save ``flow``'s weights and config (plus ``meta``) to ``path`` (a file or a run folder)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / MODEL_FILE
    if not flow.config:
        raise CheckpointError("this flow has no config (build it with flowforge.models.build to save it)")
    record = {"format_version": FORMAT_VERSION, "model": flow.config, "versions": _versions(), **(meta or {})}
    _atomic_save(flow.state_dict(), path, record)
    return path


def resolve_checkpoint(path: str | Path, name: str = MODEL_FILE) -> Path:
    """A run folder or a file -> the checkpoint file, or a clear error."""
    path = Path(path)
    if path.is_dir():
        file = path / name
        if not file.exists():
            raise CheckpointError(f"{path}: no checkpoint in this folder (expected {name}); was training finished?")
        return file
    if not path.exists():
        raise CheckpointError(f"{path}: no such run folder or checkpoint file")
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint file, validated."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(_META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint (truncated or corrupt?): {e}") from None
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without flowforge metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt metadata JSON: {e}") from None
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this flowforge supports "
            f"({FORMAT_VERSION}); upgrade flowforge"
        )
    if not isinstance(meta.get("model"), dict) or "name" not in meta["model"]:
        raise CheckpointError(f"{path}: metadata has no model config")
    try:
        meta["model"] = upgrade_config(meta["model"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return meta


def read_tensors(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint whose names start with ``prefix``, without it."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k[len(prefix) :]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors (truncated or corrupt?): {e}") from None


def _rebuild(meta: dict[str, Any], path: Path) -> Flow:
    config = dict(meta["model"])
    name = config.pop("name")
    try:
        return build(name, **config)
    except ConfigError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config: {e}") from None


def load_weights(flow: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load checked ``tensors`` into ``flow``: shapes and finiteness before anything is copied, then the
    names after the modules' own translation of older layouts (e.g. ``ParallelMLP``'s per-layer weights);
    on a refusal the module's weights are not to be used."""
    expected = flow.state_dict()
    wrong = [
        f"{k}: {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite values in {bad[:3]}")
    parts = [f"shape mismatch {wrong[:3]}"] if wrong else []
    if not wrong:
        try:
            missing, unexpected = flow.load_state_dict(tensors, strict=False)
        except RuntimeError as e:  # a translated layout whose shapes do not fit
            raise CheckpointError(f"{path}: weights do not fit the model ({e})") from None
        parts += [f"missing {sorted(missing)[:3]}"] if missing else []
        parts += [f"unexpected {sorted(unexpected)[:3]}"] if unexpected else []
    if parts:
        raise CheckpointError(f"{path}: weights do not fit the model ({'; '.join(parts)})")


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(metadata, model tensors)`` of a checkpoint file (either kind), validated."""
    file = resolve_checkpoint(path)
    meta = read_metadata(file)
    return meta, read_tensors(file, "model." if file.name == LAST_FILE else "")


def load_flow(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Flow, dict[str, Any]]:
    """Rebuild a flow from a run folder or a ``.safetensors`` file; returns ``(flow, metadata)``.

    The model is rebuilt from the checkpoint's own config, checked against the
    stored tensors (names and shapes) before any weight is used, then loaded.
    """
    return load_module(path, map_location, {"vae": _not_a_flow})


def _not_a_flow(record: dict[str, Any]) -> nn.Module:
    raise ConfigError(f"it holds a {record['name']} model, not a flow; rebuild it with flowforge.load")


def load_module(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    builders: dict[str, Callable[[dict[str, Any]], nn.Module]] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_flow` for any checkpointed module: a record whose ``name`` is in ``builders`` is
    rebuilt by ``builders[name](record)`` (e.g. the VAE), any other by ``models.build``."""
    file = resolve_checkpoint(path)
    meta, tensors = read_checkpoint(file)
    builder = (builders or {}).get(meta["model"]["name"])
    if builder is None:
        module = _rebuild(meta, file)
    else:
        try:
            module = builder(meta["model"])
        except ConfigError as e:
            raise CheckpointError(f"{file}: cannot rebuild the model from its config: {e}") from None
    load_weights(module, tensors, file)
    module.eval()
    return module.to(map_location), meta


def save_training_state(
    path: Path,
    flow: Flow,
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    meta: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Everything ``--resume`` needs, in one atomically written file (``extra``: more
    prefixed tensors, e.g. the weights' moving average, read back with :func:`read_tensors`)."""
    tensors = {f"model.{k}": v for k, v in flow.state_dict().items()} | (extra or {})
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
    scalars = {
        str(pid): {k: v for k, v in s.items() if not torch.is_tensor(v)} for pid, s in opt["state"].items()
    }
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    record = {
        "format_version": FORMAT_VERSION,
        "model": flow.config,
        "versions": _versions(),
        "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
        **meta,
    }
    _atomic_save(tensors, path, record)


def load_training_state(
    path: Path, flow: Flow, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore weights and optimizer from a ``last.safetensors``; returns ``(rng tensors, metadata)``."""
    meta = read_metadata(path)
    if meta["model"] != flow.config:
        raise CheckpointError(f"{path}: saved for model {meta['model']}, but the run now builds {flow.config}")
    load_weights(flow, read_tensors(path, "model."), path)
    optim_tensors = read_tensors(path, "optim.")
    state: dict[int, dict[str, Any]] = {}
    for key, value in optim_tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, scalars in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(scalars)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    return read_tensors(path, "rng."), meta
