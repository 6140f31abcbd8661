"""Models are data: ``build(name, **options)`` -> :class:`~flowforge.distributions.Flow`.

Every builder registers itself with :func:`register`. ``flow.config`` is the
complete record of the model: its name, ``config_version`` and every option
of the builder with its value, defaults included (read from the builder's
signature), in plain JSON values. ``build(**flow.config)`` rebuilds the same
model from that record alone, so a later change of a default cannot change a
saved model. Records of format 1 (options the caller passed, defaults implied)
are completed with the defaults of that time by :func:`upgrade_config`.

The generic key ``preprocess`` prepends fixed bijections (e.g. ``["standardize"]``)
to the model's transform; their statistics are set by :func:`fit_preprocessing`
and saved as buffers, so ``log_prob`` is in the user's data units.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from torch import Tensor

from ..distributions import Flow
from ..errors import ConfigError
from ..registry import REQUIRED, Registry
from ..transforms import Compose, Standardize, Transform

__all__ = [
    "CONFIG_VERSION", "MODELS", "PREPROCESSING", "register", "build", "available", "model_options",
    "register_preprocessing", "fit_preprocessing", "upgrade_config",
]

#: version of the ``flow.config`` record: 2 = complete (every option recorded)
CONFIG_VERSION = 2

MODELS: Registry[Callable[..., Flow]] = Registry("model")
PREPROCESSING: Registry[Callable[..., Transform]] = Registry("preprocessing", "preprocessings")
register = MODELS.register


def register_preprocessing(name: str) -> Callable:
    """Decorator: ``factory(event_shape, **options) -> Transform`` usable in ``preprocess=[...]``."""
    return PREPROCESSING.register(name)


register_preprocessing("standardize")(lambda event_shape: Standardize(tuple(event_shape)))


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    return MODELS.names()


def model_options(name: str) -> list[str]:
    """The option names model ``name`` accepts; a clear error listing the models if unknown."""
    return list(MODELS.options(name))


def build(name: str, **options: Any) -> Flow:
    """Build the model ``name`` from keyword hyper-parameters; options left out take their defaults.

    Example:
        >>> flow = build("realnvp", dim=2, layers=6, hidden=128)
        >>> flow.log_prob(flow.sample(4)).shape
        torch.Size([4])
        >>> flow.config["mask"], flow.config["config_version"]
        ('alternating', 2)
    """
    version = options.pop("config_version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(
            f"model config version {version!r} is not this flowforge's ({CONFIG_VERSION}); "
            "pass older records through flowforge.models.upgrade_config (flowforge.load does)"
        )
    defaults = MODELS.options(name)
    preprocess = [_complete_preprocessing(spec) for spec in options.pop("preprocess", None) or []]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(p for p in defaults if not p.startswith("_"))
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; its options are: {valid}")
    missing = [k for k, v in defaults.items() if v is REQUIRED and k not in options]
    if missing:
        raise ConfigError(f"model {name!r} needs the option(s) {', '.join(missing)}")
    config = _plain({**{k: v for k, v in defaults.items() if v is not REQUIRED}, **options}, f"model {name!r}")
    try:
        flow = MODELS[name](**config)
    except ValueError as e:  # a builder's check of an option value
        raise e if isinstance(e, ConfigError) else ConfigError(f"model {name!r}: {e}") from e
    if preprocess:
        layers = [_preprocessing_layer(spec, tuple(flow.event_shape)) for spec in preprocess]
        flow.transform = Compose([*layers, flow.transform])
    flow.config = {"name": name, "config_version": CONFIG_VERSION, **config, "preprocess": preprocess}
    return flow


def _plain(config: dict[str, Any], what: str) -> dict[str, Any]:
    """``config`` as plain JSON values (tuples become lists), or a ConfigError naming the option."""
    try:
        return json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError):
        bad = [k for k, v in config.items() if not _is_json(v)]
        raise ConfigError(f"{what}: option(s) {', '.join(bad)} are not plain JSON values") from None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _complete_preprocessing(spec: str | dict) -> str | dict:
    """A ``preprocess`` item with every option of its factory; a bare name when it has none."""
    options = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = options.pop("type", None)
    defaults = PREPROCESSING.options(kind, skip=1)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ConfigError(f"preprocessing {kind!r} has no option(s) {', '.join(unknown)}; "
                          f"its options are: {', '.join(defaults) or 'none'}")
    missing = [k for k, v in defaults.items() if v is REQUIRED and k not in options]
    if missing:
        raise ConfigError(f"preprocessing {kind!r} needs the option(s) {', '.join(missing)}")
    if not defaults:
        return kind
    values = {**defaults, **options}
    return {"type": kind, **_plain({k: values[k] for k in defaults}, f"preprocessing {kind!r}")}


def _preprocessing_layer(spec: str | dict, event_shape: tuple[int, ...]) -> Transform:
    options = {"type": spec} if isinstance(spec, str) else dict(spec)
    return PREPROCESSING[options.pop("type")](event_shape, **options)


#: the defaults of format-1 records (flowforge 0.1.0), frozen: a format-1 checkpoint means these
_FORMAT1_DEFAULTS: dict[str, dict[str, Any]] = {
    "realnvp": {"dim": 2, "layers": 6, "hidden": 128, "hidden_layers": 2, "mask": "alternating",
                "conditioner": "separate", "scale_bound": 1.0, "context_dim": 0, "base": "normal", "shape": None,
                "scales": 2, "blocks": 2, "batch_norm": False},
    "glow": {"shape": [1, 8, 8], "scales": 2, "layers": 8, "hidden": 128, "coupling": "affine",
             "permutation": "lu", "scale_bound": 2.0, "split_prior": True, "context_dim": 0, "base": "normal"},
    "maf": {"dim": 2, "layers": 5, "hidden": 128, "hidden_layers": 2, "permutation": "reverse", "batch_norm": False,
            "residual": False, "scale_bound": 0.5, "context_dim": 0, "base": "normal", "seed": 0},
    "iaf": {"dim": 2, "layers": 5, "hidden": 128, "hidden_layers": 2, "permutation": "reverse", "residual": False,
            "scale_bound": 0.5, "context_dim": 0, "base": "normal", "seed": 0},
    "nice": {"dim": None, "shape": None, "layers": 4, "hidden": 256, "hidden_layers": 4, "context_dim": 0,
             "base": "logistic"},
}
_FORMAT1_PREPROCESSING = {"logit": {"alpha": 0.05}}


def _format1_names(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """Options renamed since format 1: image Real NVP's ResNet blocks were ``hidden_layers``, now ``blocks``."""
    if name == "realnvp" and record.get("shape") is not None and "hidden_layers" in record:
        return {"blocks": record["hidden_layers"], "hidden_layers": _FORMAT1_DEFAULTS["realnvp"]["hidden_layers"]}
    return {}


def upgrade_config(record: dict[str, Any]) -> dict[str, Any]:
    """A model record of any known format as a complete record of :data:`CONFIG_VERSION`.

    Format 1 (no ``config_version``) gets the defaults of its time and today's names
    for renamed options, so it builds exactly the model it was saved as; other
    versions are refused with a message.
    """
    version = record.get("config_version", 1)
    if version == CONFIG_VERSION:
        return dict(record)
    if version != 1:
        raise ConfigError(f"model config version {version!r} is unknown to this flowforge (it reads 1 and "
                          f"{CONFIG_VERSION}); upgrade flowforge")
    name = record.get("name")
    MODELS[name]  # an unknown name says so
    if name not in _FORMAT1_DEFAULTS:
        raise ConfigError(f"model {name!r} did not exist in config format 1; this record cannot be read exactly")
    preprocess = [
        {**_FORMAT1_PREPROCESSING.get(spec["type"], {}), **spec} if isinstance(spec, dict) else spec
        for spec in record.get("preprocess") or []
    ]
    return {**_FORMAT1_DEFAULTS[name], **record, **_format1_names(name, record), "preprocess": preprocess,
            "config_version": CONFIG_VERSION}


def fit_preprocessing(flow: Flow, x: Tensor) -> Flow:
    """Fit the statistics of the flow's leading preprocessing layers on training data ``x``."""
    transform = flow.transform
    if not isinstance(transform, Compose):
        return flow
    for layer in transform:
        fit = getattr(layer, "fit", None)
        if fit is None:
            break
        fit(x)
        x = layer(x)[0]
    return flow
