"""The core imports without the optional packages; each adapter without its
package raises one ImportError naming its extra."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
BLOCKED = ["matplotlib", "sklearn", "tqdm", "pyro", "sbi", "onnx", "onnxscript", "onnxruntime", "tensorboard"]


def run_without_optional_packages(code: str) -> subprocess.CompletedProcess:
    prelude = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"No module named {{name!r}} (blocked by the test)")
        sys.meta_path.insert(0, Block())
    """)
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_core_works_without_optional_packages(tmp_path):
    result = run_without_optional_packages(f"""
        import torch, flowforge as ff
        flow = ff.models.build("maf", dim=2, layers=1, hidden=4)
        ff.save(flow, {str(tmp_path / "m.safetensors")!r})
        x = torch.randn(3, 2)
        assert torch.allclose(ff.load({str(tmp_path / "m.safetensors")!r}).log_prob(x), flow.log_prob(x))
        ff.data.load_dataset("8gaussians")
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_each_adapter_without_its_package_names_its_extra(tmp_path):
    result = run_without_optional_packages(f"""
        import importlib
        import flowforge as ff
        from flowforge.export import export
        for module in ("sklearn", "pyro", "sbi", "tensorboard"):
            try:
                importlib.import_module("flowforge." + module)
            except ImportError as e:
                print(module, e)
        try:
            export(ff.models.build("maf", dim=2, layers=1, hidden=4), {str(tmp_path / "m.onnx")!r})
        except ValueError as e:
            print("onnx", e)
    """)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    for extra in ("sklearn", "pyro", "sbi", "tensorboard", "onnx"):
        assert f"pip install 'flowforge[{extra}]'" in lines.get(extra, ""), (extra, lines)
