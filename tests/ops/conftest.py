"""Fixtures shared by the op tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["dense", "buckets"])
def method(request: pytest.FixtureRequest) -> str:
    """Both implementations of an op must give the brute-force result."""
    return request.param
