import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for the transform kit (cpu, cuda)")


@pytest.fixture
def device(request):
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device(name)


@pytest.fixture(autouse=True)
def _seed():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield
