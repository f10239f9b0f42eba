"""Configuration: YAML presets + dotted command-line overrides, validated by pydantic schemas.

A preset may inherit from another with ``base: other.yaml`` (path relative to the preset); mappings
merge key by key (an empty mapping, ``options: {}``, clears the inherited one). A section may do the same
(``stage1: {base: act_stage1_cpu.yaml, ...}``). Unknown keys and wrong types are errors that name the dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from act3d.errors import ConfigError
from act3d.util.config import Strict

Schema = TypeVar("Schema", bound=BaseModel)


class AugmentConfig(Strict):
    """Training-time augmentations (docs/method.md); applied per sample, seeded per (seed, epoch, index).

    ``scale_translate``: ``points * s + t``, ``s ~ U[scale]`` per axis (one draw for all axes with
    ``isotropic_scale``, ShapeNetPart), ``t ~ U[-shift, shift]`` per axis.
    """

    scale_translate: bool = False
    rotate_up: bool = False
    jitter: bool = False
    scale: tuple[float, float] = (2 / 3, 3 / 2)
    shift: float = Field(0.2, ge=0)
    isotropic_scale: bool = False


class DataConfig(Strict):
    """Which dataset, which splits, how many points, how batches are formed.

    ``train_npoints`` (ModelNet40 fine-tuning: 1200): training clouds are first cut to that many points
    by the dataset's sampling (FPS), then a random ``npoints`` of them, in random order, are drawn per
    sample and epoch (``train_npoints == npoints`` only shuffles the order, as the official runner).
    """

    name: str = "synthetic"
    root: str | None = None
    npoints: int = Field(1024, gt=0)
    train_npoints: int | None = Field(None, gt=0)
    train_split: str = "train"
    test_split: str = "test"
    options: dict[str, Any] = Field(default_factory=dict)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    num_workers: int = Field(0, ge=0)


class OptimizerConfig(Strict):
    """AdamW; parameters that are 1-D, biases or named ``*token*`` get no weight decay."""

    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(Strict):
    """Cosine schedule with linear warm-up (timm CosineLRScheduler); ``update: epoch`` is the official stepping."""

    update: Literal["step", "epoch"] = "step"
    warmup_epochs: int = Field(10, ge=0)
    warmup_lr: float = Field(1e-6, ge=0)
    min_lr: float = Field(1e-6, ge=0)


class TrainConfig(Strict):
    """The training loop's knobs."""

    epochs: int = Field(300, gt=0)
    max_steps_per_epoch: int | None = Field(None, gt=0)
    grad_accum_steps: int = Field(1, gt=0)
    grad_clip: float | None = Field(10.0, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    seed: int = 0
    eval_every: int = Field(1, gt=0)
    checkpoint_every_steps: int | None = Field(None, gt=0)
    bn_recalibration_batches: int = Field(0, ge=0)


class RunConfig(Strict):
    """Where outputs go: ``<output_dir>/<name>``; name defaults to ``<preset>-<timestamp>``."""

    output_dir: str = "runs"
    name: str | None = None


class TrainingRun(Strict):
    """The sections every training command shares; task schemas add theirs and override defaults."""

    data: DataConfig = Field(default_factory=DataConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)


def load_config(schema: type[Schema], path: str | Path | None, overrides: list[str] = ()) -> Schema:
    """Read a YAML preset (with ``base:`` inheritance), apply ``a.b=value`` overrides, validate.

    Raises:
        ConfigError: missing file, bad YAML, malformed override, unknown key or wrong type (named).
    """
    raw: dict[str, Any] = _read_preset(Path(path)) if path is not None else {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optimizer.lr=1e-4")
        _set_dotted(raw, key.strip(), _parse_value(text))
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from None


def config_to_yaml(config: BaseModel) -> str:
    """The fully resolved config as YAML (what a run folder records)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _read_preset(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'base' inheritance loops back to itself")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return _resolve_bases(data, path, seen)


def _resolve_bases(data: dict[str, Any], path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """Replace ``base:`` in ``data`` and in any nested mapping by the merged preset it names."""
    data = {k: _resolve_bases(v, path, seen) if isinstance(v, dict) else v for k, v in data.items()}
    base = data.pop("base", None)
    if base is None:
        return data
    return merge_trees(_read_preset(path.parent / base, (*seen, path)), data)


def merge_trees(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update``'s keys replacing its own, nested mappings merged key by key (an empty
    mapping in ``update`` replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if value and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_trees(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parents[: i + 1])} is not a section")
        node = child
    node[leaf] = value


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _describe(err: ValidationError, path: str | Path | None) -> str:
    where = f"{path}: " if path is not None else ""
    lines = []
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "<root>"
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
        got = repr(problem.get("input"))
        lines.append(f"{key}: {message} (got {got if len(got) <= 80 else got[:77] + '...'})")
    return where + "invalid config\n  " + "\n  ".join(lines)
