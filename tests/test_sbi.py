"""flowforge.sbi.build_estimator: sbi's shape conventions, z-scoring, and an NPE
posterior on a linear-Gaussian simulator at least as close to the analytic one
as sbi's own NSF with the same simulations."""
import pytest
import torch

pytest.importorskip("sbi")
from sbi.inference import NPE  # noqa: E402
from sbi.neural_nets import posterior_nn  # noqa: E402
from torch.distributions import MultivariateNormal  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from flowforge.sbi import FlowEstimator, build_estimator  # noqa: E402


def test_shapes_follow_sbi():
    theta, x = 5 + 2 * torch.randn(50, 2), torch.randn(50, 3) - 4
    est = build_estimator("maf", layers=2, hidden=8)(theta, x)
    assert isinstance(est, FlowEstimator) and est.net.context_dim == 3
    assert est.loss(theta[:4], x[:4]).shape == (4,)
    assert est.log_prob(theta[:4].expand(6, 4, 2), x[:4]).shape == (6, 4)
    samples, log_q = est.sample_and_log_prob(torch.Size([7, 2]), x[:3])
    assert samples.shape == (7, 2, 3, 2) and log_q.shape == (7, 2, 3)
    torch.testing.assert_close(est.log_prob(samples.reshape(14, 3, 2), x[:3]), log_q.reshape(14, 3),
                               atol=1e-4, rtol=1e-4)
    assert est.sample(torch.Size([5]), x[:1]).shape == (5, 1, 2)
    # z-scoring: the untrained flow maps theta to the standardized theta
    z = est.net.transform.transforms[0](theta)[0]
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-5, rtol=0)


def test_bad_model_or_options_fail_clearly():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_estimator("nope")
    with pytest.raises(ValueError, match="dim and context_dim come from the simulations"):
        build_estimator("maf", dim=3)


def posterior_errors(density_estimator, theta, x, x_o, mean, std, log_dir):
    torch.manual_seed(1)
    npe = NPE(MultivariateNormal(torch.zeros(2), torch.eye(2)), density_estimator=density_estimator,
              summary_writer=SummaryWriter(log_dir), show_progress_bars=False)  # not ./sbi-logs
    npe.append_simulations(theta, x).train(max_num_epochs=80, training_batch_size=200)
    samples = npe.build_posterior().sample((4000,), x=x_o, show_progress_bars=False)
    return float((samples.mean(0) - mean).norm()), float((samples.std(0) - std).abs().max())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_linear_gaussian_posterior_matches_at_least_as_well_as_sbi_nsf(tmp_path):
    # theta ~ N(0, I), x | theta ~ N(theta, s^2 I): posterior N(x_o / (1 + s^2), s^2 / (1 + s^2) I)
    torch.manual_seed(0)
    s, n = 0.3, 1000
    theta = torch.randn(n, 2)
    x = theta + s * torch.randn(n, 2)
    x_o = torch.tensor([[0.8, -0.5]])
    mean, std = x_o[0] / (1 + s**2), (s**2 / (1 + s**2)) ** 0.5
    ours = posterior_errors(build_estimator("maf", layers=3, hidden=50), theta, x, x_o, mean, std, tmp_path / "ours")
    theirs = posterior_errors(posterior_nn("nsf"), theta, x, x_o, mean, std, tmp_path / "theirs")
    assert ours[0] <= theirs[0] + 0.01 and ours[1] <= theirs[1] + 0.01, (ours, theirs)
    assert max(ours) < 0.05, ours
