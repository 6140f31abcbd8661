"""ParallelMLP's exact piecewise path on a scalar input equals the dense matrix products."""
import pytest
import torch

import flowforge as ff
from flowforge.nets import ParallelMLP, piecewise


def _dense(x, layers):
    (w, b), *rest = layers
    h = torch.baddbmm(b, x.unsqueeze(0).expand(w.shape[0], *x.shape), w)
    for w, b in rest:
        h = torch.baddbmm(b, h.relu(), w)
    return h


def _net(copies, widths, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        params += [torch.randn(copies, fan_in, fan_out, generator=g, dtype=dtype),
                   torch.randn(copies, 1, fan_out, generator=g, dtype=dtype)]
    params[0][0, 0, :3] = 0  # units that never switch: always on (b > 0) or never (b <= 0)
    params[1][0, 0, 0], params[1][0, 0, 1] = 1.0, -1.0
    params[2][0, 5] = 0  # a second-layer unit without slope in some intervals
    return [p.requires_grad_() for p in params]


@pytest.mark.parametrize("copies,widths", [(2, [1, 16, 16, 1]), (3, [1, 7, 6, 4]), (1, [1, 9, 12, 2])])
def test_pieces_equal_dense_products_with_first_and_second_derivatives(copies, widths):
    params = _net(copies, widths)
    layers = list(zip(params[::2], params[1::2], strict=True))
    x = (torch.randn(400, 1, dtype=torch.float64) * 3).requires_grad_()
    out, ref = piecewise.mlp(x, *params), _dense(x, layers)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    first = torch.autograd.grad(out, [x, *params], g, create_graph=True)
    first_ref = torch.autograd.grad(ref, [x, *params], g, create_graph=True)
    for a, b in zip(first, first_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # double backward: d/dparams of the input gradient (what a gradient penalty or Hessian-vector product takes)
    second = torch.autograd.grad(first[0].square().sum(), params, materialize_grads=True)
    second_ref = torch.autograd.grad(first_ref[0].square().sum(), params, materialize_grads=True)
    for a, b in zip(second, second_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_values_agree_at_every_kink():
    params = _net(2, [1, 16, 16, 3])
    layers = list(zip(params[::2], params[1::2], strict=True))
    with torch.no_grad():
        first = (-params[1] / params[0]).flatten()
        x = torch.linspace(-4, 4, 2001, dtype=torch.float64)[:, None]
        pre = _dense(x, layers[:1]).relu() @ params[2] + params[3]  # second-layer kinks, located on a grid
        crossing = (pre[..., :-1, :].sign() != pre[..., 1:, :].sign()).nonzero()[:, 1]
        kinks = torch.cat([first[first.isfinite()], x[crossing, 0]])[:, None]
        torch.testing.assert_close(piecewise.mlp(kinks, *params), _dense(kinks, layers), rtol=1e-12, atol=1e-12)


def test_torch_func_gradient_and_jacobian():
    params = _net(2, [1, 8, 8, 1])
    x = torch.randn(100, 1, dtype=torch.float64)
    layers = list(zip(params[::2], params[1::2], strict=True))

    def loss(ps, fn):
        return fn(x, ps).square().sum()

    grads = torch.func.grad(loss)(params, lambda x, ps: piecewise.mlp(x, *ps))
    grads_ref = torch.func.grad(loss)(params, lambda x, ps: _dense(x, list(zip(ps[::2], ps[1::2], strict=True))))
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    jac = torch.func.jacrev(lambda x: piecewise.mlp(x, *params))(x)
    torch.testing.assert_close(jac, torch.func.jacrev(lambda x: _dense(x, layers))(x), rtol=1e-10, atol=1e-10)


def test_nan_input_gives_nan_only_there():
    params = _net(2, [1, 8, 8, 1])
    x = torch.randn(100, 1, dtype=torch.float64)
    x[3] = float("nan")
    out = piecewise.mlp(x, *params)
    assert out[:, 3].isnan().all() and out[:, torch.arange(100) != 3].isfinite().all()


def test_parallel_mlp_float32_takes_the_piecewise_path_and_matches_dense():
    net = ParallelMLP(1, 2, hidden=64)
    x = torch.randn(1000, 1)
    torch.testing.assert_close(net(x), _dense(x, net.layers()).transpose(0, 1).reshape(1000, 2), rtol=1e-5, atol=1e-5)


def test_realnvp_on_2d_data_small_and_large_batches_agree():
    flow = ff.models.build("realnvp", dim=2).double()
    for p in flow.parameters():
        p.data.normal_(0, 0.3)  # the scale nets start non-zero: both outputs of each net matter
    x = torch.randn(500, 2, dtype=torch.float64)
    whole = flow.log_prob(x)  # piecewise path
    pieces = torch.cat([flow.log_prob(part) for part in x.split(10)])  # batches below the threshold: dense
    torch.testing.assert_close(whole, pieces, rtol=1e-12, atol=1e-12)


def test_dtype_mismatch_is_an_error_naming_both_dtypes():
    net = ParallelMLP(1, 2, hidden=8)
    with pytest.raises(TypeError, match="torch.float64.*torch.float32"):
        net(torch.randn(100, 1, dtype=torch.float64))


def test_state_dict_of_the_layerwise_layout_loads():
    net = ParallelMLP(3, 4, hidden=8, hidden_layers=2)
    old = {f"{kind}.{i}": t.detach().clone() for i, (w, b) in enumerate(net.layers())
           for kind, t in (("weights", w), ("biases", b))}
    fresh = ParallelMLP(3, 4, hidden=8, hidden_layers=2)
    fresh.load_state_dict(old)
    x = torch.randn(5, 3)
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)


def test_units_no_sample_switches_on_get_exactly_zero_gradient():
    # Adam turns rounding noise in a gradient into a full step: where the dense path's gradient is
    # exactly 0 (a unit no sample switches on), the pieces' must be too, not a difference of sums
    params = _net(2, [1, 16, 16, 1], dtype=torch.float32)
    layers = list(zip(params[::2], params[1::2], strict=True))
    x = torch.rand(500, 1) * 0.5  # a narrow range: many units stay off on all of it
    g = torch.randn(2, 500, 1)
    grads = torch.autograd.grad(piecewise.mlp(x, *params), params, g)
    grads_ref = torch.autograd.grad(_dense(x, layers), params, g)
    dead = grads_ref[4][..., 0] == 0  # (copies, H): second-layer units off on every sample
    assert dead.any()
    assert (grads[4][..., 0][dead] == 0).all()  # their outgoing weights
    assert (grads[2].transpose(1, 2)[dead] == 0).all() and (grads[3][:, 0][dead] == 0).all()  # incoming, bias


@pytest.mark.parametrize("model", ["realnvp", "maf"])
def test_float64_data_into_a_float32_model_is_an_error_not_nan(model):
    flow = ff.models.build(model, dim=2)
    with pytest.raises(ff.DataError, match="torch.float64 on cpu, but the model is torch.float32"):
        flow.log_prob(torch.randn(500, 2, dtype=torch.float64))
    with pytest.raises(ff.DataError, match="torch.float32 on cpu, but the model is torch.float64"):
        flow.double().log_prob(torch.randn(500, 2))


@pytest.mark.slow
def test_flowforge_train_never_invokes_a_compiler(tmp_path):
    import os
    import subprocess
    import sys

    marker = tmp_path / "compiler-called"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("cc", "gcc", "c++", "g++", "clang"):
        fake = bin_dir / name
        fake.write_text(f"#!/bin/sh\necho \"$0 $@\" >> {marker}\nexit 1\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CC": str(bin_dir / "cc"),
           "CXX": str(bin_dir / "c++"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "flowforge", "train", "--steps", "3", "--eval-every", "3",
                           "--quiet", "--no-plots", "--out", str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), marker.read_text()


def test_checkpoint_file_of_the_layerwise_layout_loads_exactly(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch.manual_seed(0)
    flow = ff.models.build("realnvp", dim=3, layers=2, hidden=8)
    path = tmp_path / "model.safetensors"
    ff.save(flow, path)
    with safe_open(str(path), "pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    for key in [k for k in tensors if k.endswith("net.params")]:  # back to weights.<l> / biases.<l>
        prefix, net = key[: -len("params")], flow.get_submodule(key[: -len(".params")])
        for i, (w, b) in enumerate(net.layers()):
            tensors[f"{prefix}weights.{i}"], tensors[f"{prefix}biases.{i}"] = w.detach().clone(), b.detach().clone()
        del tensors[key]
    save_file(tensors, str(path), metadata=meta)
    x = torch.randn(50, 3)
    torch.testing.assert_close(ff.load(path).log_prob(x), flow.log_prob(x), rtol=0, atol=0)
