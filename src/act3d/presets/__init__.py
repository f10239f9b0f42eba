"""The named YAML presets shipped inside the package (``act3d presets`` lists them).

Paper presets reproduce the official configs; ``*_cpu`` presets are scaled for a CPU, each difference
written in its comment and in docs/method.md. Read through :mod:`importlib.resources`, so an installed
wheel finds them as an editable checkout does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def preset_dir() -> Path:
    """The folder holding the ``*.yaml`` presets of the installed package."""
    return Path(str(files(__name__)))


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted (``act_stage1_cpu``, ``classify_cpu``, ...)."""
    return sorted(path.stem for path in preset_dir().glob("*.yaml"))


def resolve_preset(name: str | Path | None) -> Path | None:
    """A preset given as a path (returned as is when the file exists) or by name (``pretrain_cpu``).

    A name that is neither an existing file nor a shipped preset comes back as a path, so that the
    config reader reports it as a missing file, naming it.
    """
    if name is None:
        return None
    path = Path(name)
    if path.is_file():
        return path
    text = str(name)
    candidate = preset_dir() / (text if text.endswith(".yaml") else f"{text}.yaml")
    return candidate if candidate.is_file() else path
