"""Run a training task end to end: distributed set-up, run folder, seeds, fit, results files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from act3d.engine.distributed import cleanup_distributed, init_distributed
from act3d.engine.run import make_run_dir, record_run, seed_everything, write_text_atomic
from act3d.engine.trainer import FitResult, Task, Trainer


def train_task(
    config: BaseModel,
    make_task: Callable[[Any, Path], Task],
    preset: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
) -> tuple[Path, FitResult]:
    """Set up the process, build the task, fit it and write ``results.json`` / ``results.md``.

    ``config`` must have ``train``, ``optimizer``, ``scheduler``, ``data`` and ``run`` sections.
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
            write_results(run_dir, task.primary_metric, result, getattr(task, "info", {}))
        return run_dir, result
    finally:
        cleanup_distributed()


def write_results(run_dir: Path, primary: str, result: FitResult, info: dict[str, Any]) -> None:
    """``results.json`` and ``results.md``: final-epoch and best-epoch metrics, each labelled."""
    payload = {
        "primary_metric": primary,
        **info,
        "final_epoch": {"epoch": len(result.history), **result.final_metrics},
        "best_epoch": {"epoch": result.best_epoch, **result.best_metrics},
        "note": "best_epoch is the official protocol's 'best test metric over epochs' (no validation split); "
        "final_epoch is the honest figure.",
    }
    write_text_atomic(run_dir / "results.json", json.dumps(payload, indent=2))
    keys = [k for k in result.final_metrics if k != "epoch"]
    lines = ["| | epoch | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for label, row in (
        ("final epoch", payload["final_epoch"]),
        ("best epoch (official)", payload["best_epoch"]),
    ):
        lines.append(
            f"| {label} | {row['epoch']} | " + " | ".join(f"{row.get(k, float('nan')):.4f}" for k in keys) + " |"
        )
    write_text_atomic(run_dir / "results.md", "\n".join(lines) + "\n")
