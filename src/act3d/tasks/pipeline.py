"""``act3d pipeline`` / ``act3d demo``: stage I → stage II → linear SVM + fine-tuning, one run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from act3d.engine.config import RunConfig, Strict, load_config
from act3d.engine.run import make_run_dir, record_run
from act3d.models.encoder_io import load_encoder
from act3d.objectives.code_information import verdict
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.results import write_results
from act3d.tasks.runner import train_task
from act3d.tasks.svm import extract_features, linear_svm_accuracy
from act3d.viz import save_cloud_grid


class PipelineConfig(Strict):
    """The whole ACT chain. A top-level ``data`` section overrides those keys in every stage's ``data``."""

    task: Literal["pipeline"] = "pipeline"
    stage1: PretrainTeacherConfig = Field(default_factory=PretrainTeacherConfig)
    stage2: PretrainConfig
    finetune: ClassifyConfig = Field(default_factory=ClassifyConfig)
    svm: bool = True
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="before")
    @classmethod
    def _share_data(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
            shared = raw.pop("data")
            for stage in ("stage1", "stage2", "finetune"):
                section = raw.setdefault(stage, {})
                section["data"] = {**section.get("data", {}), **shared}
        if isinstance(raw, dict):
            stage2 = raw.setdefault("stage2", {})
            if isinstance(stage2, dict) and stage2.get("teacher_checkpoint") is None:  # not on re-validation
                stage2["teacher_checkpoint"] = "<stage1 ckpt-best.pth>"
        return raw


def run_pipeline(
    config: PipelineConfig,
    preset: str | Path | None = None,
    device: str = "auto",
    show_progress: bool = True,
    resume: bool = False,
) -> Path:
    """Run every stage into ``<run>/stage1``, ``stage2``, ``finetune``; write the summary files.

    ``resume``: a stage whose folder holds ``ckpt-last.pth`` continues from it (a finished stage is
    not trained again), so a killed pipeline goes on where it stopped.
    """
    run_dir = make_run_dir(config.run.output_dir, config.run.name, preset)
    record_run(run_dir, config, config.stage1.train.seed)
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def stage(name: str, cfg, make_task):
        cfg.run = RunConfig(output_dir=str(run_dir), name=name)
        tic = time.perf_counter()
        again = resume and (run_dir / name / "ckpt-last.pth").is_file()
        stage_dir, result = train_task(cfg, make_task, None, again, device, show_progress)
        timings[name] = time.perf_counter() - tic
        return stage_dir, result

    s1_dir, s1 = stage("stage1", config.stage1, PretrainTeacherTask)
    rows.extend(_row(label, s1, metric) for label, metric in STAGE1_ROWS)
    notes = [f"stage I: {verdict(s1.final_metrics)}"]  # from the metrics: a resumed stage is not evaluated again
    config.stage2.teacher_checkpoint = str(s1_dir / "ckpt-best.pth")
    stage2_tasks: list[PretrainTask] = []

    def make_stage2(cfg: PretrainConfig, task_dir: Path) -> PretrainTask:
        stage2_tasks.append(PretrainTask(cfg, task_dir))
        return stage2_tasks[-1]

    s2_dir, s2 = stage("stage2", config.stage2, make_stage2)
    rows.extend(_row(label, s2, metric) for label, metric in STAGE2_ROWS if metric in s2.final_metrics)
    encoder_path = s2_dir / "encoder.pth"
    _save_masked_pictures(stage2_tasks[-1], s2_dir, run_dir)
    if config.svm:
        rows.extend(_svm_rows(config, encoder_path, device))
    config.finetune.init = str(encoder_path)
    _, ft = stage("finetune", config.finetune, ClassificationTask)
    rows.append(_row("fine-tune: test accuracy % (↑)", ft, "acc"))
    return _write_summary(run_dir, rows, timings, notes)


STAGE1_ROWS = (
    ("stage I: test CD-L1, sampled codes (↓)", "cd_l1"),
    ("stage I: control, codes shuffled across patches (CD-L1)", "cd_l1_shuffled_codes"),
    ("stage I: control, argmax codes (CD-L1)", "cd_l1_argmax_codes"),
    ("stage I: information per code, nats (↑)", "code_information"),
    ("stage I: P(sampled code = argmax)", "code_sample_is_argmax"),
)
STAGE2_ROWS = (
    ("stage II: masked-token loss (↓)", "loss"),
    ("stage II: floor, predicting the batch-mean target", "loss_batch_mean_target"),
    ("stage II: floor, a second target draw", "loss_target_redraw"),
)


def _row(label: str, result, metric: str) -> dict[str, Any]:
    return {
        "metric": label,
        "final_epoch": result.final_metrics.get(metric),
        "best_epoch": result.best_metrics.get(metric),
        "best_epoch_index": result.best_epoch,
    }


def _svm_rows(config: PipelineConfig, encoder_path: Path, device: str) -> list[dict[str, Any]]:
    """Linear-SVM accuracy of the pretrained encoder and of a random-init one (the honest baseline)."""
    from act3d.engine.distributed import resolve_device
    from act3d.tasks.common import build_split, initial_encoder

    dev, data = resolve_device(device), config.finetune.data
    train, test = build_split(data, data.train_split), build_split(data, data.test_split)  # both at npoints
    torch.manual_seed(config.finetune.train.seed)
    rows = []
    for label, encoder in (
        ("linear SVM accuracy %, ACT-pretrained (↑)", load_encoder(encoder_path).to(dev)),
        ("linear SVM accuracy %, random init (↑)", initial_encoder(None, config.stage2.model)[0].to(dev)),
    ):
        acc = linear_svm_accuracy(extract_features(encoder, train, dev), extract_features(encoder, test, dev))
        rows.append({"metric": label, "final_epoch": acc, "best_epoch": None, "best_epoch_index": None})
    return rows


def _save_masked_pictures(task: PretrainTask, s2_dir: Path, run_dir: Path) -> None:
    """Masked input, and the stage-I decoder's points from the student's predicted masked features,
    with the stage-II task that was trained (its datasets and frozen teacher), on the CPU."""
    from act3d.engine.checkpoint import load_checkpoint

    task.model.cpu().load_state_dict(load_checkpoint(s2_dir / "ckpt-best.pth")["model"])
    task.model.eval()
    teacher = task.teacher.cpu().eval()
    picks = torch.linspace(0, len(task.test_set) - 1, 4).long().unique()
    points = torch.stack([task.test_set[int(i)]["points"] for i in picks])
    torch.manual_seed(0)
    with torch.no_grad():
        patches, centers = task.model.encoder.grouper(points)
        mask = task.model.make_mask(centers)
        pred, _ = task.model(patches, centers, mask)
        fine = teacher.decode(pred)
    b = points.shape[0]
    visible = (patches + centers[:, :, None])[~mask].reshape(b, -1, 3)
    predicted = (fine + centers[mask].reshape(b, -1, 1, 3)).reshape(b, -1, 3)
    rows = [[points[i].numpy(), visible[i].numpy(), torch.cat([visible[i], predicted[i]]).numpy()] for i in range(b)]
    colors = [
        [None, None, torch.cat([torch.zeros(visible.shape[1]), torch.ones(predicted.shape[1])]).numpy()]
        for _ in range(b)
    ]
    save_cloud_grid(
        rows,
        [
            "input",
            f"visible ({int((~mask[0]).sum())} of {mask.shape[1]} patches)",
            "visible + predicted (via stage-I decoder)",
        ],
        run_dir / "masked_predictions.png",
        colors,
    )


def _write_summary(run_dir: Path, rows: list[dict[str, Any]], timings: dict[str, float], notes: list[str]) -> Path:
    payload = {
        "rows": {r["metric"]: {"final_epoch": r["final_epoch"], "best_epoch": r["best_epoch"]} for r in rows},
        "results": rows,
        "seconds_per_stage": timings,
        "notes": notes,
        "note": "final_epoch is the honest figure; best_epoch is the official 'best test metric over "
        "epochs' (no validation split).",
    }
    fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    lines = ["| metric | final epoch | best epoch (official) |", "|---|---|---|"]
    lines += [f"| {r['metric']} | {fmt(r['final_epoch'])} | {fmt(r['best_epoch'])} |" for r in rows]
    lines += ["", *(f"- {note}" for note in notes)]
    lines += ["", "| stage | seconds |", "|---|---|"] + [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    write_results(run_dir, "pipeline", payload, "\n".join(lines))
    return run_dir


def with_seed(config: PipelineConfig, seed: int) -> None:
    """One seed for the whole chain: every stage's ``train.seed`` (how ``act3d pipeline --seeds`` sets it)."""
    for stage in (config.stage1, config.stage2, config.finetune):
        stage.train.seed = seed


def load_pipeline_config(preset: str | Path | None, overrides: list[str]) -> PipelineConfig:
    return load_config(PipelineConfig, preset, overrides)
