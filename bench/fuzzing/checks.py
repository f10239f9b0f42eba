"""Checks of what a reader returned: the promises of docs/data.md, item by item."""

from __future__ import annotations

import torch

from .cases import BadOutputError

NPOINTS = 32  # every dataset target is read at 32 points per cloud


def check_dataset(dataset) -> None:
    """Every item holds finite float32 (NPOINTS, 3) points and in-range labels (and part ids)."""
    if len(dataset) == 0:
        raise BadOutputError("an empty dataset was built without an error")
    for i in range(len(dataset)):
        item = dataset[i]
        points = item["points"]
        if points.dtype != torch.float32 or tuple(points.shape) != (NPOINTS, 3):
            raise BadOutputError(f"item {i}: points {points.dtype} {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise BadOutputError(f"item {i}: non-finite points")
        label = int(item["label"])
        if not 0 <= label < dataset.num_classes:
            raise BadOutputError(f"item {i}: label {label} outside 0..{dataset.num_classes - 1}")
        if "normals" in item and not torch.isfinite(item["normals"]).all():
            raise BadOutputError(f"item {i}: non-finite normals")
        if "parts" in item:
            allowed = dataset.part_classes[dataset.classes[label]]
            if not torch.isin(item["parts"], torch.tensor(allowed)).all():
                raise BadOutputError(f"item {i}: part ids outside {allowed}")
