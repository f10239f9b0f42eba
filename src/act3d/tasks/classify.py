"""Classification: supervised from scratch, fine-tuning a pretrained encoder, or the MLP probes (ACT_SPEC §2)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from act3d.engine.config import (
    DataConfig,
    EncoderConfig,
    OptimizerConfig,
    RunConfig,
    SchedulerConfig,
    Strict,
    TrainConfig,
)
from act3d.models.encoder_io import load_encoder
from act3d.models.point_transformer import PointClassifier, PointEncoder
from act3d.tasks.common import accuracy_metrics, eval_loader, predict_logits, train_and_test_sets

Mode = Literal["full", "mlp-linear", "mlp-3"]


class ClassifyConfig(Strict):
    """``act3d classify``: which data, which encoder, which mode, how to train."""

    task: Literal["classify"] = "classify"
    data: DataConfig = Field(default_factory=DataConfig)
    model: EncoderConfig = Field(default_factory=EncoderConfig)
    mode: Mode = "full"
    init: str | None = None
    head_dropout: float = Field(0.5, ge=0, lt=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)


class ClassificationTask:
    """Cross-entropy on [CLS ; max-pool] features; ``full`` trains everything, the probes only "cls" params."""

    primary_metric = "acc"
    higher_is_better = True

    def __init__(
        self, config: ClassifyConfig, run_dir: Path | None = None, encoder: PointEncoder | None = None
    ) -> None:
        self.config = config
        self.train_set, self.test_set = train_and_test_sets(config.data, config.train.seed)
        self.num_classes = len(self.train_set.classes)
        if encoder is None:
            encoder = (
                load_encoder(config.init, config.model) if config.init else PointEncoder(**config.model.model_dump())
            )
        self.info = {"init": config.init or "random (no pretraining)", "mode": config.mode}
        head = "linear" if config.mode == "mlp-linear" else "mlp3"
        self.model = PointClassifier(encoder, self.num_classes, head, config.head_dropout)
        if config.mode != "full":
            probe = {id(p) for p in self.model.probe_parameters()}
            for param in self.model.parameters():
                param.requires_grad_(id(param) in probe)

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], global_step: int):
        logits = model(batch["points"])
        loss = F.cross_entropy(logits.float(), batch["label"])
        acc = (logits.argmax(1) == batch["label"]).float().mean() * 100
        return loss, {"acc": acc.item()}

    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        logits, labels = predict_logits(model, eval_loader(self.test_set, self.config.data), device)
        metrics = accuracy_metrics(logits, labels, self.num_classes)
        metrics["loss"] = F.cross_entropy(logits, labels).item()
        return metrics
