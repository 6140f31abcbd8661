"""Integration figures (issue 13).

1. Pyro, Neal's funnel (v ~ N(0, 3^2), x | v ~ N(0, e^v I_2), log Z = 0): final
   ELBO of SVI with AutoNormal, AutoIAFNormal, and AutoNormalizingFlow guides
   built from flowforge's IAF and NSF (`to_pyro`), the same budget for each
   (steps x 8 particles, Adam 1e-2), ELBO from 20k particles; mean over seeds.
2. sbi, linear Gaussian (theta ~ N(0, I_2), x ~ N(theta, 0.3^2 I)): NPE with
   the same 1000 simulations and training settings; |posterior mean error|
   and max |posterior std error| against the analytic posterior at x_o, from
   4000 posterior samples; sbi's own NSF / MAF next to flowforge's.
3. Export: ONNX (onnxruntime) vs PyTorch log_prob on CPU, one thread: max abs
   difference on 4096 of the model's own samples (Glow: dequantized digits)
   (and each one's float32 error
   against PyTorch in float64), rows/s at batch 1024, for Real NVP, MAF, NSF
   (6-D, as the weather table) and Glow (1x8x8 digits); untrained models with
   perturbed weights.
4. scikit-learn: held-out mean log-likelihood (nats per row) of FlowDensity
   with its defaults vs KernelDensity (bandwidth by 3-fold CV) and
   GaussianMixture (components and covariance by 3-fold CV) on moons and the
   weather table of ../shared/bench (its split, standardized units).

Usage: python benchmarks/integrations.py [--quick] [--threads N] [--part funnel,sbi,onnx,sklearn] [--shared DIR]
Writes benchmarks/results/integrations.json (integrations_quick.json with
--quick) and prints markdown tables. About 6-9 min on 1 thread of a quiet
2-core machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import flowforge as ff

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("funnel", "sbi", "onnx", "sklearn")


def funnel_model():
    import pyro
    import pyro.distributions as dist

    v = pyro.sample("v", dist.Normal(0.0, 3.0))
    pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2).unsqueeze(-1).expand(*v.shape, 2)).to_event(1))


def bench_funnel(quick: bool) -> list[dict]:
    import pyro
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoIAFNormal, AutoNormal, AutoNormalizingFlow

    from flowforge.pyro import to_pyro

    steps, seeds = (200, 1) if quick else (2000, 2)
    guides = {
        "AutoNormal": lambda: AutoNormal(funnel_model),
        "AutoIAFNormal (Pyro)": lambda: AutoIAFNormal(funnel_model, num_transforms=3),
        "flowforge IAF": lambda: AutoNormalizingFlow(
            funnel_model, lambda d: to_pyro(ff.models.build("iaf", dim=d, layers=3, hidden=32))),
        "flowforge NSF": lambda: AutoNormalizingFlow(  # IAF-style spline layers: one pass to sample
            funnel_model, lambda d: to_pyro(ff.models.build("nsf", dim=d, layers=3, hidden=32, inverse=True))),
    }
    rows = []
    for name, make in guides.items():
        elbos, t0 = [], time.perf_counter()
        for seed in range(seeds):
            pyro.clear_param_store()
            pyro.set_rng_seed(seed)
            guide = make()
            loss = Trace_ELBO(num_particles=8, vectorize_particles=True)
            svi = SVI(funnel_model, guide, pyro.optim.Adam({"lr": 1e-2}), loss)
            for _ in range(steps):
                svi.step()
            with torch.no_grad():
                elbos.append(-Trace_ELBO(num_particles=20_000, vectorize_particles=True).loss(funnel_model, guide))
        rows.append({"guide": name, "elbo": float(np.mean(elbos)), "elbos": elbos, "steps": steps,
                     "wall_s_per_run": (time.perf_counter() - t0) / seeds})
        print(f"  {name}: ELBO {rows[-1]['elbo']:.3f}", flush=True)
    return rows


def bench_sbi(quick: bool) -> list[dict]:
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from torch.distributions import MultivariateNormal

    from flowforge.sbi import build_estimator

    n, epochs, seeds = (300, 10, 1) if quick else (1000, 80, 2)
    s = 0.3
    x_o = torch.tensor([[0.8, -0.5]])
    mean, std = x_o[0] / (1 + s**2), (s**2 / (1 + s**2)) ** 0.5
    estimators = {
        "sbi nsf (nflows)": lambda: posterior_nn("nsf"),
        "sbi maf (nflows)": lambda: posterior_nn("maf"),
        "sbi zuko_nsf": lambda: posterior_nn("zuko_nsf"),
        "flowforge nsf": lambda: build_estimator("nsf"),
        "flowforge maf": lambda: build_estimator("maf", layers=3, hidden=50),
    }
    from torch.utils.tensorboard import SummaryWriter

    rows, logs = [], tempfile.mkdtemp()  # sbi's training logs, kept out of the working folder
    for name, make in estimators.items():
        mean_err, std_err, t0 = [], [], time.perf_counter()
        for seed in range(seeds):
            torch.manual_seed(seed)
            theta = torch.randn(n, 2)
            x = theta + s * torch.randn(n, 2)
            prior = MultivariateNormal(torch.zeros(2), torch.eye(2))
            npe = NPE(prior, density_estimator=make(), summary_writer=SummaryWriter(logs), show_progress_bars=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                npe.append_simulations(theta, x).train(max_num_epochs=epochs, training_batch_size=200)
                samples = npe.build_posterior().sample((4000,), x=x_o, show_progress_bars=False)
            mean_err.append(float((samples.mean(0) - mean).norm()))
            std_err.append(float((samples.std(0) - std).abs().max()))
        rows.append({"estimator": name, "mean_error": float(np.mean(mean_err)), "std_error": float(np.mean(std_err)),
                     "simulations": n, "seeds": seeds, "wall_s_per_run": (time.perf_counter() - t0) / seeds})
        print(f"  {name}: mean err {rows[-1]['mean_error']:.4f}  std err {rows[-1]['std_error']:.4f}", flush=True)
    return rows


def _rows_per_s(fn, x: np.ndarray | torch.Tensor, batch: int, repeats: int) -> float:
    fn(x[:batch])
    t0 = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(x), batch):
            fn(x[i : i + batch])
    return repeats * len(x) / (time.perf_counter() - t0)


def bench_onnx(quick: bool) -> list[dict]:
    import onnxruntime as ort

    from flowforge.export import export

    models = {
        "realnvp": {"dim": 6},
        "maf": {"dim": 6},
        "nsf": {"dim": 6},
        "glow": {"shape": [1, 8, 8], "preprocess": [{"type": "logit", "levels": 17}]},
    }
    n, repeats = (1024, 1) if quick else (4096, 5)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = torch.get_num_threads()
    rows = []
    for name, config in models.items():
        torch.manual_seed(0)
        flow = ff.models.build(name, **config)
        with torch.no_grad():
            if name == "glow":  # dequantized digits; ActNorm initialized on them as training would
                digits = ff.data.load_dataset("digits").test
                x = ff.data.dequantize(digits[torch.randint(len(digits), (n,))], torch.Generator().manual_seed(0))
                flow.transform.initialize(x[:512])
            for p in flow.parameters():  # away from the identity the zero-initialized layers start at
                p.add_(0.01 * torch.randn_like(p))
            flow.eval()
            if name != "glow":  # rows the model finds typical: log-densities of a realistic size
                x = flow.sample(n)
            exact = flow.double().log_prob(x.double()).numpy()
            flow.float()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path = export(flow, Path(tmp) / f"{name}.onnx")
            export_s = time.perf_counter() - t0
            session = ort.InferenceSession(str(path), options)
            onnx_out = session.run(None, {"x": x.numpy()})[0]
            with torch.no_grad():
                torch_out = flow.log_prob(x).numpy()
                torch_rate = _rows_per_s(flow.log_prob, x, 1024, repeats)
            onnx_rate = _rows_per_s(lambda b, s=session: s.run(None, {"x": b}), x.numpy(), 1024, repeats)
        rows.append({"model": name, "max_abs_diff": float(np.abs(onnx_out - torch_out).max()),
                     "torch_float32_error": float(np.abs(torch_out - exact).max()),
                     "onnx_float32_error": float(np.abs(onnx_out - exact).max()),
                     "torch_rows_per_s": torch_rate, "onnx_rows_per_s": onnx_rate, "export_s": export_s})
        print(f"  {name}: max |diff| {rows[-1]['max_abs_diff']:.2e}  torch {torch_rate:.0f}/s  onnx {onnx_rate:.0f}/s",
              flush=True)
    return rows


def _sklearn_scores(name: str, train: np.ndarray, test: np.ndarray, quick: bool) -> list[dict]:
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KernelDensity

    from flowforge.sklearn import FlowDensity

    estimators = {
        "FlowDensity (defaults)": lambda: FlowDensity(random_state=0, **({"steps": 50} if quick else {})),
        "KernelDensity (CV bandwidth)": lambda: GridSearchCV(
            KernelDensity(), {"bandwidth": np.logspace(-1.5, 0, 3 if quick else 12)}, cv=3),
        "GaussianMixture (CV)": lambda: GridSearchCV(
            GaussianMixture(random_state=0),
            {"n_components": [1, 4] if quick else [1, 2, 4, 8, 16, 32], "covariance_type": ["full", "diag"]}, cv=3),
    }
    rows = []
    for label, make in estimators.items():
        t0 = time.perf_counter()
        est = make().fit(train)
        rows.append({"data": name, "estimator": label, "test_loglik": float(est.score_samples(test).mean()),
                     "fit_s": time.perf_counter() - t0,
                     "chosen": getattr(est, "best_params_", None)})
        print(f"  {name} {label}: {rows[-1]['test_loglik']:.4f} nats/row", flush=True)
    return rows


def bench_sklearn(quick: bool, shared: Path) -> list[dict]:
    moons = ff.data.load_dataset("moons")
    rows = _sklearn_scores("moons", torch.cat([moons.train, moons.val]).numpy(), moons.test.numpy(), quick)
    if not (shared / "bench" / "common.py").exists():
        print(f"  weather: {shared}/bench not found; skipped (see --shared)", flush=True)
        return rows
    sys.path.insert(0, str(shared / "bench"))
    from common import weather_data

    w = weather_data()
    train = torch.cat([w["train"], w["val"]]).numpy()
    return rows + _sklearn_scores("weather", train[:2000] if quick else train, w["test"].numpy(), quick)


def tables(results: dict) -> str:
    out = []
    if "funnel" in results:
        out += ["| guide (Neal's funnel, log Z = 0) | final ELBO | s per run |", "|---|---|---|"]
        out += [f"| {r['guide']} | {r['elbo']:.3f} | {r['wall_s_per_run']:.0f} |" for r in results["funnel"]]
        out.append("")
    if "sbi" in results:
        out += ["| NPE estimator (linear Gaussian) | posterior mean error | posterior std error | s per run |",
                "|---|---|---|---|"]
        out += [f"| {r['estimator']} | {r['mean_error']:.4f} | {r['std_error']:.4f} | {r['wall_s_per_run']:.0f} |"
                for r in results["sbi"]]
        out.append("")
    if "onnx" in results:
        out += ["| model | ONNX vs PyTorch max abs diff | each vs float64 (PyTorch / ONNX) | PyTorch rows/s | "
                "onnxruntime rows/s |", "|---|---|---|---|---|"]
        out += [f"| {r['model']} | {r['max_abs_diff']:.1e} | {r['torch_float32_error']:.1e} / "
                f"{r['onnx_float32_error']:.1e} | {r['torch_rows_per_s']:,.0f} | {r['onnx_rows_per_s']:,.0f} |"
                for r in results["onnx"]]
        out.append("")
    if "sklearn" in results:
        out += ["| data | estimator | held-out log-likelihood (nats/row) | fit s |", "|---|---|---|---|"]
        out += [f"| {r['data']} | {r['estimator']} | {r['test_loglik']:.4f} | {r['fit_s']:.0f} |"
                for r in results["sklearn"]]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that the script runs")
    parser.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads (default 1)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                        help="the shared/ folder holding bench/ (default: ../shared)")
    parser.add_argument("--part", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = {"funnel": bench_funnel, "sbi": bench_sbi, "onnx": bench_onnx,
             "sklearn": lambda quick: bench_sklearn(quick, args.shared)}
    results: dict = {"quick": args.quick, "threads": args.threads, "torch": torch.__version__}
    for part in args.part.split(","):
        if part not in bench:
            parser.error(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
        print(f"== {part}", flush=True)
        t0 = time.perf_counter()
        results[part] = bench[part](args.quick)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "integrations_quick.json" if args.quick else "integrations.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
