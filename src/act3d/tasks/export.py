"""``act3d export RUN_DIR OUT_DIR``: a pretrained encoder as a shareable folder (safetensors, config, model card).

The folder is what the Hugging Face Hub holds for a model: ``model.safetensors`` (no pickle),
``config.json`` (the encoder sizes plus where the weights come from: teacher, data, objective, the
run's commit and seed, its results) and ``README.md`` (a model card). ``act3d.load_encoder`` reads
the folder, or a Hub repository it was uploaded to. Format: docs/checkpoints.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from act3d.engine.run import write_text_atomic
from act3d.errors import CheckpointError, ConfigError
from act3d.models.encoder_io import CONFIG_FILE, WEIGHTS_FILE, load_encoder, save_encoder_folder
from act3d.models.point_transformer import EncoderConfig
from act3d.util.files import load_checkpoint

ENCODER_PLACES = ("encoder.pth", "stage2/encoder.pth")
"""Where a run folder keeps its encoder: a pretrain run, or a pipeline (its stage II)."""


def find_encoder(run_dir: Path) -> Path:
    """The encoder file of ``run_dir`` (a pretrain or pipeline run), or ConfigError saying what was looked for."""
    for place in ENCODER_PLACES:
        if (run_dir / place).is_file():
            return run_dir / place
    raise ConfigError(f"{run_dir}: holds no {' or '.join(ENCODER_PLACES)}: export takes a pretrain or pipeline run")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def provenance(run_dir: Path, encoder_path: Path) -> dict[str, Any]:
    """Where the weights come from, from the files the run recorded: the task's config, the stage-I
    teacher it distilled (its run's config when the checkpoint sits in one), the environment and results."""
    stage_dir = encoder_path.parent
    config = _read_yaml(stage_dir / "config.yaml")
    environment = _read_json(stage_dir / "environment.json") or _read_json(run_dir / "environment.json")
    teacher: dict[str, Any] = {}
    checkpoint = config.get("teacher_checkpoint")
    if config.get("objective", "act") != "point_mae" and checkpoint:
        stage1 = _read_yaml(Path(checkpoint).parent / "config.yaml")
        teacher = {"checkpoint": Path(checkpoint).name, **stage1.get("teacher", {})}
        teacher["stage1_data"] = stage1.get("data", {}).get("name")
    results = _read_json(run_dir / "results.json")
    data = config.get("data", {})
    return {
        "objective": config.get("objective", "act"),
        "teacher": teacher or None,
        "data": {**{k: data.get(k) for k in ("name", "npoints")}, "folder": Path(str(data.get("root") or "")).name},
        "train": {k: config.get("train", {}).get(k) for k in ("epochs", "seed")},
        "source_run": run_dir.resolve().name,  # names, not local paths: the folder is meant to be shared
        "git_commit": environment.get("git_commit"),
        "seed": environment.get("seed"),
        "packages": environment.get("packages"),
        "results": results.get("rows"),
    }


def export_run(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write ``out_dir`` from the encoder of ``run_dir``; the exported folder is read back and its weights
    compared with the run's before this returns. ``out_dir`` must be new or empty unless ``overwrite``."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir}: exists and is not empty; pass --overwrite to replace its files")
    encoder_path = find_encoder(run_dir)
    encoder = load_encoder(encoder_path)
    config = EncoderConfig.model_validate(load_checkpoint(encoder_path)["config"])
    meta = provenance(run_dir, encoder_path)
    save_encoder_folder(encoder, config, out_dir, {"source": str(encoder_path.relative_to(run_dir)), **meta})
    write_text_atomic(out_dir / "README.md", model_card(out_dir.name, meta, config))
    reloaded = load_encoder(out_dir).state_dict()
    if any(not torch.equal(value, reloaded[key]) for key, value in encoder.state_dict().items()):
        raise CheckpointError(f"{out_dir}: the exported weights do not read back equal to {encoder_path}")
    return out_dir


def model_card(name: str, meta: dict[str, Any], config: EncoderConfig) -> str:
    """A Hugging Face model card: front matter, what the encoder is, how it was trained, its metrics, how to load it."""
    teacher = meta.get("teacher") or {}
    trained = "Point-MAE (masked patch reconstruction)" if meta["objective"] == "point_mae" else "ACT stage II"
    lines = [
        "---",
        "library_name: act3d",
        "tags: [point-cloud, 3d, act3d, self-supervised, "
        + ("point-mae" if meta["objective"] == "point_mae" else "act")
        + "]",
        "---",
        "",
        f"# {name}",
        "",
        f"A point-cloud transformer encoder pretrained with **{trained}** by act3d "
        "(ACT: Dong et al., *Autoencoders as Cross-Modal Teachers*, ICLR 2023).",
        "",
        "| | |",
        "|---|---|",
        f"| encoder | dim {config.dim}, depth {config.depth}, heads {config.num_heads}, "
        f"{config.num_groups} patches × {config.group_size} points |",
        f"| cross-modal teacher | {teacher.get('name', '–')} ({teacher.get('num_blocks') or 'all'} blocks, "
        f"{teacher.get('prompts', '–')} prompts) |"
        if teacher
        else "| cross-modal teacher | none |",
        f"| pretraining data | {meta['data'].get('name')} ({meta['data'].get('npoints')} points) |",
        f"| epochs, seed | {meta['train'].get('epochs')}, {meta.get('seed')} |",
        f"| act3d commit | {meta.get('git_commit') or 'unknown'} |",
        "",
    ]
    rows = meta.get("results") or {}
    if rows:
        metrics = list(dict.fromkeys(m for row in rows.values() for m in row))
        lines += ["## Results of the pretraining run", "", "| | " + " | ".join(metrics) + " |"]
        lines += ["|---|" + "---|" * len(metrics)]
        for label, row in rows.items():
            cells = ["–" if row.get(m) is None else f"{row[m]:.4g}" for m in metrics]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "Final epoch is the honest figure; best epoch is the official protocol's.", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import act3d",
        f'encoder = act3d.load_encoder("path/to/{name}")   # or a Hub id "owner/{name}"',
        "features = encoder.embed(points)   # (B, N, 3) → (B, 2·dim) = [CLS ; max-pool]",
        "```",
        "",
        f"or `act3d classify --config ... init=path/to/{name}`. Files: `{WEIGHTS_FILE}` (safetensors, no pickle), "
        f"`{CONFIG_FILE}` (sizes and provenance).",
        "",
    ]
    return "\n".join(lines)
