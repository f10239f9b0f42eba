"""The one training loop that serves stage I, stage II and every downstream task.

A *task* owns the model, the data and the objective; the :class:`Trainer` owns everything generic:
devices, DDP, mixed precision, optimiser and schedule, gradient accumulation and clipping, progress,
logging, checkpoints and exact resume.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from act3d.engine.batchnorm import recalibrate_batchnorm
from act3d.engine.checkpoint import atomic_path, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from act3d.engine.config import OptimizerConfig, SchedulerConfig, TrainConfig
from act3d.engine.distributed import DistInfo, gather_objects
from act3d.engine.loader import ResumableSampler, SeededAugment, make_loader
from act3d.engine.logger import MetricLogger, plot_curves, truncate_metrics
from act3d.engine.optim import build_optimizer, build_scheduler
from act3d.errors import CheckpointError, TrainingError

Batch = dict[str, torch.Tensor]


class Task(Protocol):
    """What a stage or downstream task provides to the :class:`Trainer`."""

    model: nn.Module
    train_set: SeededAugment
    primary_metric: str
    higher_is_better: bool

    def named_trainable_parameters(self) -> Iterable[tuple[str, nn.Parameter]]: ...

    def training_step(self, model: nn.Module, batch: Batch, global_step: int) -> tuple[torch.Tensor, dict]:
        """Loss (scalar tensor) and extra scalars to log (floats or detached 0-d tensors, which the
        engine reads in one host sync per step), for one (micro-)batch on the device."""

    info: dict[str, Any]
    """Strings and numbers that describe the run (init, teacher, verdicts): they go to ``results.json``."""

    def evaluate(self, model: nn.Module, device: torch.device, epoch: int) -> dict[str, float]:
        """Test metrics; must include ``primary_metric``. Runs on every process; writes no file."""

    def after_evaluation(self, model: nn.Module, device: torch.device, epoch: int) -> None:
        """Main process only, after each evaluation (eval mode, no grad, RNG forked): the epoch's files
        (an encoder, pictures)."""

    def after_fit(self, result: FitResult, device: torch.device) -> None:
        """Main process only, once training is over (e.g. test-time voting); may add to ``info``."""


class TaskHooks:
    """The optional part of :class:`Task`, as no-ops: a task subclasses it and overrides what it needs."""

    info: dict[str, Any]

    def after_evaluation(self, model: nn.Module, device: torch.device, epoch: int) -> None:
        """Nothing to write."""

    def after_fit(self, result: FitResult, device: torch.device) -> None:
        """Nothing to do after training."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns: final and best metrics and where the checkpoints are."""

    final_metrics: dict[str, float]
    best_metrics: dict[str, float]
    best_epoch: int
    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _State:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Fit a :class:`Task` with the given settings, writing checkpoints and logs into ``run_dir``."""

    def __init__(
        self,
        train: TrainConfig,
        optimizer: OptimizerConfig,
        scheduler: SchedulerConfig,
        batch_size: int,
        num_workers: int,
        run_dir: Path,
        dist: DistInfo,
        config_dump: dict[str, Any] | None = None,
        show_progress: bool = True,
    ) -> None:
        if batch_size % (dist.world_size * train.grad_accum_steps):
            raise TrainingError(
                f"batch size {batch_size} is not divisible by world size {dist.world_size} × "
                f"grad_accum_steps {train.grad_accum_steps}"
            )
        self.cfg = train
        self.opt_cfg = optimizer
        self.sched_cfg = scheduler
        self.batch_size = batch_size
        self.per_rank = batch_size // dist.world_size
        self.num_workers = num_workers
        self.run_dir = run_dir
        self.dist = dist
        self.config_dump = config_dump or {}
        self.show_progress = show_progress and dist.is_main
        self.device = dist.device
        self.amp_dtype = _amp_dtype(train.precision, self.device)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "ckpt-last.pth"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "ckpt-best.pth"

    def fit(self, task: Task, resume: bool = False) -> FitResult:
        """Train ``task.model`` for ``train.epochs`` epochs (continuing ``ckpt-last.pth`` if ``resume``)."""
        model = task.model.to(self.device)
        optimizer = build_optimizer(task.named_trainable_parameters(), self.opt_cfg)
        scheduler = build_scheduler(optimizer, self.sched_cfg, self.cfg.epochs, self._steps_per_epoch(task))
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        state = _State()
        if resume:
            state = self._restore(model, optimizer, scheduler, scaler)
            if self.dist.is_main:
                truncate_metrics(self.run_dir / "metrics.jsonl", state.global_step)
        wrapped = self._wrap(model)
        logger = MetricLogger(self.run_dir) if self.dist.is_main else None
        sampler = ResumableSampler(
            task.train_set, self.dist.world_size, self.dist.rank, shuffle=True, seed=self.cfg.seed
        )
        try:
            while state.epoch < self.cfg.epochs:
                scheduler.step(state.epoch)
                self._train_epoch(task, wrapped, model, optimizer, scheduler, scaler, sampler, state, logger)
                self._end_epoch(task, model, optimizer, scheduler, scaler, state, logger)
        finally:
            if logger is not None:
                logger.close()
        if self.dist.is_main:
            plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
        final = state.history[-1] if state.history else {}
        return FitResult(final, state.best_metrics, state.best_epoch, self.last_path, self.best_path, state.history)

    def _steps_per_epoch(self, task: Task) -> int:
        steps = math.ceil(len(task.train_set) / self.dist.world_size) // self.per_rank
        return min(steps, self.cfg.max_steps_per_epoch or steps)

    def _wrap(self, model: nn.Module) -> nn.Module:
        wrapped = model
        if self.cfg.compile:
            wrapped = torch.compile(wrapped)
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = DistributedDataParallel(wrapped, device_ids=ids, find_unused_parameters=False)
        return wrapped

    def _train_epoch(self, task, wrapped, model, optimizer, scheduler, scaler, sampler, state, logger) -> None:
        per_rank = self.per_rank
        task.train_set.set_epoch(state.epoch)
        sampler.set_epoch(state.epoch)
        sampler.start = state.step_in_epoch * per_rank
        loader = make_loader(task.train_set, per_rank, sampler, self.num_workers, self.cfg.seed + state.epoch)
        steps = self._steps_per_epoch(task)
        if steps == 0:
            raise TrainingError(f"the training set ({len(task.train_set)} samples) yields no full batch of {per_rank}")
        model.train()
        bar = tqdm(
            total=steps,
            initial=state.step_in_epoch,
            disable=not self.show_progress,
            desc=f"epoch {state.epoch + 1}/{self.cfg.epochs}",
            dynamic_ncols=True,
        )
        tic = time.perf_counter()
        for batch in itertools.islice(loader, steps - state.step_in_epoch):
            scheduler.step_update(state.global_step)
            logs = self._step(task, wrapped, model, optimizer, scaler, batch, state)
            state.step_in_epoch += 1
            state.global_step += 1
            rate = per_rank * self.dist.world_size / max(time.perf_counter() - tic, 1e-9)
            tic = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{lr:.2e}", samples_s=f"{rate:.1f}", refresh=False)
            bar.update()
            if logger is not None:
                logger.log(
                    state.global_step,
                    state.epoch,
                    {f"train/{k}": v for k, v in logs.items()} | {"train/lr": lr, "train/samples_per_s": rate},
                )
            every = self.cfg.checkpoint_every_steps
            if every and state.global_step % every == 0 and state.step_in_epoch < steps:
                self._save(self.last_path, model, optimizer, scheduler, scaler, state, {})
        bar.close()

    def _step(self, task, wrapped, model, optimizer, scaler, batch: Batch, state: _State) -> dict[str, float]:
        accum = self.cfg.grad_accum_steps
        optimizer.zero_grad(set_to_none=True)
        losses, extras = [], []
        for i in range(accum):
            micro = {k: v[i::accum].to(self.device, non_blocking=True) for k, v in batch.items()}
            sync = contextlib.nullcontext() if i == accum - 1 or not self.dist.distributed else wrapped.no_sync()
            with (
                sync,
                torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None),
            ):
                loss, extra = task.training_step(wrapped, micro, state.global_step)
            scaler.scale(loss / accum).backward()
            losses.append(loss.detach().float())
            extras.append(extra)
        logs: dict[str, Any] = {}
        for extra in extras:
            for key, value in extra.items():
                logs[key] = logs.get(key, 0.0) + value / accum
        if self.cfg.grad_clip is not None:
            scaler.unscale_(optimizer)
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
        on_device = [key for key, value in logs.items() if isinstance(value, torch.Tensor)]
        values = torch.stack([*losses, *(logs[key].float().reshape(()) for key in on_device)]).tolist()  # one sync
        micro_losses = values[:accum]
        logs.update(zip(on_device, values[accum:], strict=True))
        bad = next((v for v in micro_losses if not math.isfinite(v)), None)
        if bad is not None:  # checked before the optimizer step: the weights stay the last good ones
            raise TrainingError(
                f"non-finite loss ({bad}) at epoch {state.epoch + 1}, step {state.step_in_epoch + 1} "
                f"(global step {state.global_step + 1}); stopping. The last good checkpoint is kept: "
                f"{self.last_path if self.last_path.exists() else 'none written yet'}"
            )
        scaler.step(optimizer)
        scaler.update()
        return {"loss": sum(v / accum for v in micro_losses), **{key: float(value) for key, value in logs.items()}}

    def _end_epoch(self, task, model, optimizer, scheduler, scaler, state: _State, logger) -> None:
        epoch = state.epoch
        metrics: dict[str, float] = {}
        if (epoch + 1) % self.cfg.eval_every == 0 or epoch + 1 == self.cfg.epochs:
            with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
                if self.cfg.bn_recalibration_batches:
                    self._recalibrate(task, model, epoch, state.global_step)
                model.eval()
                with torch.no_grad():
                    metrics = {k: float(v) for k, v in task.evaluate(model, self.device, epoch).items()}
                    if self.dist.is_main:
                        task.after_evaluation(model, self.device, epoch)
            model.train()
        state.epoch += 1
        state.step_in_epoch = 0
        improved = False
        if task.primary_metric in metrics:
            value = metrics[task.primary_metric]
            best = state.best_metrics.get(task.primary_metric)
            if best is None or (value > best if task.higher_is_better else value < best):
                state.best_epoch, state.best_metrics = epoch + 1, dict(metrics)
                improved = True
            state.history.append({"epoch": epoch + 1, **metrics})
        if logger is not None and metrics:
            logger.log(state.global_step, epoch, {f"test/{k}": v for k, v in metrics.items()})
            tqdm.write(f"epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        self._save(self.last_path, model, optimizer, scheduler, scaler, state, metrics)
        if improved and self.dist.is_main:
            try:
                with atomic_path(self.best_path) as tmp:
                    shutil.copyfile(self.last_path, tmp)
            except OSError as err:  # disk full: keep the previous best, say so
                raise CheckpointError(
                    f"{self.best_path}: could not write checkpoint ({err}); the previous one is intact"
                ) from err

    def _recalibrate(self, task: Task, model: nn.Module, epoch: int, step: int) -> None:
        """Precise BN over ``bn_recalibration_batches`` training batches (see engine.batchnorm)."""
        sampler = ResumableSampler(task.train_set, self.dist.world_size, self.dist.rank, True, self.cfg.seed + 1)
        sampler.set_epoch(epoch)
        loader = make_loader(task.train_set, self.per_rank, sampler, self.num_workers, self.cfg.seed)
        batches = itertools.islice(loader, self.cfg.bn_recalibration_batches)
        recalibrate_batchnorm(
            model,
            batches,
            lambda b: task.training_step(model, {k: v.to(self.device) for k, v in b.items()}, step),
        )

    def _save(self, path: Path, model, optimizer, scheduler, scaler, state: _State, metrics) -> None:
        rngs = gather_objects(rng_state())
        if not self.dist.is_main:
            return
        save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": state.epoch,
                "step_in_epoch": state.step_in_epoch,
                "global_step": state.global_step,
                "best_epoch": state.best_epoch,
                "best_metrics": state.best_metrics,
                "history": state.history,
                "metrics": metrics,
                "rng": rngs,
                "config": self.config_dump,
            },
            path,
        )

    def _restore(self, model, optimizer, scheduler, scaler) -> _State:
        if not self.last_path.exists():
            raise CheckpointError(f"{self.last_path}: nothing to resume from (no checkpoint in the run folder)")
        ckpt = load_checkpoint(self.last_path, map_location=self.device)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{self.last_path}: does not match this run's model/optimizer: {err}") from None
        set_rng_state(ckpt["rng"][self.dist.rank])
        return _State(
            epoch=ckpt["epoch"],
            step_in_epoch=ckpt["step_in_epoch"],
            global_step=ckpt["global_step"],
            best_epoch=ckpt["best_epoch"],
            best_metrics=ckpt["best_metrics"],
            history=ckpt["history"],
        )


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 on a CUDA device that supports it, fp16 on other CUDA devices, fp32 elsewhere."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16
