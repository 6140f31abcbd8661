"""scikit-learn adapter: a flow as a density estimator, a drop-in for ``KernelDensity``.

    score_samples(X)[i] = log p(X[i])  (nats),   score(X) = sum_i log p(X[i])

``FlowDensity().fit(X)`` trains the library's default table model with its
recipe (the same defaults as ``flowforge train`` on a CSV), holding out
``validation_fraction`` of the rows to keep the best weights. Requires the
``[sklearn]`` extra.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

try:
    from sklearn.base import BaseEstimator, DensityMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("flowforge.sklearn needs scikit-learn: pip install 'flowforge[sklearn]'") from e

import numpy as np
import torch

from .data.tabular import table_dataset
from .models import build
from .training import TrainConfig, fit
from .training.recipes import DEFAULT_MODELS, build_for_data, train_defaults

__all__ = ["FlowDensity"]

_SCORE_BATCH = 8192


class FlowDensity(DensityMixin, BaseEstimator):
    """A normalizing flow fitted by maximum likelihood, with scikit-learn's API.

    Args:
        model: a ``flowforge.models`` name; None = the library's default for tables.
        steps, batch_size, lr: training settings; None = the model's recipe.
        options: model options on top of the recipe's (e.g. ``{"layers": 4}``).
        validation_fraction: share of the rows held out to pick the best weights.
        random_state: seeds the split, the weights and the batch order.
        device: torch device the flow trains and scores on.

    Shapes:
        X: ``(n_samples, n_features)``; ``score_samples``: ``(n_samples,)``;
        ``sample(n)``: ``(n, n_features)``.

    Example:
        >>> from sklearn.datasets import make_moons
        >>> X = make_moons(500, noise=0.05, random_state=0)[0]
        >>> est = FlowDensity(steps=20, random_state=0).fit(X)
        >>> est.score_samples(X[:3]).shape
        (3,)
    """

    def __init__(
        self,
        model: str | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        options: dict[str, Any] | None = None,
        validation_fraction: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
    ):
        self.model = model
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.options = options
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def fit(self, X, y=None) -> FlowDensity:
        """Train a flow on the rows of ``X`` (``y`` is ignored); returns self."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=3)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        dataset = table_dataset(X, "array", val_fraction=self.validation_fraction, test_fraction=0.0, seed=seed,
                                dequantize="none")
        name = self.model or DEFAULT_MODELS["vector"]
        defaults = train_defaults(name, dataset, self.steps)
        settings = {"batch_size": self.batch_size, "lr": self.lr}
        train = {**defaults, **{k: v for k, v in settings.items() if v is not None}}
        names = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(
            **{k: v for k, v in train.items() if k in names}, seed=seed, device=self.device, progress=False
        )
        torch.manual_seed(seed)
        flow = build_for_data(name, dataset, **(self.options or {}))
        result = fit(flow, dataset, config)
        self.flow_ = flow.eval()
        self.train_summary_ = result.summary
        return self

    def score_samples(self, X) -> np.ndarray:
        """Log-density of each row of ``X`` in nats, shape ``(n_samples,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        param = next(self.flow_.parameters())
        x = torch.as_tensor(X, dtype=param.dtype, device=param.device)
        with torch.no_grad():
            parts = [self.flow_.log_prob(x[i : i + _SCORE_BATCH]) for i in range(0, len(x), _SCORE_BATCH)]
        return torch.cat(parts).double().cpu().numpy()

    def score(self, X, y=None) -> float:
        """Total log-likelihood of ``X`` (as ``KernelDensity.score``)."""
        return float(self.score_samples(X).sum())

    def sample(self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None) -> np.ndarray:
        """``n_samples`` draws from the fitted flow, shape ``(n_samples, n_features)``."""
        check_is_fitted(self)
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        device = next(self.flow_.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            x = self.flow_.sample(n_samples)
        return x.double().cpu().numpy()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the fitted flow as its config and weights (no modules, no code)."""
        state = self.__dict__.copy()
        flow = state.pop("flow_", None)
        if flow is not None:
            state["flow_"] = {"config": flow.config, "weights": {k: v.cpu() for k, v in flow.state_dict().items()}}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("flow_", None)
        self.__dict__.update(state)
        if saved is not None:
            config = dict(saved["config"])
            flow = build(config.pop("name"), **config)
            flow.load_state_dict(saved["weights"])
            self.flow_ = flow.to(self.device).eval()
