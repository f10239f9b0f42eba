"""The dataset base class every act3d reader shares: subsampling, normalisation, transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from act3d.data.transforms import SAMPLING_METHODS, Item, subsample_indices, take
from act3d.errors import ConfigError, DataError
from act3d.ops.normalize import normalize_unit_sphere


class PointCloudDataset(Dataset[Item]):
    """Items ``{"points": float32 (npoints, 3), "label": int64 ()}`` (plus per-point extras).

    Each item's cloud is cut to ``npoints`` by ``sampling`` ('fps' | 'random' | 'first', see
    :func:`act3d.data.transforms.subsample_indices`), then centred and scaled to the unit sphere
    when ``normalize``, then passed to ``transform``. FPS indices are cached per index, which needs
    ``_load`` to be deterministic (keep DataLoader workers persistent to keep the cache).

    Subclasses set ``classes`` and ``labels`` (int64 (S,)) and implement ``_load(index)``, returning
    ``{"points": float32 (P, 3)}`` plus optional ``"normals"`` (P, 3) and ``"parts"`` int64 (P,).
    Subclasses holding every cloud in memory set ``memory_clouds`` to them (an (S, P, >=3) array or
    a list of (P_i, >=3) arrays): FPS is then computed for all clouds on first use, in padded
    batches, instead of cloud by cloud.
    """

    classes: list[str]
    labels: np.ndarray
    memory_clouds: Sequence[np.ndarray] | None = None

    def __init__(self, npoints: int, sampling: str, normalize: bool, transform: Callable[[Item], Item] | None) -> None:
        if npoints <= 0:
            raise ConfigError(f"npoints must be positive, got {npoints}")
        if sampling not in SAMPLING_METHODS:
            raise ConfigError(f"sampling {sampling!r} is not one of {SAMPLING_METHODS}")
        self.npoints, self.sampling, self.normalize, self.transform = npoints, sampling, normalize, transform
        self._fps_cache: dict[int, Tensor] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _indices(self, index: int, points: Tensor) -> Tensor:
        if self.sampling != "fps" or points.shape[0] <= self.npoints:  # nothing to cache: all points
            return subsample_indices(points, self.npoints, self.sampling)
        if index not in self._fps_cache and self.memory_clouds is not None:
            self._fill_fps_cache(self.memory_clouds)
        if index not in self._fps_cache:
            self._fps_cache[index] = subsample_indices(points, self.npoints, "fps").to(torch.int32)
        return self._fps_cache[index].long()

    def warm_cache(self) -> None:
        """Compute the FPS indices of every in-memory cloud now (a no-op for other datasets), so that
        DataLoader workers forked afterwards share them instead of each rebuilding them every epoch."""
        if self.sampling == "fps" and self.memory_clouds is not None and not self._fps_cache:
            self._fill_fps_cache(self.memory_clouds)

    def _fill_fps_cache(self, clouds: Sequence[np.ndarray], chunk: int = 512) -> None:
        """FPS indices of every cloud of ``clouds`` longer than ``npoints``, ``chunk`` clouds at a time.

        Clouds of different sizes are zero-padded and passed with their lengths, which gives the
        same indices as FPS cloud by cloud.
        """
        from act3d.ops import farthest_point_sample

        todo = [i for i in range(len(clouds)) if len(clouds[i]) > self.npoints]
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            lengths = torch.tensor([len(clouds[i]) for i in part])
            batch = torch.zeros(len(part), int(lengths.max()), 3)
            for row, i in enumerate(part):
                batch[row, : len(clouds[i])] = torch.from_numpy(np.asarray(clouds[i][:, :3], dtype=np.float32))
            idx = farthest_point_sample(batch, self.npoints, lengths=lengths).to(torch.int32)
            self._fps_cache.update(zip(part, idx, strict=True))

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        loaded = {k: _as_tensor(v) for k, v in self._load(index).items()}
        item = take(loaded, self._indices(index, loaded["points"]))  # a copy: transforms may write
        if self.normalize:
            item["points"] = normalize_unit_sphere(item["points"])
        item["label"] = torch.tensor(int(self.labels[index]), dtype=torch.long)
        return item if self.transform is None else self.transform(item)


class PartDataset(PointCloudDataset):
    """A dataset whose items add ``"parts"`` int64 (N,): global part ids, ``part_classes[cls]`` per class."""

    part_classes: dict[str, list[int]]

    @property
    def num_parts(self) -> int:
        return sum(len(p) for p in self.part_classes.values())


def _as_tensor(array: np.ndarray) -> Tensor:
    """``array`` as a tensor, sharing its memory unless it is read-only or not in native byte order."""
    if not array.flags.writeable or not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return torch.from_numpy(array)


def check_split(split: str, splits: Sequence[str], dataset: str) -> None:
    if split not in splits:
        raise ConfigError(f"{dataset} split must be one of {list(splits)}, got {split!r}")


def find_marker(candidates: Sequence[Path], markers: Sequence[str], what: str) -> Path:
    """The first ``candidate / marker`` that exists, else DataError listing where it looked."""
    for folder in candidates:
        for marker in markers:
            if (folder / marker).exists():
                return folder / marker
    tried = ", ".join(str(c / m) for c in candidates for m in markers)
    raise DataError(candidates[0], f"is not a {what} folder: none of these exist: {tried}")
