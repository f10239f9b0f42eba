"""Run a training task end to end: distributed set-up, run folder, seeds, fit, results files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from act3d.engine.config import TrainingRun
from act3d.engine.distributed import cleanup_distributed, init_distributed
from act3d.engine.run import make_run_dir, record_run, seed_everything
from act3d.engine.trainer import FitResult, Task, Trainer
from act3d.tasks.results import write_results
from act3d.tasks.stats import epoch_rows, rows_table, run_seeds


def train_task(
    config: TrainingRun,
    make_task: Callable[[Any, Path], Task],
    preset: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
) -> tuple[Path, FitResult]:
    """Set up the process, build the task, fit it and write ``results.json`` / ``results.md``.
    The task's ``after_fit(result, device)`` (:class:`act3d.engine.trainer.Task`) runs on the main process
    after training (voting, extra metrics): it may add metrics to ``result.final_metrics`` /
    ``result.best_metrics`` and notes to ``task.info`` before the results files are written.
    """
    dist = init_distributed(device)
    try:
        run_dir = make_run_dir(config.run.output_dir, config.run.name, preset)
        seed = config.train.seed
        if dist.is_main and not resume:
            record_run(run_dir, config, seed)
        seed_everything(seed + dist.rank)
        task = make_task(config, run_dir)
        trainer = Trainer(
            config.train,
            config.optimizer,
            config.scheduler,
            config.data.batch_size,
            config.data.num_workers,
            run_dir,
            dist,
            config.model_dump(mode="json"),
            show_progress,
        )
        result = trainer.fit(task, resume=resume)
        if dist.is_main:
            task.after_fit(result, trainer.device)
            write_fit_results(run_dir, task.primary_metric, result, task.info)
        return run_dir, result
    finally:
        cleanup_distributed()


def train_seeds(
    config: TrainingRun,
    make_task: Callable[[Any, Path], Task],
    seeds: Sequence[int],
    preset: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
) -> Path:
    """:func:`train_task` once per seed in ``<run>/seed<k>/``, then mean ± std of final and best at the top."""

    def one(cfg: TrainingRun, resume_seed: bool) -> Path:
        return train_task(cfg, make_task, preset, resume_seed, device, show_progress)[0]

    return sweep_seeds(config, seeds, one, getattr(config, "task", "run"), preset, resume)


def sweep_seeds(
    config: Any,
    seeds: Sequence[int],
    run_one: Callable[[Any, bool], Path],
    title: str,
    preset: str | Path | None = None,
    resume: bool = False,
    notes: Sequence[str] = (),
    seed_config: Callable[[Any, int], None] | None = None,
) -> Path:
    """``run_one(config for seed k, resume)`` for every seed, each in ``<run>/seed<k>/``, then the
    mean ± std over seeds in ``<run>/results.{json,md}``; returns ``<run>``.

    ``seed_config(config, seed)`` sets the seed where the config keeps it; by default ``train.seed``
    for training runs, ``seed`` otherwise. ``resume`` is true for a seed whose folder holds
    ``ckpt-last.pth`` (see :func:`run_seeds`).
    """
    run_dir = make_run_dir(config.run.output_dir, config.run.name, preset)
    if not resume:
        record_run(run_dir, config, seeds[0])

    def one(seed: int, sub: Path, resume_seed: bool) -> Path:
        cfg = config.model_copy(deep=True)
        (seed_config or _set_seed)(cfg, seed)
        cfg.run = cfg.run.model_copy(update={"output_dir": str(run_dir), "name": sub.name})
        return run_one(cfg, resume_seed)

    run_seeds(run_dir, list(seeds), one, f"{title}: {run_dir.name}", notes)
    return run_dir


def _set_seed(config: Any, seed: int) -> None:
    if hasattr(config, "train"):
        config.train.seed = seed
    else:
        config.seed = seed


def write_fit_results(run_dir: Path, primary: str, result: FitResult, info: dict[str, Any]) -> None:
    """``results.json`` and ``results.md``: final-epoch and best-epoch metrics, each labelled."""
    final = {k: v for k, v in result.final_metrics.items() if k != "epoch"}
    final_epoch = int(result.final_metrics.get("epoch", len(result.history)))
    rows = epoch_rows(final, result.best_metrics, final_epoch, result.best_epoch)
    payload = {
        "primary_metric": primary,
        **info,
        "final_epoch": {"epoch": final_epoch, **final},
        "best_epoch": {"epoch": result.best_epoch, **result.best_metrics},
        "rows": rows,
        "note": "best_epoch is the official protocol's 'best test metric over epochs' (no validation split); "
        "final_epoch is the honest figure.",
    }
    notes = [f"{k}: {v}" for k, v in info.items() if isinstance(v, str | int | float)]
    text = rows_table(rows) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    write_results(run_dir, "train", payload, text)
