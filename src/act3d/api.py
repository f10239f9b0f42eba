"""The Python API: load a pretrained encoder and embed point clouds.

>>> encoder = act3d.load_encoder("runs/pretrain/encoder.pth")
>>> features = encoder.embed(points)  # (B, N, 3) → (B, 768)
"""

from __future__ import annotations

from pathlib import Path

from act3d.engine.config import EncoderConfig
from act3d.models.encoder_io import load_encoder as _load
from act3d.models.encoder_io import official_config
from act3d.models.point_transformer import PointEncoder


def load_encoder(
    path: str | Path, config: EncoderConfig | None = None, strict: bool = True, preset: str | None = None
) -> PointEncoder:
    """A pretrained :class:`PointEncoder` from a file (ours or official), or ``"random"`` for a fresh one.

    ``"random"`` gives a randomly initialised encoder (paper size unless ``config`` says otherwise):
    the "no pretraining" arm. ``preset`` names the official patch settings (``"scan"``: 128 groups;
    see :data:`act3d.models.encoder_io.OFFICIAL_PRESETS`), which official checkpoints do not record.
    """
    if str(path) == "random":
        default = official_config(preset) if preset else EncoderConfig()
        return PointEncoder(**(config or default).model_dump())
    return _load(path, config, strict, preset)
