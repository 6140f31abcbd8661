"""Export: onnxruntime and TorchScript reproduce log_prob on a new batch size;
what cannot be traced is refused with a message; the CLI writes a file."""
import numpy as np
import pytest
import torch

import flowforge as ff
from flowforge.cli import main
from flowforge.export import ExportError, export
from flowforge.transforms import Transform

from .helpers import perturb

MODELS = {
    "realnvp": ({"dim": 2, "layers": 2, "hidden": 8}, (2,)),  # 2-D: the scalar-input conditioner path
    "maf": ({"dim": 3, "layers": 2, "hidden": 8, "batch_norm": True}, (3,)),
    "nsf": ({"dim": 3, "layers": 2, "hidden": 8}, (3,)),
    "glow": ({"shape": [1, 4, 4], "scales": 1, "layers": 2, "hidden": 8,  # pixels in [0, 17), as image runs
              "preprocess": [{"type": "logit", "levels": 17}]}, (1, 4, 4)),
}


def inputs(name, n):
    shape = MODELS[name][1]
    return 16 * torch.rand(n, *shape) if name == "glow" else torch.randn(n, *shape)


def perturbed(name, **extra):
    config = MODELS[name][0]
    torch.manual_seed(0)
    return perturb(ff.models.build(name, **config, **extra), 0.1).eval()


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_matches_log_prob(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    flow = perturbed(name)
    export(flow, tmp_path / "flow.onnx")
    session = ort.InferenceSession(str(tmp_path / "flow.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x"]
    x = inputs(name, 7)  # another batch size than the one traced
    got = session.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, flow.log_prob(x).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_torchscript_matches_log_prob(name, tmp_path):
    flow = perturbed(name)
    export(flow, tmp_path / "flow.pt", "torchscript")
    x = inputs(name, 5)
    torch.testing.assert_close(torch.jit.load(tmp_path / "flow.pt")(x), flow.log_prob(x), rtol=1e-5, atol=1e-5)


def test_conditional_flow_takes_the_context_as_second_input(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    flow = perturbed("maf", context_dim=2)
    export(flow, tmp_path / "flow.onnx")
    session = ort.InferenceSession(str(tmp_path / "flow.onnx"))
    x, c = inputs("maf", 4), torch.randn(4, 2)
    got = session.run(None, {"x": x.numpy(), "context": c.numpy()})[0]
    np.testing.assert_allclose(got, flow.log_prob(x, c).detach().numpy(), rtol=1e-5, atol=1e-5)


class SignDependent(Transform):
    """A bijection whose branch depends on the data: no static graph can hold it."""

    def forward(self, x, context=None):
        return (x if bool(x.sum() > 0) else -x), x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return self.forward(z, context)


def test_untraceable_flow_is_refused_with_the_model_named(tmp_path):
    pytest.importorskip("onnxscript")
    flow = ff.distributions.Flow(SignDependent(), ff.distributions.StandardNormal((2,)))
    flow.config = {"name": "custom"}
    with pytest.raises(ExportError, match="cannot export model 'custom' as onnx"):
        export(flow, tmp_path / "flow.onnx")
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export(flow, tmp_path / "flow.tflite", "tflite")


def test_cli_exports_a_run(tmp_path, capsys):
    assert main(["train", "--steps", "2", "--out", str(tmp_path / "run"), "--no-plots", "--quiet"]) == 0
    out = tmp_path / "flow.pt"
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(out)]) == 0
    assert "torchscript" in capsys.readouterr().out
    flow, x = ff.load(tmp_path / "run"), torch.randn(6, 2)
    torch.testing.assert_close(torch.jit.load(out)(x), flow.log_prob(x).detach(), rtol=1e-5, atol=1e-5)
    assert main(["export", str(tmp_path / "nothing"), "--out", str(out)]) == 2
