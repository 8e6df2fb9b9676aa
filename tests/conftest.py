"""Shared test settings: deterministic, single-threaded torch per worker (pytest -n 2)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
