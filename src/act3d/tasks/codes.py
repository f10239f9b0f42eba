"""``act3d codes``: do the codes of a stage-I checkpoint carry information about their patches?

The diagnostics every stage-I evaluation computes (``act3d.objectives.code_information``), for any
stage-I checkpoint, ours or the official ACT release, on any split, without training: the information
per code, P(sample = argmax), the fine CD-L1 with the sampled, shuffled and argmax codes and the
verdict, with ``reconstructions.png`` and ``code_swap.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from act3d.engine.config import DataConfig, RunConfig, Strict, merge_trees
from act3d.engine.distributed import resolve_device
from act3d.engine.run import make_run_dir, record_run, seed_everything
from act3d.errors import ConfigError
from act3d.models.cross_modal_teacher import Stage1, load_stage1
from act3d.objectives.code_information import verdict
from act3d.tasks.common import build_split, check_patches_fit
from act3d.tasks.pretrain_teacher import code_diagnostics, save_stage1_pictures
from act3d.tasks.results import write_results


class CodesConfig(Strict):
    """``act3d codes``: the code diagnostics of a stage-I checkpoint.

    ``checkpoint``: an ``act3d pretrain-teacher`` checkpoint (``ckpt-best.pth``) or the official ACT stage
    I (``ckpt_act_dvae.pth``). ``data``: the split to read (``data.test_split``); the fields set here
    replace those the checkpoint's run recorded (an official checkpoint records none). ``num_groups``:
    patches per cloud of an official checkpoint (the official stage I: 64); ours record theirs.
    ``mode``: ``eval``, as stage I evaluates, or ``train``, as stage II asks the frozen teacher for its
    targets (batch-statistics BatchNorm, prompt dropout on).
    """

    task: Literal["codes"] = "codes"
    checkpoint: str | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    num_groups: int = Field(64, gt=0)
    mode: Literal["eval", "train"] = "eval"
    pictures: int = Field(4, ge=0)
    seed: int = 0
    run: RunConfig = Field(default_factory=RunConfig)


def run_codes(config: CodesConfig, preset: str | Path | None = None, device: str = "auto") -> Path:
    """Diagnose the checkpoint's codes over ``data.test_split``; write ``results.json`` / ``results.md``
    and the pictures into the run folder."""
    if not config.checkpoint:
        raise ConfigError("codes needs a stage-I checkpoint: checkpoint=runs/<stage I>/ckpt-best.pth")
    stage1, data = read_stage1(config)
    config = config.model_copy(update={"data": data})
    run_dir = make_run_dir(config.run.output_dir, config.run.name, preset or "codes")
    record_run(run_dir, config, config.seed)
    seed_everything(config.seed)
    dev = resolve_device(device)
    model = stage1.autoencoder.to(dev).train(config.mode == "train")
    dataset = build_split(data, data.test_split)
    tic = time.perf_counter()
    metrics = code_diagnostics(model, dataset, data, dev, config.seed)
    if config.pictures:
        save_stage1_pictures(model, dataset, config.pictures, run_dir, dev)
    said = verdict(metrics)
    payload = {
        "checkpoint": stage1.source,
        "split": f"{data.name} {data.test_split} ({len(dataset)} clouds, {data.npoints} points)",
        "mode": config.mode,
        "verdict": said,
        "seconds": time.perf_counter() - tic,
        "rows": {data.test_split: metrics},
    }
    lines = ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in metrics.items())]
    notes = [f"{k}: {payload[k]}" for k in ("checkpoint", "split", "mode")]
    write_results(
        run_dir, "codes", payload, f"{said}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)
    )
    return run_dir


def read_stage1(config: CodesConfig) -> tuple[Stage1, DataConfig]:
    """The checkpoint's stage I and the data to read: its recorded data with ``config.data``'s fields
    replacing their own, checked to hold the stage I's patches."""
    stage1 = load_stage1(config.checkpoint, config.num_groups)
    data = merged_data(stage1.config.get("data", {}), config.data)
    check_patches_fit(data.npoints, stage1.sizes.num_groups, stage1.sizes.group_size)
    return stage1, data


def merged_data(recorded: dict[str, Any], given: DataConfig) -> DataConfig:
    """The data config a checkpoint's run recorded, with the fields set in ``given`` replacing its own."""
    return DataConfig.model_validate(merge_trees(recorded, given.model_dump(exclude_unset=True)))
