"""Training objectives: stage-I reconstruction + KL, stage-II distillation, the Point-MAE baseline."""

from act3d.objectives.distillation import distillation_floors, masked_feature_loss, masked_patch_loss
from act3d.objectives.reconstruction import codebook_diversity, codebook_kl, patch_chamfer_l1
from act3d.objectives.schedules import (
    CosineRamp,
    DiversityWeightSchedule,
    KLWeightSchedule,
    TemperatureSchedule,
)

__all__ = [
    "CosineRamp",
    "DiversityWeightSchedule",
    "KLWeightSchedule",
    "TemperatureSchedule",
    "codebook_diversity",
    "codebook_kl",
    "distillation_floors",
    "masked_feature_loss",
    "masked_patch_loss",
    "patch_chamfer_l1",
]
