"""Shared test fixtures: the shared data folder, the project root, and torch on one thread."""
from pathlib import Path

import pytest

import flows

PROJECT_ROOT = flows.PROJECT_ROOT
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: CI lays ../shared beside the clone"
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; a second one only contends on the shared cores.
    A module of tiny-model tests opts in with pytestmark = pytest.mark.usefixtures("one_thread")."""
    import torch  # here, not at the top: most test modules never load torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
