"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data kept beside the project: ``$ACT3D_SHARED_DATA``, else ``<repo>/../shared/data``.

    It may be absent (tests that need it skip); never copy it into the project.
    """
    return Path(os.environ.get("ACT3D_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
