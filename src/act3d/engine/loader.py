"""Data loading that resumes exactly: a DistributedSampler that can start mid-epoch, and per-sample seeds.

Augmentation randomness is drawn from a generator seeded by ``(seed, epoch, index)``, so a sample is
augmented identically whichever worker, rank or resumed process loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

Item = dict[str, torch.Tensor]
Augment = Callable[[Item, torch.Generator], Item]


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (one replica when not distributed) that skips the first ``start`` indices."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class SeededAugment(Dataset):
    """Wrap a dataset; item ``i`` of epoch ``e`` is augmented with a generator seeded by (seed, e, i)."""

    def __init__(self, dataset: Dataset, augment: Augment | None, seed: int) -> None:
        self.dataset = dataset
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Item:
        item = self.dataset[index]
        if self.augment is None:
            return item
        seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
        return self.augment(item, torch.Generator().manual_seed(seed))

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def make_loader(
    dataset: Dataset, batch_size: int, sampler: ResumableSampler, num_workers: int, seed: int
) -> DataLoader:
    """A training DataLoader (full batches only) with its own generator, so iterating it never draws
    from the global torch RNG. With workers, the dataset's caches (``warm_cache``: FPS indices of
    in-memory clouds) are filled first in this process, so every epoch's workers inherit them."""
    warm = getattr(dataset, "warm_cache", None) if num_workers > 0 else None
    if warm is not None:
        warm()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
    )
