"""Classification: supervised from scratch, fine-tuning a pretrained encoder, or the MLP probes (docs/method.md).

Test-time voting (``vote.enabled``) runs after training, on the final weights and on the best-epoch
checkpoint; it is reported as ``acc_vote`` beside the single-pass ``acc``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn
from torch.utils.data import Dataset

from act3d.data.transforms import ScaleAndTranslate
from act3d.engine.checkpoint import load_checkpoint
from act3d.engine.config import Strict, TrainingRun
from act3d.engine.trainer import FitResult, TaskHooks
from act3d.errors import ConfigError
from act3d.models.parameter_efficient import (
    LORA_TARGETS,
    add_deep_prompts,
    add_lora,
    train_only,
    trainable_fraction,
)
from act3d.models.point_transformer import EncoderConfig, PointClassifier, PointEncoder
from act3d.ops import gather_points
from act3d.tasks.common import (
    accuracy_metrics,
    build_split,
    check_patches_fit,
    eval_loader,
    initial_encoder,
    predict_logits,
    train_and_test_sets,
)
from act3d.tasks.stats import summarize

Mode = Literal["full", "mlp-linear", "mlp-3", "lora", "prompt"]
MODE_ALIASES = {"linear": "mlp-linear", "mlp3": "mlp-3"}


class EfficientTuningConfig(Strict):
    """``mode: lora`` (LoRA rank / alpha / dropout on ``lora_targets`` of every block) and ``mode: prompt``
    (``prompts`` learned tokens per block, VPT-Deep); the head and the CLS token and position train too."""

    lora_rank: int = Field(8, gt=0)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: list(LORA_TARGETS))
    prompts: int = Field(10, gt=0)
    prompt_dropout: float = Field(0.0, ge=0, lt=1)


class VoteConfig(Strict):
    """Test-time voting: ``passes`` augmented passes per test cloud, logits averaged (docs/method.md).

    Each pass takes a random ``data.npoints`` of the ``data.train_npoints`` FPS points when that is
    set (ModelNet40: FPS 1200 → random 1024), then scale & translate (``data.augment.scale`` /
    ``shift``). ``repeats`` > 1 repeats the whole vote with new draws; ``keep: mean`` reports the mean
    over repeats (honest), ``keep: best`` the maximum (the official ``--test`` protocol, optimistic).
    """

    enabled: bool = False
    passes: int = Field(10, gt=0)
    repeats: int = Field(1, gt=0)
    keep: Literal["mean", "best"] = "mean"
    seed: int = 0

    def label(self) -> str:
        what = f"mean logits over {self.passes} augmented passes"
        if self.repeats == 1:
            return what
        if self.keep == "best":
            return f"{what}; max over {self.repeats} vote repeats (official --test protocol, optimistic)"
        return f"{what}; mean over {self.repeats} vote repeats (acc_vote_max: the official, optimistic, max)"


class ClassifierRun(TrainingRun):
    """What every classifier fine-tune sets (``classify`` and each ``fewshot`` fold): the encoder's sizes,
    where it starts from (``init``), what trains (``mode``) and the head."""

    model: EncoderConfig = Field(default_factory=EncoderConfig)
    mode: Mode = "full"
    efficient: EfficientTuningConfig = Field(default_factory=EfficientTuningConfig)
    init: str | None = None
    head_dropout: float = Field(0.5, ge=0, lt=1)
    head_classes: int | None = Field(None, gt=0)

    @field_validator("mode", mode="before")
    @classmethod
    def _alias(cls, mode: object) -> object:
        """``linear`` and ``mlp3`` name the paper's ``mlp-linear`` and ``mlp-3``."""
        return MODE_ALIASES.get(mode, mode) if isinstance(mode, str) else mode


class ClassifyConfig(ClassifierRun):
    """``act3d classify``: which data, which encoder, which mode, how to train."""

    task: Literal["classify"] = "classify"
    vote: VoteConfig = Field(default_factory=VoteConfig)


class ClassificationTask(TaskHooks):
    """Cross-entropy on [CLS ; max-pool] features; ``full`` trains everything, the probes only "cls" params
    (head, CLS token and position), ``lora`` and ``prompt`` those and their adapters (the trainable share is
    in ``info["trainable_parameters"]``).

    ``datasets`` (train, test) replaces the sets built from ``config.data`` (few-shot episodes);
    ``head_classes`` widens the head beyond the dataset's classes (the official few-shot head has 40).
    """

    primary_metric = "acc"
    higher_is_better = True

    def __init__(
        self,
        config: ClassifyConfig,
        run_dir: Path | None = None,
        datasets: tuple[Dataset, Dataset] | None = None,
    ) -> None:
        self.config = config
        check_patches_fit(config.data.npoints, config.model.num_groups, config.model.group_size)
        self.train_set, self.test_set = datasets or train_and_test_sets(config.data, config.train.seed)
        classes = len(self.train_set.classes)
        if config.head_classes is not None and config.head_classes < classes:
            raise ConfigError(f"head_classes ({config.head_classes}) is smaller than the {classes} dataset classes")
        self.num_classes = config.head_classes or classes
        encoder, source = initial_encoder(config.init, config.model)
        adapters = self._adapt(encoder)
        head = "linear" if config.mode == "mlp-linear" else "mlp3"
        self.model = PointClassifier(encoder, self.num_classes, head, config.head_dropout)
        if config.mode == "full":
            fraction = trainable_fraction(self.model)
        else:
            fraction = train_only(self.model, [*self.model.probe_parameters(), *adapters])
        self.info = {"init": source, "mode": config.mode, "trainable_parameters": fraction}

    def _adapt(self, encoder: PointEncoder) -> list[nn.Parameter]:
        """The adapters ``mode`` adds to the encoder (LoRA or prompts), in place; none for the other modes."""
        eff = self.config.efficient
        if self.config.mode == "lora":
            return add_lora(encoder, eff.lora_rank, eff.lora_alpha, eff.lora_dropout, eff.lora_targets)
        if self.config.mode == "prompt":
            return add_deep_prompts(encoder, eff.prompts, eff.prompt_dropout)
        return []

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], global_step: int):
        logits = model(batch["points"])
        loss = F.cross_entropy(logits.float(), batch["label"])
        acc = (logits.argmax(1) == batch["label"]).float().mean() * 100
        return loss, {"acc": acc.detach()}

    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        logits, labels = predict_logits(model, eval_loader(self.test_set, self.config.data), device)
        metrics = accuracy_metrics(logits, labels, self.num_classes)
        metrics["loss"] = F.cross_entropy(logits, labels).item()
        return metrics

    def after_fit(self, result: FitResult, device: torch.device) -> None:
        """Voting on the final weights and on the best-epoch checkpoint (when ``vote.enabled``)."""
        if not self.config.vote.enabled:
            return
        vote_set = self.vote_set()
        self.model.to(device).eval()
        final_vote = self.vote(self.model, vote_set, device)
        result.final_metrics.update(final_vote)
        if result.best_epoch == result.final_metrics.get("epoch"):  # the best epoch is the last: same weights
            result.best_metrics.update(final_vote)
        elif result.best_checkpoint.is_file():
            self.model.load_state_dict(load_checkpoint(result.best_checkpoint)["model"])
            result.best_metrics.update(self.vote(self.model, vote_set, device))
        self.info["acc_vote"] = self.config.vote.label()

    def vote_set(self) -> Dataset:
        """The test clouds the vote draws from: ``train_npoints`` FPS points when set, else ``npoints``."""
        data = self.config.data
        if data.train_npoints is None or data.train_npoints == data.npoints:
            return self.test_set
        return build_split(data, data.test_split, data.train_npoints)

    def vote(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        """``acc_vote`` / ``class_acc_vote`` (and, with repeats, their spread) of ``model`` on ``dataset``."""
        vote, data = self.config.vote, self.config.data
        scaler = ScaleAndTranslate(*data.augment.scale, data.augment.shift, isotropic=data.augment.isotropic_scale)
        accs, class_accs = [], []
        for repeat in range(vote.repeats):
            generator = torch.Generator().manual_seed(vote.seed * 100_003 + repeat)
            logits, labels = vote_logits(
                model, eval_loader(dataset, data), device, vote.passes, data.npoints, scaler, generator
            )
            metrics = accuracy_metrics(logits, labels, self.num_classes)
            accs.append(metrics["acc"])
            class_accs.append(metrics["class_acc"])
        pick = max if vote.keep == "best" else (lambda v: summarize(v)["mean"])
        out = {"acc_vote": pick(accs), "class_acc_vote": pick(class_accs)}
        if vote.repeats > 1:
            stats = summarize(accs)
            out |= {"acc_vote_mean": stats["mean"], "acc_vote_std": stats["std"], "acc_vote_max": stats["max"]}
        return out


@torch.no_grad()
def vote_logits(
    model: nn.Module,
    loader: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    passes: int,
    npoints: int,
    scaler: ScaleAndTranslate | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) averaged over ``passes`` augmented passes, and labels (N,), on the CPU.

    Each pass draws, per cloud, a random ``npoints`` of its points (when it has more) and a scale and
    shift, all from ``generator``; the prediction is the argmax of the averaged logits (not a
    majority vote of the passes).
    """
    if scaler is not None:
        scaler.generator = generator
    logits, labels = [], []
    for batch in loader:
        points = batch["points"]
        total = None
        for _ in range(passes):
            x = random_subsets(points, npoints, generator)
            if scaler is not None:
                x = scaler.batch(x)
            out = model(x.to(device)).float().cpu()
            total = out if total is None else total + out
        logits.append(total / passes)
        labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def random_subsets(points: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``n`` of the P points of every cloud of ``points`` (B, P, 3), without replacement."""
    b, p, _ = points.shape
    if p <= n:
        return points
    idx = torch.rand(b, p, generator=generator).argsort(dim=1)[:, :n]
    return gather_points(points, idx)
