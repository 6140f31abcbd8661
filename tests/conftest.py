import pytest
import torch


def pytest_configure(config):
    # The suite is many small tensors: one intra-op thread is as fast on 2 cores and
    # avoids the 10-100x slow-downs of oversubscribed OpenMP threads on a busy machine.
    torch.set_num_threads(1)


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
