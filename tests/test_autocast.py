"""Mixed precision: a float32 model runs under bf16 autocast (what benchmarks/gpu.py measures on CUDA)."""
import pytest
import torch

import flowforge as ff


def test_image_flow_trains_under_bf16_autocast():
    torch.manual_seed(0)
    flow = ff.models.build("glow", shape=[3, 8, 8], scales=2, layers=2, hidden=8)
    x = torch.rand(4, 3, 8, 8)
    flow.transform.initialize(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_prob = flow.log_prob(x)
    assert log_prob.isfinite().all()
    torch.testing.assert_close(log_prob.float(), flow.log_prob(x), rtol=0.05, atol=5.0)
    (-log_prob.mean()).backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in flow.parameters() if p.requires_grad)


def test_without_autocast_a_bf16_input_is_still_refused():
    flow = ff.models.build("glow", shape=[3, 8, 8], scales=2, layers=2, hidden=8)
    with pytest.raises(ff.DataError, match="torch.bfloat16"):
        flow.log_prob(torch.rand(4, 3, 8, 8, dtype=torch.bfloat16))
