"""Pieces every task shares: datasets and augmentation from a :class:`DataConfig`, evaluation loops."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from act3d.data import build_dataset
from act3d.data.transforms import Jitter, RotateUp, ScaleAndTranslate, take
from act3d.engine.config import DataConfig
from act3d.engine.loader import Item, SeededAugment
from act3d.errors import ConfigError
from act3d.models.encoder_io import load_encoder
from act3d.models.point_transformer import EncoderConfig, PointEncoder


def build_augment(data: DataConfig) -> Callable[[Item, torch.Generator], Item] | None:
    """The per-sample training augmentation the config asks for (``None`` when it asks for none).

    With ``data.train_npoints`` a random ``data.npoints`` of the (FPS-cut) training points, in random
    order, come first (ModelNet40: FPS 1200, then a random 1024; ScanObjectNN: ``train_npoints ==
    npoints`` = 2048, a random permutation, so that the model's FPS starts from a random point, as the
    official runner's), then scale/translate, rotation and jitter.
    """
    aug = data.augment
    kinds: list[Callable[[torch.Generator], Callable[[Item], Item]]] = []
    if data.train_npoints is not None:
        if data.train_npoints < data.npoints:
            raise ConfigError(f"data.train_npoints ({data.train_npoints}) must be >= data.npoints ({data.npoints})")
        kinds.append(
            lambda g: lambda item: take(item, torch.randperm(len(item["points"]), generator=g)[: data.npoints])
        )
    if aug.scale_translate:
        kinds.append(lambda g: ScaleAndTranslate(*aug.scale, aug.shift, generator=g, isotropic=aug.isotropic_scale))
    if aug.rotate_up:
        kinds.append(lambda g: RotateUp(generator=g))
    if aug.jitter:
        kinds.append(lambda g: Jitter(generator=g))
    if not kinds:
        return None

    def augment(item: Item, generator: torch.Generator) -> Item:
        for kind in kinds:
            item = kind(generator)(item)
        return item

    return augment


def build_split(data: DataConfig, split: str, npoints: int | None = None) -> Dataset:
    """The plain (unaugmented) dataset of ``split`` with ``npoints`` points (default ``data.npoints``)."""
    return build_dataset(data.name, data.root, split, npoints or data.npoints, **data.options)


def augmented(dataset: Dataset, data: DataConfig, seed: int) -> SeededAugment:
    """``dataset`` with the training augmentation of ``data``, seeded per (seed, epoch, index)."""
    return SeededAugment(dataset, build_augment(data), seed)


def check_patches_fit(npoints: int, num_groups: int, group_size: int) -> None:
    """ConfigError unless clouds of ``data.npoints`` points hold the patches the model asks for.

    Checked when a task is built, so a run stops before any data is read, not inside the first step.
    """
    for key, value, why in (
        ("num_groups", num_groups, "FPS picks that many distinct patch centres"),
        ("group_size", group_size, "each patch takes that many nearest neighbours"),
    ):
        if value > npoints:
            raise ConfigError(
                f"model.{key}={value} exceeds data.npoints={npoints}: every cloud is cut to data.npoints "
                f"points and {why}; lower model.{key} or raise data.npoints"
            )


def train_and_test_sets(data: DataConfig, seed: int) -> tuple[SeededAugment, Dataset]:
    """The augmented training set (cut to ``train_npoints`` when set) and the plain test set of ``data``."""
    train = build_split(data, data.train_split, data.train_npoints)
    return augmented(train, data, seed), build_split(data, data.test_split)


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
    """Outputs (N, C) (a classifier's logits, an encoder's features) and labels (N,) over a loader, on the CPU."""
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


def initial_encoder(init: str | None, config: EncoderConfig | None) -> tuple[PointEncoder, str]:
    """The encoder a task starts from and its description: the checkpoint ``init``, or a random
    initialisation (the "no pretraining" baseline) when ``init`` is None or ``"random"``."""
    if init in (None, "random"):
        return load_encoder("random", config), "random init (no pretraining)"
    return load_encoder(init, config), str(init)
