"""``act3d partseg``: part segmentation (ShapeNetPart protocol, docs/method.md) and its metrics.

Metrics, as the official evaluation: the prediction of a point is the argmax of its logits
*restricted to the parts of the shape's category*; a shape's mIoU is the mean over its category's
parts of IoU, where a part absent from both prediction and ground truth counts as IoU 1; instance
mIoU is the mean over shapes, class mIoU the mean over categories of their shapes' mean. All in %.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from act3d.engine.config import AugmentConfig, DataConfig, OptimizerConfig, TrainingRun
from act3d.engine.trainer import FitResult, TaskHooks
from act3d.errors import ConfigError
from act3d.models.part_segmentation import PartSegmenter, SegHeadConfig
from act3d.models.point_transformer import EncoderConfig
from act3d.tasks.common import check_patches_fit, eval_loader, initial_encoder, train_and_test_sets


class PartSegConfig(TrainingRun):
    """``act3d partseg``: ShapeNetPart (or any part dataset), 2048 points, G=128, AdamW 2e-4, 300 epochs."""

    task: Literal["partseg"] = "partseg"
    data: DataConfig = Field(
        default_factory=lambda: DataConfig(
            name="shapenetpart",
            npoints=2048,
            train_split="trainval",
            batch_size=16,
            augment=AugmentConfig(scale_translate=True, scale=(0.8, 1.25), shift=0.1, isotropic_scale=True),
        )
    )
    model: EncoderConfig = Field(default_factory=lambda: EncoderConfig(num_groups=128))
    init: str | None = None
    head: SegHeadConfig = Field(default_factory=SegHeadConfig)
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(lr=2e-4, weight_decay=0.05))


# ---------------------------------------------------------------------------------------- metrics


def restricted_argmax(logits: torch.Tensor, parts: Sequence[int]) -> torch.Tensor:
    """Global part ids (…,) of the best of ``parts`` for logits (…, num_parts)."""
    allowed = torch.as_tensor(list(parts), dtype=torch.long, device=logits.device)
    return allowed[logits.index_select(-1, allowed).argmax(dim=-1)]


def part_ious(pred: torch.Tensor, target: torch.Tensor, parts: Sequence[int]) -> list[float]:
    """IoU of each of ``parts`` for one shape (pred, target: (N,) global part ids); absent from both → 1."""
    ious = []
    for part in parts:
        p, t = pred == part, target == part
        union = (p | t).sum().item()
        ious.append(1.0 if union == 0 else (p & t).sum().item() / union)
    return ious


def miou_metrics(shape_mious: Sequence[float], categories: Sequence[str]) -> dict[str, float]:
    """``inst_miou`` (mean over shapes) and ``class_miou`` (mean over categories of their means), in %;
    plus ``miou/<category>``. ``shape_mious[i]`` is shape i's mean part IoU (0..1), ``categories[i]`` its category."""
    if len(shape_mious) != len(categories) or not shape_mious:
        raise ValueError("miou_metrics needs one category per shape and at least one shape")
    by_cat: dict[str, list[float]] = {}
    for value, cat in zip(shape_mious, categories, strict=True):
        by_cat.setdefault(cat, []).append(float(value))
    per_cat = {cat: sum(v) / len(v) for cat, v in sorted(by_cat.items())}
    out = {
        "inst_miou": 100.0 * sum(shape_mious) / len(shape_mious),
        "class_miou": 100.0 * sum(per_cat.values()) / len(per_cat),
    }
    out |= {f"miou/{cat}": 100.0 * v for cat, v in per_cat.items()}
    return out


def segmentation_metrics(
    shapes: Iterable[tuple[torch.Tensor, torch.Tensor, int]],
    classes: Sequence[str],
    part_classes: Mapping[str, Sequence[int]],
) -> dict[str, float]:
    """Instance/class mIoU and point accuracy over ``shapes``: (logits (N, P), target (N,), category
    index) each, consumed one at a time (a generator keeps one batch of logits in memory)."""
    shape_mious, cats, correct, seen = [], [], 0, 0
    for logit, target, label in shapes:
        cat = classes[int(label)]
        pred = restricted_argmax(logit, part_classes[cat])
        ious = part_ious(pred, target, part_classes[cat])
        shape_mious.append(sum(ious) / len(ious))
        cats.append(cat)
        correct += (pred == target).sum().item()
        seen += target.numel()
    return {**miou_metrics(shape_mious, cats), "acc": 100.0 * correct / seen}


# ------------------------------------------------------------------------------------------- task


class PartSegTask(TaskHooks):
    """Cross-entropy (= the official NLL of log-softmax) per point; test instance and class mIoU."""

    primary_metric = "inst_miou"
    higher_is_better = True

    def __init__(self, config: PartSegConfig, run_dir: Path | None = None) -> None:
        self.config = config
        check_patches_fit(config.data.npoints, config.model.num_groups, config.model.group_size)
        self.train_set, self.test_set = train_and_test_sets(config.data, config.train.seed)
        base = self.train_set.dataset
        if not hasattr(base, "part_classes"):
            raise ConfigError(f"dataset {config.data.name!r} has no part labels (use shapenetpart or synthetic)")
        self.classes: list[str] = list(base.classes)
        self.part_classes: dict[str, list[int]] = {k: list(v) for k, v in base.part_classes.items()}
        num_parts = max(p for parts in self.part_classes.values() for p in parts) + 1
        encoder, source = initial_encoder(config.init, config.model)
        h = config.head
        self.model = PartSegmenter(
            encoder, len(self.classes), num_parts, h.layers, h.propagation, h.head, h.label_dim, h.dropout
        )
        self.info = {
            "init": source,
            "metrics": "inst_miou: mean over shapes; class_miou: mean of category means; absent part = IoU 1; "
            "argmax restricted to the category's parts (in %)",
        }

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], global_step: int):
        logits = model(batch["points"], batch["label"])
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch["parts"].flatten())
        acc = (logits.argmax(-1) == batch["parts"]).float().mean() * 100
        return loss, {"acc": acc.detach()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        loss, count = 0.0, 0

        def shapes() -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
            nonlocal loss, count
            for batch in eval_loader(self.test_set, self.config.data):
                out = model(batch["points"].to(device), batch["label"].to(device)).float().cpu()
                loss += F.cross_entropy(out.flatten(0, 1), batch["parts"].flatten(), reduction="sum").item()
                count += batch["parts"].numel()
                yield from zip(out, batch["parts"], batch["label"].tolist(), strict=True)

        metrics = segmentation_metrics(shapes(), self.classes, self.part_classes)
        return {
            "inst_miou": metrics.pop("inst_miou"),
            "class_miou": metrics.pop("class_miou"),
            **metrics,
            "loss": loss / count,
        }

    def after_fit(self, result: FitResult, device: torch.device) -> None:
        """Record the official way of reporting: the best class mIoU over epochs, wherever it was."""
        scores = [(h["class_miou"], int(h["epoch"])) for h in result.history if "class_miou" in h]
        if scores:
            best, epoch = max(scores)
            self.info["best_class_miou_any_epoch"] = (
                f"{best:.4f} at epoch {epoch} (the official log reports the best class mIoU and the best "
                "instance mIoU each over all epochs, possibly from different epochs: optimistic)"
            )
