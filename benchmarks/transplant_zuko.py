"""How much of the moons test NLL is implementation, how much is chance?

Builds the shared harness's zuko Real NVP (seed 0), copies its initial weights
into flowforge's classic model (same function: max |Δ log p| is printed), then
trains both under the harness protocol (full batch 3000, Adam 1e-3, 2000 steps,
1 thread) and prints train / test NLL of each. Identical starts that end apart
measure the floating-point chaos of the protocol.

Needs zuko, i.e. the harness venv:
    /tmp/peers-venv/bin/python benchmarks/transplant_zuko.py [--steps 2000] [--perturb SEED] [--libs zuko]
--perturb multiplies every initial weight by (1 + 1e-6 n), n ~ N(0, 1) drawn
from SEED, after the transplant: a rounding-sized change of the start.
flowforge trains on its exact piecewise path (nets/piecewise.py), the default for 2-D Real NVP.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402  (the harness's data and model spec)
from adapters.zuko_adapter import ZukoAdapter  # noqa: E402

import flowforge as ff  # noqa: E402


def transplant(zuko_flow, flow) -> None:
    """Copy zuko's per-coupling s and t nets into ParallelMLP copies 0 (scale) and 1 (shift)."""
    with torch.no_grad():
        for zc, coupling in zip(zuko_flow.transform.transforms, flow.transform.transforms, strict=True):
            for copy, net in enumerate((zc.s, zc.t)):
                linears = [m for m in net.children() if hasattr(m, "weight")]
                for (weight, bias), lin in zip(coupling.net.layers(), linears, strict=True):
                    weight[copy].copy_(lin.weight.T)
                    bias[copy, 0].copy_(lin.bias)


def train(params, log_prob, x: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam(params, lr=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        (-log_prob(x).mean()).backward()
        opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--perturb", type=int, metavar="SEED", help="relative 1e-6 noise on the initial weights")
    parser.add_argument("--libs", default="flowforge,zuko", help="which of flowforge,zuko to train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x_train, x_test, _, _ = common.moons_data(3000, 20000, 1000)
    torch.manual_seed(0)
    zuko = ZukoAdapter()
    zuko.build(common.RealNVPSpec())
    flow = ff.models.build("realnvp", dim=2)
    transplant(zuko.module, flow)
    with torch.no_grad():
        start_gap = float((flow.log_prob(x_test) - zuko.log_prob(x_test)).abs().max())
    result = {"max_abs_dlogp_at_start": start_gap, "perturb": args.perturb}
    runs = {"flowforge": (flow, flow.log_prob), "zuko": (zuko.module, zuko.log_prob)}
    for name in args.libs.split(","):
        module, log_prob = runs[name]
        if args.perturb is not None:
            g = torch.Generator().manual_seed(args.perturb)
            with torch.no_grad():
                for p in module.parameters():
                    p.mul_(1 + 1e-6 * torch.randn(p.shape, generator=g))
        train(module.parameters(), log_prob, x_train, args.steps)
        with torch.no_grad():
            result[name] = {"train_nll": float(-log_prob(x_train).mean()), "test_nll": float(-log_prob(x_test).mean())}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
