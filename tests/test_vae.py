"""VAE with IAF posterior / MAF prior: the likelihood, the posterior density, the bounds, the CLI."""
import json
import math

import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.data import load_dataset
from flowforge.inference.vae import VAE, discretized_logistic_log_prob

DATA = torch.randint(0, 17, (6, 1, 8, 8), generator=torch.Generator().manual_seed(0)).double()


def tiny(**options):
    return VAE(64, levels=17, latent=3, hidden=16, flow_hidden=8, context_dim=4, **options).double()


def test_discretized_logistic_sums_to_one():
    levels = 5
    x = torch.arange(levels, dtype=torch.float64)[:, None].expand(levels, 7)
    loc = torch.randn(7, dtype=torch.float64) * 3 + 2
    log_scale = torch.randn(7, dtype=torch.float64)
    log_p = discretized_logistic_log_prob(x, loc, log_scale, levels)
    assert torch.logsumexp(log_p, 0) == pytest.approx(torch.zeros(7, dtype=torch.float64), abs=1e-12)
    sharp = discretized_logistic_log_prob(torch.tensor([2.0]), torch.tensor([2.0]), torch.tensor([-20.0]), levels)
    assert sharp.item() == pytest.approx(0.0, abs=1e-6)  # all mass in one bin, still finite


@pytest.mark.parametrize("options", [
    {"posterior": "diag"}, {"posterior": "iaf"}, {"posterior": "iaf", "prior": "maf", "decoder": "bernoulli"},
])
def test_shapes_and_samples(options):
    vae = tiny(**options)
    x = vae.prepare(DATA)
    z, log_q = vae.posterior_sample(x, k=5)
    assert z.shape == (6, 5, 3) and log_q.shape == (6, 5)
    assert vae.log_weights(x, 5).shape == (6, 5) and vae(x).shape == (6,)
    assert vae.reconstruct(DATA).shape == DATA.shape and vae.sample(4).shape == (4, 64)
    assert torch.isfinite(vae.log_weights(x, 5)).all()


def test_iaf_posterior_log_density_is_change_of_variables():
    """log q(z) = log N(eps) - log|det dz/deps| with the Jacobian from autograd."""
    vae = tiny(posterior="iaf")
    with torch.no_grad():  # make the IAF steps far from the identity
        for p in vae.flow.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x = vae.prepare(DATA[:1])
    eps = torch.randn(3, dtype=torch.float64)
    z, log_q = vae.posterior_transform(x, eps[None, None])
    jac = torch.autograd.functional.jacobian(lambda e: vae.posterior_transform(x, e[None, None])[0][0, 0], eps)
    log_n = -0.5 * (eps @ eps) - 1.5 * math.log(2 * math.pi)
    assert log_q.item() == pytest.approx((log_n - torch.linalg.slogdet(jac).logabsdet).item(), abs=1e-10)


def test_bounds_are_ordered_and_tighten_with_k():
    torch.manual_seed(0)
    vae = tiny(posterior="iaf")
    ev = vae.evaluate(DATA, k=20)
    assert ev["elbo"] <= ev["iw_loglik"]
    iw = {k: sum(vae.evaluate(DATA, k=k)["iw_loglik"] for _ in range(10)) / 10 for k in (1, 10, 100)}
    # E[IW bound] rises with k; k = 1 vs 100 is far outside the Monte Carlo noise of 10 repeats
    assert iw[1] < iw[100] and iw[10] < iw[100]
    with pytest.raises(ValueError, match="unknown posterior 'flow'; choose from diag, iaf"):
        tiny(posterior="flow")


def test_cli_vae(tmp_path):
    out = tmp_path / "vae"
    argv = ["vae", "--data", "digits", "--posterior", "iaf", "--prior", "maf", "--latent", "2", "--hidden", "16",
            "--steps", "5", "--k", "3", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 3 and summary["test_elbo"] <= summary["test_iw_loglik"] < 0
    assert (out / "vae.png").exists()
    for name in ("model.safetensors", "last.safetensors", "metrics.csv"):
        assert (out / name).exists(), name
    vae = ff.load(out)  # the run rebuilds the VAE from its own record
    assert isinstance(vae, VAE) and vae.config["prior"] == "maf" and vae.config["latent"] == 2
    assert vae.evaluate(load_dataset("digits").test[:20], k=2)["elbo"] < 0
    assert main(["vae", "--data", "moons", "--out", str(out)]) == 2  # not quantized


def test_commands_for_flows_refuse_a_vae_run_by_name(tmp_path, capsys):
    ff.save(tiny().float(), tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    assert "holds a vae model, not a flow; rebuild it with flowforge.load" in capsys.readouterr().err
    assert isinstance(ff.load(tmp_path / "run"), VAE)
