"""``act3d pretrain``: stage II, masked point modeling: ACT distillation, Point-MAE, or neither."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import Dataset

from act3d.engine.config import DataConfig, OptimizerConfig, TrainConfig, TrainingRun
from act3d.engine.trainer import TaskHooks
from act3d.models.autoencoder import TargetCode
from act3d.models.cross_modal_teacher import CrossModalTeacher
from act3d.models.encoder_io import save_encoder
from act3d.models.masked import MaskedPointModel, MaskingConfig, take_tokens
from act3d.models.point_transformer import EncoderConfig, PointEncoder
from act3d.objectives import distillation_floors, masked_feature_loss, masked_patch_loss
from act3d.tasks.common import build_split, check_patches_fit, eval_loader, train_and_test_sets
from act3d.tasks.svm import extract_features, linear_svm_accuracy


class PretrainConfig(TrainingRun):
    """``act3d pretrain`` configuration.

    ``embed_visible_only``: the student's mini-PointNet embeds only the visible patches (a deviation
    for speed: its BatchNorm statistics then differ from the official model, which embeds all).
    ``target``: which stage-I code makes the ACT target: ``sample`` (the paper: a hard Gumbel sample
    at τ = 1), or, as ablations, ``argmax`` (the most likely code) or ``soft`` (the softmax-weighted
    codebook vectors).
    """

    task: Literal["pretrain"] = "pretrain"
    objective: Literal["act", "point_mae"] = "act"
    teacher_checkpoint: str | None = None
    loss: Literal["cosine", "smooth_l1", "l2"] = "cosine"
    data: DataConfig = Field(default_factory=lambda: DataConfig(batch_size=128, train_split="all"))
    model: EncoderConfig = Field(default_factory=EncoderConfig)
    masking: MaskingConfig = Field(default_factory=MaskingConfig)
    decoder_depth: int = Field(2, gt=0)
    decoder_heads: int = Field(6, gt=0)
    embed_visible_only: bool = False
    target: TargetCode = "sample"
    svm_eval: bool = True
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(lr=1e-3, weight_decay=0.05))
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(grad_clip=None))

    @model_validator(mode="after")
    def _needs_teacher(self) -> PretrainConfig:
        if self.objective == "act" and not self.teacher_checkpoint:
            raise ValueError("objective 'act' needs teacher_checkpoint (the stage-I ckpt-best.pth)")
        return self


class PretrainTask(TaskHooks):
    """Stage II. ``act``: cosine distance to the frozen teacher's DGCNN₂ features on masked tokens;
    ``point_mae``: Chamfer-L2 of the masked patches' points."""

    primary_metric = "loss"
    higher_is_better = False

    def __init__(self, config: PretrainConfig, run_dir: Path | None = None) -> None:
        self.config = config
        check_patches_fit(config.data.npoints, config.model.num_groups, config.model.group_size)
        self.run_dir = run_dir
        m = config.model
        self.train_set, self.test_set = train_and_test_sets(config.data, config.train.seed)
        self.teacher = None
        self._svm_train: Dataset | None = None
        self.info = {"objective": config.objective}
        if config.objective == "act":
            self.teacher = CrossModalTeacher.from_checkpoint(config.teacher_checkpoint, m.num_groups, m.group_size)
            self.info["teacher"] = self.teacher.source
            out_dim = self.teacher.target_dim
        else:
            out_dim = 3 * m.group_size
        with torch.random.fork_rng():  # the same student for every objective and teacher at a seed
            torch.manual_seed(config.train.seed)
            self.model = self._student(out_dim)

    def _student(self, out_dim: int) -> MaskedPointModel:
        config, m = self.config, self.config.model
        encoder = PointEncoder(**m.model_dump())
        return MaskedPointModel(
            encoder,
            out_dim,
            config.masking.ratio,
            config.masking.type,
            config.decoder_depth,
            config.decoder_heads,
            decoder_drop_path=m.drop_path,  # the official decoder shares the encoder's rate
            embed_visible_only=config.embed_visible_only,
        )

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        return self.model.named_parameters()

    def losses(self, model: nn.Module, points: torch.Tensor, mask_key: int = 0) -> torch.Tensor:
        return self._step(model, points, mask_key)[0]

    def mask_generator(self, key: int) -> torch.Generator:
        """The masks of training step ``key`` (evaluation batch ``-1 - key``): a function of the seed, the
        step and the rank only, so that every arm of a comparison hides the same patches at the same step,
        whatever else consumes random numbers, and a resumed run draws the same masks."""
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        return torch.Generator().manual_seed(hash((self.config.train.seed, key, rank)) % 2**63)

    def _step(
        self, model: nn.Module, points: torch.Tensor, mask_key: int, floors: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """The masked-modeling loss of a batch; with ``floors`` (ACT only) also the loss of predicting
        the batch-mean target and the loss between two independent target draws for the same input."""
        patches, centers = self.model.encoder.grouper(points)
        mask = self.model.make_mask(centers, self.mask_generator(mask_key))
        pred, _ = model(patches, centers, mask)
        masked = self.model.split(mask)[1]
        if self.teacher is None:
            return (masked_patch_loss(pred, take_tokens(patches, masked)),)
        target = take_tokens(self.teacher.targets(patches, centers, self.config.target), masked)
        loss = masked_feature_loss(pred, target, self.config.loss)
        if not floors:
            return (loss,)
        redraw = take_tokens(self.teacher.targets(patches, centers, self.config.target), masked)
        return (loss, *distillation_floors(target, redraw, self.config.loss))

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], global_step: int):
        return self.losses(model, batch["points"], global_step), {}

    def _svm_train_set(self) -> Dataset:
        """The SVM probe's training clouds: un-augmented, ``npoints`` each like the test clouds."""
        data = self.config.data
        if data.train_npoints in (None, data.npoints):
            return self.train_set.dataset
        if self._svm_train is None:
            self._svm_train = build_split(data, data.train_split)
        return self._svm_train

    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        """Test loss; for ACT also its two floors (``loss_batch_mean_target``: predicting every masked
        token as the batch's mean target; ``loss_target_redraw``: a second target draw for the same
        input), against which the loss is read; and the linear-SVM probe."""
        torch.manual_seed(self.config.train.seed)
        names = ("loss",) if self.teacher is None else ("loss", "loss_batch_mean_target", "loss_target_redraw")
        totals, count = dict.fromkeys(names, 0.0), 0
        for i, batch in enumerate(eval_loader(self.test_set, self.config.data)):
            points = batch["points"].to(device)
            for name, value in zip(names, self._step(model, points, -1 - i, floors=True), strict=True):
                totals[name] += value.item() * points.shape[0]
            count += points.shape[0]
        metrics = {name: total / count for name, total in totals.items()}
        if self.config.svm_eval:
            encoder = self.model.encoder
            train = extract_features(encoder, self._svm_train_set(), device)
            test = extract_features(encoder, self.test_set, device)
            metrics["svm_acc"] = linear_svm_accuracy(train, test, seed=self.config.train.seed)
        return metrics

    def after_evaluation(self, model: nn.Module, device: torch.device, epoch: int) -> None:
        """``encoder.pth``: the student's encoder as of this epoch (what fine-tuning starts from)."""
        if self.run_dir is not None:
            save_encoder(
                self.model.encoder,
                self.config.model,
                self.run_dir / "encoder.pth",
                source=f"act3d pretrain ({self.config.objective}), epoch {epoch + 1}",
            )
