"""``act3d pretrain-teacher``: ACT stage I, the cross-modal autoencoder around a frozen teacher."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from act3d.engine.config import (
    DataConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainingRun,
)
from act3d.engine.trainer import TaskHooks
from act3d.models.autoencoder import ACTAutoencoder, AutoencoderConfig, TeacherConfig, build_autoencoder
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
        (:func:`code_diagnostics`). The verdict goes to the run's notes."""
        metrics = code_diagnostics(self.model, self.test_set, self.config.data, device, self.config.train.seed)
        self.info["codes"] = verdict(metrics)
        tqdm.write(f"stage I, epoch {epoch + 1}: {self.info['codes']}")
        return metrics

    def after_evaluation(self, model: nn.Module, device: torch.device, epoch: int) -> None:
        """``reconstructions.png`` and ``code_swap.png`` (:func:`save_stage1_pictures`)."""
        if self.run_dir is not None and self.config.pictures:  # self.model: never a DDP wrapper
            save_stage1_pictures(self.model, self.test_set, self.config.pictures, self.run_dir, device)


@torch.no_grad()
def code_diagnostics(
    model: ACTAutoencoder, dataset: Dataset, data: DataConfig, device: torch.device, seed: int
) -> dict[str, float]:
    """The code diagnostics of ``act3d.objectives.code_information`` over a whole split, with ``model`` in
    its current mode: entropies, P(sample = argmax), CD-L1 with the sampled, shuffled and argmax codes."""
    torch.manual_seed(seed)
    stats = CodeInformation(model.codebook.shape[0])
    for batch in eval_loader(dataset, data):
        patches, centers = model.grouper(batch["points"].to(device))
        stats.update(model, patches, centers)
    return stats.summary()


@torch.no_grad()
def save_stage1_pictures(
    model: ACTAutoencoder, dataset: Dataset, count: int, run_dir: Path, device: torch.device
) -> None:
    """``reconstructions.png``: input vs reconstruction for ``count`` test shapes spread over the split (so,
    over classes). ``code_swap.png``: the patches of those shapes with the most frequent codes, decoded
    with their own code and with the next row's; where the codes matter, the two columns differ in shape."""
    picks = torch.linspace(0, len(dataset) - 1, count).long().unique()
    points = torch.stack([dataset[int(i)]["points"] for i in picks]).to(device)
    out = model(points, temperature=1.0, hard=True)
    recon = (out.fine + out.centers.unsqueeze(2)).flatten(1, 2)
    rows = [[points[i].cpu().numpy(), recon[i].float().cpu().numpy()] for i in range(len(picks))]
    save_cloud_grid(rows, ["input", "reconstruction (stage I, hard codes)"], run_dir / "reconstructions.png")
    swap = swap_codes(model, out.patches, out.centers, picks=6)  # the patches grouped above
    rows = [[t[i].float().cpu().numpy() for t in swap[:3]] for i in range(len(swap.codes))]
    labels = [f"code {c}" for c in swap.codes.tolist()]
    titles = ["input patch", "decoded, own code", "decoded, next row's code"]
    save_cloud_grid(rows, titles, run_dir / "code_swap.png", row_labels=labels, row_scale=True, point_size=10)
