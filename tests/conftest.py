"""Shared test fixtures: the shared data folder and the project root."""
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
