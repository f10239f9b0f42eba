"""``act3d pretrain-teacher``: ACT stage I, the cross-modal autoencoder around a frozen teacher."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from tqdm import tqdm

from act3d.engine.config import (
    DataConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainingRun,
)
from act3d.engine.trainer import TaskHooks
from act3d.models.autoencoder import AutoencoderConfig, TeacherConfig, build_autoencoder
from act3d.objectives import (
    DiversityWeightSchedule,
    KLWeightSchedule,
    TemperatureSchedule,
    codebook_diversity,
    codebook_kl,
    patch_chamfer_l1,
)
from act3d.objectives.code_information import CodeInformation, swap_codes, verdict
from act3d.tasks.common import check_patches_fit, eval_loader, train_and_test_sets
from act3d.viz import save_cloud_grid


class PretrainTeacherConfig(TrainingRun):
    """``act3d pretrain-teacher`` configuration.

    ``straight_through``: train with hard one-hot Gumbel samples (straight-through gradients) instead
    of the paper's soft Gumbel-softmax (an option for short runs; see docs/method.md).
    ``diversity_weight``, ``diversity_sharpness``: weight schedule and token-entropy factor of the
    batch-level code-diversity term (:func:`act3d.objectives.codebook_diversity`; not in the paper,
    off by default).
    """

    task: Literal["pretrain-teacher"] = "pretrain-teacher"
    data: DataConfig = Field(default_factory=lambda: DataConfig(batch_size=64))
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    model: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    temperature: TemperatureSchedule = Field(default_factory=TemperatureSchedule)
    kl_weight: KLWeightSchedule = Field(default_factory=KLWeightSchedule)
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(lr=5e-4, weight_decay=5e-4))
    scheduler: SchedulerConfig = Field(default_factory=lambda: SchedulerConfig(min_lr=1e-7))
    pictures: int = Field(4, ge=0)
    straight_through: bool = False
    diversity_weight: DiversityWeightSchedule = Field(default_factory=DiversityWeightSchedule)
    diversity_sharpness: float = Field(0.0, ge=0)


class PretrainTeacherTask(TaskHooks):
    """Reconstruction (CD-L1 coarse + fine) + KL; evaluates test CD-L1 with a hard τ=1 sample and the
    code-information diagnostics."""

    primary_metric = "cd_l1"
    higher_is_better = False

    def __init__(self, config: PretrainTeacherConfig, run_dir: Path | None = None) -> None:
        self.config = config
        check_patches_fit(config.data.npoints, config.model.num_groups, config.model.group_size)
        self.run_dir = run_dir
        self.train_set, self.test_set = train_and_test_sets(config.data, config.train.seed)
        self.model = build_autoencoder(config.teacher, config.model)
        self.info = {"teacher": self.model.teacher.teacher.source}

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        return self.model.trainable_parameters()

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], global_step: int):
        tau = self.config.temperature(global_step)
        weight = self.config.kl_weight(global_step)
        out = model(batch["points"], temperature=tau, hard=self.config.straight_through)
        coarse = patch_chamfer_l1(out.coarse, out.patches)
        fine = patch_chamfer_l1(out.fine, out.patches)
        kl = codebook_kl(out.logits)
        loss = coarse + fine + weight * kl
        extra = {}
        schedule = self.config.diversity_weight
        if max(schedule.start, schedule.target) > 0:
            diversity_weight = schedule(global_step)
            diversity = codebook_diversity(out.logits, self.config.diversity_sharpness)
            loss = loss + diversity_weight * diversity
            extra = {"diversity": diversity.detach(), "diversity_weight": diversity_weight}
        return loss, {
            "cd_l1_coarse": coarse.detach(),
            "cd_l1_fine": fine.detach(),
            "kl": kl.detach(),
            "temperature": tau,
            "kl_weight": weight,
            **extra,
        }

    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        """Test CD-L1 of hard τ = 1 samples, and whether the codes carry information about their patches
        (``act3d.objectives.code_information``: entropies, P(sample = argmax), CD-L1 with the codes
        shuffled across patches and with the argmax codes). The verdict goes to the run's notes."""
        torch.manual_seed(self.config.train.seed)
        stats = CodeInformation(self.config.model.codebook_size)
        for batch in eval_loader(self.test_set, self.config.data):
            patches, centers = self.model.grouper(batch["points"].to(device))
            stats.update(self.model, patches, centers)
        metrics = stats.summary()
        self.info["codes"] = verdict(metrics)
        tqdm.write(f"stage I, epoch {epoch + 1}: {self.info['codes']}")
        return metrics

    def after_evaluation(self, model: nn.Module, device: torch.device, epoch: int) -> None:
        """``reconstructions.png``: input vs reconstruction for test shapes spread over the split (so, over
        classes)."""
        if self.run_dir is None or not self.config.pictures:
            return
        picks = torch.linspace(0, len(self.test_set) - 1, self.config.pictures).long().unique()
        points = torch.stack([self.test_set[int(i)]["points"] for i in picks]).to(device)
        out = self.model(points, temperature=1.0, hard=True)  # not a DDP wrapper: this is one process
        recon = (out.fine + out.centers.unsqueeze(2)).flatten(1, 2)
        rows = [[points[i].cpu().numpy(), recon[i].float().cpu().numpy()] for i in range(len(picks))]
        save_cloud_grid(rows, ["input", "reconstruction (stage I, hard codes)"], self.run_dir / "reconstructions.png")
        self._save_code_swap(points)

    def _save_code_swap(self, points: torch.Tensor) -> None:
        """``code_swap.png``: patches with the most frequent codes, decoded with their own code and with the
        next row's. Where the codes matter, the two columns differ in shape."""
        swap = swap_codes(self.model, *self.model.grouper(points), picks=6)
        rows = [[t[i].float().cpu().numpy() for t in swap[:3]] for i in range(len(swap.codes))]
        codes = swap.codes.tolist()
        titles = ["input patch", "decoded, own code", "decoded, next row's code"]
        save_cloud_grid(
            rows,
            titles,
            self.run_dir / "code_swap.png",
            row_labels=[f"code {c}" for c in codes],
            row_scale=True,
            point_size=10,
        )
