"""``act3d embed``: features of point-cloud / mesh files from a pretrained encoder, to ``.npy``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from act3d.data.io import SUPPORTED_SUFFIXES, read_point_file
from act3d.errors import DataError
from act3d.models.encoder_io import load_encoder
from act3d.ops import farthest_point_sample, gather_points


def collect_files(inputs: list[str]) -> list[Path]:
    """Files given directly, plus every readable point/mesh file under given folders (sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif item.is_file():
            files.append(item)
        else:
            raise DataError(item, "no such file or folder")
    if not files:
        raise DataError(None, f"no point-cloud or mesh files found in {inputs}")
    return files


def embed_files(
    checkpoint: str,
    inputs: list[str],
    out: str,
    npoints: int = 1024,
    device: str = "cpu",
    preset: str | None = None,
) -> Path:
    """Embed each file (FPS to ``npoints``, unit-sphere normalised) → ``out`` (F, 2·dim) + ``out``.txt names.

    ``preset``: the official patch settings of an official checkpoint (``scan``: 128 groups).
    """
    encoder = load_encoder(checkpoint, preset=preset).to(device)
    files = collect_files(inputs)
    features = []
    for path in files:
        cloud = torch.from_numpy(np.ascontiguousarray(read_point_file(path)[:, :3], dtype=np.float32))[None]
        if cloud.shape[1] < npoints:
            raise DataError(path, f"has {cloud.shape[1]} points, fewer than --npoints {npoints}")
        cloud = gather_points(cloud, farthest_point_sample(cloud, npoints))
        features.append(encoder.embed(cloud.to(device)).cpu().numpy())
    out_path = Path(out)
    np.save(out_path, np.concatenate(features))
    out_path.with_suffix(".txt").write_text("\n".join(str(p) for p in files) + "\n")
    return out_path
