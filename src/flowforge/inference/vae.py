"""Variational auto-encoder with an IAF posterior and an optional MAF prior.

Encoder ``x -> (mu, log sigma, h)``; posterior sample by reparameterization, then
``T`` IAF steps conditioned on the context ``h`` (Kingma et al. 2016)::

    z_0 = mu + sigma * eps,   eps ~ N(0, I),   z_T = g_T(... g_1(z_0; h) ...; h)
    log q(z_T | x) = log N(z_0; mu, sigma^2) - sum_t log|det dg_t / dz_{t-1}|
    log w = log p(x | z_T) + log p(z_T) - log q(z_T | x)
    ELBO = E[log w],   IW_k = E[log (1/k) sum_{i<=k} w_i]   (ELBO = IW_1 <= IW_k <= log p(x))

The prior ``p(z)`` is ``N(0, I)`` or a MAF (the autoregressive prior, whose
density is one pass per evaluation). The decoder is Bernoulli on binarized
pixels, or a discretized logistic on the data's ``levels`` integer values (bin
width 1, so ``log p(x)`` is a proper discrete log-probability in nats).

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", arXiv:1312.6114;
    Kingma et al., "Improving Variational Inference with Inverse Autoregressive
    Flow", arXiv:1606.04934; Burda et al., "Importance Weighted Autoencoders",
    arXiv:1509.00519; Salimans et al., "PixelCNN++", arXiv:1701.05517
    (discretized logistic).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Dataset
from ..distributions import StandardNormal
from ..errors import ConfigError, DataError
from ..mode import in_mode
from ..models import CONFIG_VERSION, build
from ..nets import MLP
from ..training import Run, TrainConfig, TrainResult, train
from ..training.objectives import DataBatches, Objective

__all__ = ["ELBO", "VAE", "discretized_logistic_log_prob", "fit_vae"]

_LOG_2PI = math.log(2 * math.pi)
_POSTERIORS = ("diag", "iaf")
_PRIORS = ("normal", "maf")
_DECODERS = ("bernoulli", "logistic")


def discretized_logistic_log_prob(x: Tensor, loc: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """``log P(x)`` for integers ``x`` in ``[0, levels - 1]`` under a logistic binned at width 1.

    ``P(x) = sigma((x + 1/2 - loc) / s) - sigma((x - 1/2 - loc) / s)``, the end bins
    taking the tails. Computed as ``log sigma(a) - softplus(b) + log(1 - exp(b - a))``,
    stable for any ``a > b``. Shapes: all ``(..., D)``, returns the element-wise ``(..., D)``.
    """
    inv_s = torch.exp(-log_scale)
    a = (x + 0.5 - loc) * inv_s  # upper edge
    b = (x - 0.5 - loc) * inv_s  # lower edge
    interior = -F.softplus(-a) - F.softplus(b) + torch.log(-torch.expm1(-inv_s))
    first = -F.softplus(-a)  # log sigma(a): the bin (-inf, 1/2]
    last = -F.softplus(b)  # log (1 - sigma(b)): the bin [levels - 3/2, inf)
    return torch.where(x <= 0, first, torch.where(x >= levels - 1, last, interior))


class VAE(nn.Module):
    """VAE over flattened quantized data (e.g. digits, 64 pixels of 17 levels).

    Args:
        data_dim: pixels per example.
        levels: number of integer values per pixel (data in ``[0, levels - 1]``).
        latent: latent dimension.
        hidden, hidden_layers: width and number of hidden layers of the encoder and decoder MLPs (ELU).
        posterior: ``"diag"`` (Gaussian) or ``"iaf"`` (Gaussian then IAF steps).
        prior: ``"normal"`` or ``"maf"``.
        decoder: ``"bernoulli"`` (pixels binarized at half range) or ``"logistic"``.
        flow_layers, flow_hidden: IAF steps / MAF layers and their MADE width.
        context_dim: width of the encoder's context ``h`` fed to the IAF steps.

    Shapes:
        x: ``(B, *shape)`` integer-valued floats with ``prod(shape) = data_dim``.
    """

    def __init__(
        self,
        data_dim: int,
        levels: int = 17,
        latent: int = 8,
        hidden: int = 256,
        hidden_layers: int = 2,
        posterior: str = "diag",
        prior: str = "normal",
        decoder: str = "bernoulli",
        flow_layers: int = 4,
        flow_hidden: int = 128,
        context_dim: int = 32,
    ):
        super().__init__()
        #: the complete record: every constructor argument (JSON values) under ``name`` "vae";
        #: :func:`VAE.from_config` (and ``flowforge.load``) rebuild the architecture from it
        self.config: dict[str, Any] = {
            "name": "vae", "config_version": CONFIG_VERSION,
            **{k: v for k, v in locals().items() if k not in ("self", "__class__")},
        }
        for key, value, valid in (("posterior", posterior, _POSTERIORS), ("prior", prior, _PRIORS),
                                  ("decoder", decoder, _DECODERS)):
            if value not in valid:
                raise ConfigError(f"unknown {key} {value!r}; choose from {', '.join(valid)}")
        if levels < 2:
            raise ConfigError(f"levels must be >= 2, got {levels}")
        self.data_dim, self.levels, self.latent = data_dim, levels, latent
        self.decoder_kind = decoder
        self.context_dim = context_dim if posterior == "iaf" else 0
        self.encoder = MLP(data_dim, 2 * latent + self.context_dim, hidden, hidden_layers, activation="elu")
        out = data_dim * (2 if decoder == "logistic" else 1)
        self.decoder = MLP(latent, out, hidden, hidden_layers, activation="elu")
        self.flow = (
            build("iaf", dim=latent, layers=flow_layers, hidden=flow_hidden, context_dim=self.context_dim).transform
            if posterior == "iaf" else None
        )
        self.prior = (
            build("maf", dim=latent, layers=flow_layers, hidden=flow_hidden) if prior == "maf"
            else StandardNormal((latent,))
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        """The VAE a :attr:`config` record describes."""
        options = {k: v for k, v in config.items() if k not in ("name", "config_version")}
        if config.get("config_version") != CONFIG_VERSION:
            raise ConfigError(f"VAE record of config version {config.get('config_version')!r}; this flowforge "
                              f"reads {CONFIG_VERSION}")
        return cls(**options)

    # -- data ------------------------------------------------------------------------------

    def prepare(self, x: Tensor) -> Tensor:
        """Flattened decoder targets: integers in ``[0, levels - 1]`` (logistic) or ``{0, 1}`` (Bernoulli),
        in the VAE's dtype and on its device."""
        x = x.reshape(x.shape[0], -1).to(self.encoder[0].weight)
        if x.shape[1] != self.data_dim:
            raise DataError(f"expected {self.data_dim} values per example, got a batch of shape {tuple(x.shape)}")
        if self.decoder_kind == "bernoulli":
            return (x >= (self.levels - 1) / 2).to(x.dtype)
        return x

    def observed(self, x: Tensor) -> Tensor:
        """The data as the decoder models them, in pixel units, shaped like ``x`` (binarized pixels at 0 or
        ``levels - 1`` with the Bernoulli decoder)."""
        scale = self.levels - 1 if self.decoder_kind == "bernoulli" else 1
        return (self.prepare(x) * scale).view(x.shape)

    def _encoder_input(self, x: Tensor) -> Tensor:
        return x if self.decoder_kind == "bernoulli" else x / (self.levels - 1)

    # -- the model -------------------------------------------------------------------------

    def posterior_sample(self, x: Tensor, k: int = 1) -> tuple[Tensor, Tensor]:
        """``k`` reparameterized samples of ``q(z | x)`` per example and their log-density.

        Shapes: x ``(B, data_dim)`` (prepared) -> z ``(B, k, latent)``, log_q ``(B, k)``.
        """
        eps = torch.randn(x.shape[0], k, self.latent, dtype=x.dtype, device=x.device)
        return self.posterior_transform(x, eps)

    def posterior_transform(self, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
        """The posterior sample ``z`` reached from the noise ``eps ~ N(0, I)``, and ``log q(z | x)``.

        Shapes: x ``(B, data_dim)``, eps ``(B, k, latent)`` -> z ``(B, k, latent)``, log_q ``(B, k)``.
        """
        out = self.encoder(self._encoder_input(x))
        loc, raw_scale, h = out.split([self.latent, self.latent, self.context_dim], dim=1)
        log_scale = 5.0 * torch.tanh(raw_scale / 5.0)  # bounded: sigma in [e^-5, e^5]
        z = loc[:, None] + torch.exp(log_scale)[:, None] * eps
        log_q = -0.5 * (eps * eps).sum(-1) - log_scale.sum(-1, keepdim=True) - 0.5 * self.latent * _LOG_2PI
        if self.flow is not None:
            b, k = eps.shape[:2]
            context = h[:, None].expand(-1, k, -1).reshape(-1, self.context_dim)
            z, log_abs_det = self.flow.inverse(z.reshape(-1, self.latent), context)
            z, log_q = z.view(b, k, self.latent), log_q - log_abs_det.view(b, k)
        return z, log_q

    def _decode(self, z: Tensor) -> Tensor:
        out = self.decoder(z)
        return out if self.decoder_kind == "bernoulli" else out.unflatten(-1, (2, self.data_dim))

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x | z)`` in nats. Shapes: x ``(B, data_dim)``, z ``(B, k, latent)`` -> ``(B, k)``."""
        out = self._decode(z)
        if self.decoder_kind == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x[:, None].expand_as(out), reduction="none").sum(-1)
        loc = (self.levels - 1) * (0.5 + out[..., 0, :])
        log_scale = 3.0 * torch.tanh(out[..., 1, :] / 3.0)  # bounded: s in [e^-3, e^3] pixel units
        return discretized_logistic_log_prob(x[:, None], loc, log_scale, self.levels).sum(-1)

    def log_weights(self, x: Tensor, k: int = 1) -> Tensor:
        """``log w = log p(x | z) + log p(z) - log q(z | x)`` for ``k`` samples per example, ``(B, k)``."""
        z, log_q = self.posterior_sample(x, k)
        log_prior = self.prior.log_prob(z.reshape(-1, self.latent)).view(x.shape[0], k)
        return self.log_likelihood(x, z) + log_prior - log_q

    def forward(self, x: Tensor) -> Tensor:
        """The single-sample ELBO per example (the training objective), ``(B,)``."""
        return self.log_weights(x, 1)[:, 0]

    @torch.no_grad()
    def evaluate(self, x: Tensor, k: int = 1000, batch_size: int = 64) -> dict[str, float]:
        """Mean ELBO and importance-weighted log-likelihood bound with ``k`` samples, nats per example.

        Args:
            x: raw data ``(N, *shape)`` (it is prepared here).
        """
        if k < 1:
            raise ConfigError(f"k must be a positive number of importance samples, got {k}")
        x = self.prepare(x)
        elbo, iw = [], []
        with in_mode(self, training=False):
            for start in range(0, x.shape[0], batch_size):
                log_w = self.log_weights(x[start : start + batch_size], k)
                elbo.append(log_w.mean(1))
                iw.append(torch.logsumexp(log_w, 1) - math.log(k))
        return {"elbo": float(torch.cat(elbo).mean()), "iw_loglik": float(torch.cat(iw).mean()), "k": k}

    def _mean_image(self, z: Tensor) -> Tensor:
        """Decoder mean in pixel units ``[0, levels - 1]``, ``(..., data_dim)``."""
        out = self._decode(z)
        if self.decoder_kind == "bernoulli":
            return torch.sigmoid(out) * (self.levels - 1)
        return ((self.levels - 1) * (0.5 + out[..., 0, :])).clamp(0, self.levels - 1)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean at one posterior sample, in pixel units, shaped like ``x``."""
        z, _ = self.posterior_sample(self.prepare(x), 1)
        return self._mean_image(z[:, 0]).view(x.shape)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Decoder means at ``n`` prior samples, ``(n, data_dim)`` in pixel units."""
        return self._mean_image(self.prior.sample(n))


class ELBO(Objective):
    """The VAE's objective: the step loss is ``-ELBO`` (one posterior sample) on a mini-batch of
    ``dataset.train``; the validation figure ``val_neg_elbo`` is ``-ELBO`` on ``dataset.val`` with the
    noise of a fixed seed; the final scores are the test ELBO and the IW bound with ``k`` samples.
    """

    kind = "vae"
    columns = ("val_neg_elbo",)

    def __init__(self, vae: VAE, dataset: Dataset, k: int = 1000):
        if dataset.levels is None:
            raise ConfigError(f"the VAE models quantized data; {dataset.name!r} is continuous (no pixel levels)")
        if k < 1:
            raise ConfigError(f"k must be a positive number of importance samples, got {k}")
        self.module, self.dataset, self.k = vae, dataset, k

    def setup(self, device: torch.device, batch_size: int | None, seed: int) -> None:
        self.batches = DataBatches(self.module.prepare(self.dataset.train), None, batch_size, seed)

    def loss(self, model: nn.Module, step: int) -> Tensor:
        return -model(self.batches.next()[0]).mean()

    def validate(self, module: nn.Module) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1234)
            return {"val_neg_elbo": -module.evaluate(self.dataset.val, k=1)["elbo"]}

    def scores(self, module: nn.Module) -> dict[str, Any]:
        test = module.evaluate(self.dataset.test, k=self.k)
        return {"test_elbo": test["elbo"], "test_iw_loglik": test["iw_loglik"], "k": self.k,
                "unit": "nats per example", "n_test": int(self.dataset.test.shape[0])}

    def record(self) -> dict[str, Any]:
        return {"data": self.dataset.describe(), "objective": {"k": self.k}}

    def rng_state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        return self.batches.state()

    def load_rng_state(self, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
        self.batches.load_state(tensors, scalars)


def fit_vae(
    vae: VAE,
    dataset: Dataset,
    steps: int = 3000,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    k: int = 1000,
    progress: bool = False,
    out: str | Path | Run | None = None,
    resume: bool = False,
) -> TrainResult:
    """Maximize the single-sample ELBO on mini-batches of ``dataset.train`` (:class:`ELBO` on
    :func:`~flowforge.training.train`): Adam with cosine decay, gradients clipped at norm 100;
    the VAE ends with the weights of the best validation ELBO. ``result.summary`` holds the test
    ELBO and IW bound, ``result.losses`` the ``-ELBO`` of every step (nats per example).
    """
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, schedule="cosine", clip_grad=100.0, seed=seed,
                         eval_every=max(steps // 20, 1), progress=progress)
    return train(ELBO(vae, dataset, k), config, out, resume)
