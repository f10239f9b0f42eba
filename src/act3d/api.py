"""The Python API: load a pretrained encoder and embed point clouds.

>>> encoder = act3d.load_encoder("runs/pretrain/encoder.pth")  # or "random", or an official checkpoint
>>> features = encoder.embed(points)  # (B, N, 3) → (B, 768)
"""

from __future__ import annotations

from act3d.models.encoder_io import load_encoder

__all__ = ["load_encoder"]
