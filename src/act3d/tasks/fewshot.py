"""``act3d fewshot``: N-way K-shot fine-tuning over folds, mean ± std of final and best-epoch accuracy.

Episodes come from the official fold files (``data.name: modelnet_fewshot``, ``ModelNetFewshot/
<way>way<shot>shot/<fold>.pkl``) or are generated reproducibly from any classification dataset by
:func:`make_episode`: ``way`` classes, ``shot`` training items of each from the train split and
``test_per_class`` test items of each from the test split (as the official generator,
``generate_few_shot_data.py``), drawn from a generator seeded by ``(episodes.seed, way, shot, fold)``.

Every fold is one fine-tuning run in ``<run>/<way>way<shot>shot/fold<k>/``; a finished fold (its
``results.json`` exists) is not run again, so ``--resume`` continues an interrupted sweep.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Dataset

from act3d.data import build_dataset
from act3d.engine.config import AugmentConfig, DataConfig, Strict, TrainConfig
from act3d.engine.run import make_run_dir, record_run
from act3d.errors import ConfigError
from act3d.tasks.classify import ClassificationTask, ClassifierRun, ClassifyConfig
from act3d.tasks.common import augmented, build_split
from act3d.tasks.results import write_results
from act3d.tasks.runner import train_task
from act3d.tasks.stats import FINAL_LABEL, STD_NOTE, format_mean_std, summarize

BEST_LABEL = "best epoch per fold, as the official protocol"


class EpisodeConfig(Strict):
    """Which N-way K-shot settings and folds to run (paper: 5/10-way × 10/20-shot, folds 0-9)."""

    settings: list[tuple[int, int]] = Field(default_factory=lambda: [(5, 10), (5, 20), (10, 10), (10, 20)])
    folds: list[int] = Field(default_factory=lambda: list(range(10)))
    test_per_class: int = Field(20, gt=0)
    seed: int = 0
    keep_checkpoints: bool = False


class FewShotConfig(ClassifierRun):
    """``act3d fewshot``: the data to draw episodes from, and the fine-tuning run of each fold."""

    task: Literal["fewshot"] = "fewshot"
    data: DataConfig = Field(
        default_factory=lambda: DataConfig(
            name="modelnet_fewshot",
            npoints=1024,
            train_npoints=1200,
            augment=AugmentConfig(scale_translate=True),
        )
    )
    episodes: EpisodeConfig = Field(default_factory=EpisodeConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=150))

    @property
    def official_folds(self) -> bool:
        return self.data.name == "modelnet_fewshot"


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot episode: ``classes`` (dataset labels; episode label ``i`` is ``classes[i]``),
    and indices into the train and test datasets."""

    way: int
    shot: int
    fold: int
    classes: list[int]
    train: list[int] = field(repr=False)
    test: list[int] = field(repr=False)


def make_episode(
    dataset: Dataset,
    way: int,
    shot: int,
    fold: int,
    seed: int = 0,
    test_per_class: int = 20,
    test_dataset: Dataset | None = None,
) -> Episode:
    """Draw an episode from datasets that expose ``labels`` (int array of every item's label).

    ``way`` classes are drawn among those with enough items; of each, ``shot`` training items from
    ``dataset`` and ``test_per_class`` test items from ``test_dataset`` (or, without it, other items
    of ``dataset``: train and test never share an item). The same arguments give the same episode.
    """
    if way < 2 or shot < 1:
        raise ConfigError(f"an episode needs way >= 2 and shot >= 1, got {way}-way {shot}-shot")
    rng = np.random.default_rng([seed, way, shot, fold])
    train_labels = np.asarray(dataset.labels)
    test_labels = train_labels if test_dataset is None else np.asarray(test_dataset.labels)
    need = shot + test_per_class if test_dataset is None else shot
    eligible = [
        int(c)
        for c in np.unique(train_labels)
        if (train_labels == c).sum() >= need and (test_dataset is None or (test_labels == c).sum() >= test_per_class)
    ]
    if len(eligible) < way:
        raise ConfigError(
            f"{way}-way {shot}-shot with {test_per_class} test items per class: only {len(eligible)} classes "
            f"have enough items (need {need} in the train split"
            + ("" if test_dataset is None else f" and {test_per_class} in the test split")
            + ")"
        )
    classes = [int(c) for c in rng.choice(eligible, size=way, replace=False)]
    train, test = [], []
    for c in classes:
        items = rng.permutation(np.flatnonzero(train_labels == c))
        train += items[:shot].tolist()
        if test_dataset is None:
            test += items[shot : shot + test_per_class].tolist()
        else:
            test += rng.permutation(np.flatnonzero(test_labels == c))[:test_per_class].tolist()
    return Episode(way, shot, fold, classes, train, test)


class EpisodeSubset(Dataset):
    """Items ``indices`` of ``dataset``, relabelled ``0 .. len(classes)-1`` in the order of ``classes``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], classes: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)
        remap = {int(c): i for i, c in enumerate(classes)}
        base = np.asarray(dataset.labels)
        self.labels = np.array([remap[int(base[i])] for i in self.indices], dtype=np.int64)
        self.classes = [dataset.classes[int(c)] for c in classes]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = dict(self.dataset[self.indices[index]])
        item["label"] = torch.tensor(int(self.labels[index]), dtype=torch.long)
        return item


def classify_config(config: FewShotConfig, output_dir: Path, name: str) -> ClassifyConfig:
    """The fine-tuning run of one fold."""
    shared = config.model_dump(include=set(ClassifierRun.model_fields) - {"run"})
    return ClassifyConfig.model_validate({**shared, "run": {"output_dir": str(output_dir), "name": name}})


class _Episodes:
    """Builds the (train, test) datasets of every episode; generated ones share the base datasets."""

    def __init__(self, config: FewShotConfig) -> None:
        self.config = config
        self.base: tuple[Dataset, Dataset] | None = None

    def datasets(self, way: int, shot: int, fold: int) -> tuple[Dataset, Dataset, dict[str, Any]]:
        data, eps = self.config.data, self.config.episodes
        if self.config.official_folds:
            kw = {**data.options, "way": way, "shot": shot, "fold": fold}
            train = build_dataset(data.name, data.root, "train", data.train_npoints or data.npoints, **kw)
            test = build_dataset(data.name, data.root, "test", data.npoints, **kw)
            source = f"official fold file {train.path}"
            return train, test, {"episode": source, "episode_classes": list(train.classes)}
        if self.base is None:
            self.base = (build_split(data, data.train_split, data.train_npoints), build_split(data, data.test_split))
        base_train, base_test = self.base
        episode = make_episode(base_train, way, shot, fold, eps.seed, eps.test_per_class, base_test)
        train = EpisodeSubset(base_train, episode.train, episode.classes)
        test = EpisodeSubset(base_test, episode.test, episode.classes)
        source = f"generated from {data.name} {data.train_split}/{data.test_split}, episode seed {eps.seed}"
        return train, test, {"episode": source, "episode_classes": train.classes}


def run_fewshot(
    config: FewShotConfig,
    preset: str | Path | None = None,
    device: str = "auto",
    show_progress: bool = True,
    resume: bool = False,
) -> Path:
    """Fine-tune every fold of every setting; write ``results.json`` / ``results.md`` with mean ± std."""
    run_dir = make_run_dir(config.run.output_dir, config.run.name, preset)
    if not resume:
        record_run(run_dir, config, config.train.seed)
    episodes = _Episodes(config)
    per_setting: dict[str, dict[str, Any]] = {}
    for way, shot in config.episodes.settings:
        name = f"{way}way{shot}shot"
        folds: dict[str, dict[str, Any]] = {}
        for fold in config.episodes.folds:
            fold_dir = run_dir / name / f"fold{fold}"
            if not (fold_dir / "results.json").is_file():
                _run_fold(config, episodes, way, shot, fold, fold_dir, device, show_progress)
            payload = json.loads((fold_dir / "results.json").read_text())
            folds[str(fold)] = {
                "final_acc": payload["final_epoch"]["acc"],
                "best_acc": payload["best_epoch"]["acc"],
                "best_epoch": payload["best_epoch"]["epoch"],
                "episode": payload.get("episode"),
                "episode_classes": payload.get("episode_classes"),
            }
        per_setting[name] = {
            "way": way,
            "shot": shot,
            "folds": folds,
            "final_epoch": summarize(f["final_acc"] for f in folds.values()),
            "best_epoch_per_fold": summarize(f["best_acc"] for f in folds.values()),
        }
    write_fewshot_results(run_dir, per_setting, config)
    return run_dir


def _run_fold(
    config: FewShotConfig,
    episodes: _Episodes,
    way: int,
    shot: int,
    fold: int,
    fold_dir: Path,
    device: str,
    show_progress: bool,
) -> None:
    train, test, info = episodes.datasets(way, shot, fold)
    cfg = classify_config(config, fold_dir.parent, fold_dir.name)

    def make_task(c: ClassifyConfig, run_dir: Path) -> ClassificationTask:
        task = ClassificationTask(c, run_dir, datasets=(augmented(train, c.data, c.train.seed), test))
        task.info |= {**info, "fold": fold, "way": way, "shot": shot}
        return task

    train_task(cfg, make_task, None, (fold_dir / "ckpt-last.pth").is_file(), device, show_progress)
    if not config.episodes.keep_checkpoints:
        for ckpt in ("ckpt-last.pth", "ckpt-best.pth"):
            (fold_dir / ckpt).unlink(missing_ok=True)


def write_fewshot_results(run_dir: Path, per_setting: dict[str, dict[str, Any]], config: FewShotConfig) -> None:
    """``results.json`` (every fold, summaries, labelled rows) and ``results.md`` (mean ± std table)."""
    rows: dict[str, dict[str, float]] = {}
    for s in per_setting.values():
        setting = f"{s['way']}-way {s['shot']}-shot"
        for label, key in ((FINAL_LABEL, "final_epoch"), (BEST_LABEL, "best_epoch_per_fold")):
            rows[f"{setting}: {label}"] = {"acc": s[key]["mean"], "acc_std_over_folds": s[key]["std"]}
    source = (
        "official fold files" if config.official_folds else f"episodes generated from {config.data.name}"
    ) + f", folds {config.episodes.folds}"
    notes = [
        f"episodes: {source}",
        f"'{FINAL_LABEL}': accuracy after the last of {config.train.epochs} epochs (the honest figure)",
        f"'{BEST_LABEL}': each fold's best test accuracy over epochs (no validation split, optimistic)",
        f"± over folds; {STD_NOTE}",
    ]
    payload = {"settings": per_setting, "rows": rows, "notes": notes}
    lines = ["| setting | folds | final epoch | best epoch per fold (official) |", "|---|---|---|---|"]
    for s in per_setting.values():
        lines.append(
            f"| {s['way']}-way {s['shot']}-shot | {s['final_epoch']['n']} | {format_mean_std(s['final_epoch'])} | "
            f"{format_mean_std(s['best_epoch_per_fold'])} |"
        )
    write_results(run_dir, "fewshot", payload, "\n".join([*lines, "", *[f"- {n}" for n in notes]]))
