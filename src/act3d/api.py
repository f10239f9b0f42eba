"""The Python API: load a pretrained encoder and embed point clouds.

>>> encoder = act3d.load_encoder("runs/pretrain/encoder.pth")
>>> features = encoder.embed(points)  # (B, N, 3) → (B, 768)
"""

from __future__ import annotations

from pathlib import Path

from act3d.engine.config import EncoderConfig
from act3d.models.encoder_io import load_encoder as _load
from act3d.models.point_transformer import PointEncoder


def load_encoder(path_or_preset: str | Path, config: EncoderConfig | None = None, strict: bool = True) -> PointEncoder:
    """A pretrained :class:`PointEncoder` from a file (ours or official), or ``"random"`` for a fresh one.

    ``"random"`` gives a randomly initialised encoder (paper size unless ``config`` says otherwise):
    the "no pretraining" arm.
    """
    if str(path_or_preset) == "random":
        return PointEncoder(**(config or EncoderConfig()).model_dump())
    return _load(path_or_preset, config, strict)
