"""The exceptions act3d raises on bad input.

Every error about a file names the file first, then the problem, so a user can fix it without
reading a traceback: ``DataError("data/x.npy: contains NaN")``.
"""

from __future__ import annotations

import os


class Act3dError(Exception):
    """Base class of every error act3d raises on purpose."""


class DataError(Act3dError, ValueError):
    """A dataset file or array is missing, malformed or inconsistent.

    Attributes:
        path: the offending file (or ``None`` for in-memory input).
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class OpError(Act3dError, ValueError):
    """A point op was called with inputs it cannot handle (empty cloud, NaN, k too large...)."""


class ConfigError(Act3dError, ValueError):
    """A configuration key is unknown, has the wrong type or an invalid value."""


class CheckpointError(Act3dError, RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model."""


class TrainingError(Act3dError, RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""
