"""Pieces every task shares: datasets and augmentation from a :class:`DataConfig`, evaluation loops."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from act3d.data import build_dataset
from act3d.data.transforms import Jitter, RotateUp, ScaleAndTranslate
from act3d.engine.config import DataConfig
from act3d.engine.loader import Item, SeededAugment


def build_augment(data: DataConfig) -> Callable[[Item, torch.Generator], Item] | None:
    """The per-sample training augmentation the config asks for (``None`` when it asks for none)."""
    kinds = [
        kind
        for kind, wanted in (
            (ScaleAndTranslate, data.augment.scale_translate),
            (RotateUp, data.augment.rotate_up),
            (Jitter, data.augment.jitter),
        )
        if wanted
    ]
    if not kinds:
        return None

    def augment(item: Item, generator: torch.Generator) -> Item:
        for kind in kinds:
            item = kind(generator=generator)(item)
        return item

    return augment


def train_and_test_sets(data: DataConfig, seed: int) -> tuple[SeededAugment, Dataset]:
    """The augmented training set and the plain test set of ``data``."""
    train = build_dataset(data.name, data.root, data.train_split, data.npoints, **data.options)
    test = build_dataset(data.name, data.root, data.test_split, data.npoints, **data.options)
    return SeededAugment(train, build_augment(data), seed), test


def eval_loader(dataset: Dataset, data: DataConfig) -> DataLoader:
    """Deterministic, ordered batches for evaluation."""
    return DataLoader(
        dataset,
        batch_size=data.eval_batch_size or data.batch_size,
        shuffle=False,
        num_workers=data.num_workers,
    )


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) and labels (N,) of a classifier over a loader, on the CPU."""
    logits, labels = [], []
    for batch in loader:
        logits.append(model(batch["points"].to(device)).float().cpu())
        labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def accuracy_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Overall accuracy and mean per-class accuracy (classes absent from ``labels`` are skipped), in %."""
    pred = logits.argmax(dim=1)
    correct = (pred == labels).float()
    per_class = [correct[labels == c].mean() for c in range(num_classes) if (labels == c).any()]
    return {"acc": 100.0 * correct.mean().item(), "class_acc": 100.0 * torch.stack(per_class).mean().item()}
