"""The data doctor: which layout a folder holds, and everything that would stop training on it.

:func:`check_data` reads ``root`` with the same readers training uses (:data:`act3d.data.DATASETS`)
and reports, without writing anything: missing split files and where to get them, folder names
that differ from what the presets expect, sample counts against the official ones, files that do
not read (each named with its problem), clouds with too few points, class balance per split, and
the ``act3d`` lines that train on the folder. Layouts and counts: docs/data.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from act3d.data import DATASETS
from act3d.data.base import PointCloudDataset
from act3d.data.io import SUPPORTED_SUFFIXES
from act3d.data.modelnet import CACHE_POINTS, FEWSHOT_FOLDER
from act3d.data.modelnet import FOLDER as MODELNET_FOLDER
from act3d.data.scanobjectnn import VARIANTS as SCAN_VARIANTS
from act3d.data.shapenet55 import POINT_FOLDERS
from act3d.data.shapenetpart import FOLDER as PART_FOLDER
from act3d.errors import Act3dError, ConfigError

Level = Literal["error", "warning", "note"]

OFFICIAL_COUNTS = {
    "shapenet55": {"train": 41952, "test": 10518},
    "modelnet40": {"train": 9843, "test": 2468},
    "modelnet10": {"train": 3991, "test": 908},
    "scanobjectnn/OBJ_BG": {"train": 2309, "test": 581},
    "scanobjectnn/OBJ_ONLY": {"train": 2309, "test": 581},
    "scanobjectnn/PB_T50_RS": {"train": 11416, "test": 2882},
    "shapenetpart": {"train": 12137, "val": 1870, "test": 2874},
}
"""Samples per split of the official downloads."""

FEWSHOT_SETTINGS = [(5, 10), (5, 20), (10, 10), (10, 20)]
FEWSHOT_FOLDS = 10
FEWSHOT_QUERIES = 20  # test samples per class in each official fold


@dataclass
class Finding:
    """One thing the doctor noticed: ``error`` stops training, ``warning`` changes results, ``note`` informs."""

    level: Level
    path: str
    message: str


@dataclass
class SplitReport:
    """One split as a reader sees it: its samples, the official count, the samples per class."""

    name: str
    samples: int
    expected: int | None
    checked: int
    classes: dict[str, int]


@dataclass
class DataReport:
    """What :func:`check_data` found; ``ok`` when nothing stops training and the layout is complete."""

    root: str
    layout: str | None
    findings: list[Finding] = field(default_factory=list)
    splits: list[SplitReport] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.layout is not None and not any(f.level == "error" for f in self.findings)

    def add(self, level: Level, path: Path | str, message: str) -> None:
        self.findings.append(Finding(level, str(path), message))

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2)

    def text(self) -> str:
        """The report a person reads: layout, splits, findings, verdict, commands."""
        lines = [f"data check: {self.root}", f"layout: {self.layout or 'not recognised'}", ""]
        if self.splits:
            lines += ["| split | samples | official | read | classes: fewest … most samples |", "|---|---|---|---|---|"]
            lines += [_split_line(s) for s in self.splits] + [""]
        for level in ("error", "warning", "note"):
            lines += [f"{level.upper()}: {f.path}: {f.message}" for f in self.findings if f.level == level]
        errors = sum(f.level == "error" for f in self.findings)
        verdict = "OK: complete and readable" if self.ok else f"NOT READY: {errors} error(s)"
        lines += [*([""] if self.findings else []), verdict]
        if self.commands and self.ok:
            lines += ["", "train on it:", *(f"  {c}" for c in self.commands)]
        return "\n".join(lines)


def _split_line(split: SplitReport) -> str:
    ranked = sorted(split.classes.items(), key=lambda item: item[1])
    balance = f"{len(ranked)}: {ranked[0][0]} {ranked[0][1]} … {ranked[-1][0]} {ranked[-1][1]}" if ranked else "–"
    expected = "–" if split.expected is None else str(split.expected)
    return f"| {split.name} | {split.samples} | {expected} | {split.checked} | {balance} |"


@dataclass(frozen=True)
class Part:
    """One split of one dataset of a layout, as a training config names it."""

    name: str
    dataset: str
    split: str | None
    npoints: int
    options: dict[str, Any] = field(default_factory=dict)
    expected: int | None = None


@dataclass(frozen=True)
class Layout:
    """A layout act3d reads: how to recognise it, what to read, what to run on it."""

    name: str
    detect: Callable[[Path], bool]
    parts: Callable[[Path, DataReport], list[Part]]
    commands: tuple[str, ...]


def _first_dir(root: Path, *candidates: str) -> Path | None:
    return next((root / c for c in candidates if (root / c).is_dir()), None)


# -- ShapeNet-55 -----------------------------------------------------------------------------------
def _shapenet55_parts(root: Path, report: DataReport) -> list[Part]:
    folders = [root / f for f in POINT_FOLDERS if (root / f).is_dir()]
    if folders and folders[0].name != POINT_FOLDERS[0]:
        report.add(
            "note",
            folders[0],
            f"the official configs name this folder {POINT_FOLDERS[0]}/; act3d reads {folders[0].name}/ as well "
            "(first 3 columns), no override needed",
        )
    if len(folders) > 1:
        report.add("note", root, f"both {POINT_FOLDERS[0]}/ and {POINT_FOLDERS[1]}/ exist: act3d reads the first")
    counts = OFFICIAL_COUNTS["shapenet55"]
    return [Part(s, "shapenet55", s, 1024, expected=counts[s]) for s in ("train", "test")]


# -- ModelNet --------------------------------------------------------------------------------------
def _modelnet_folder(root: Path) -> Path:
    return root / MODELNET_FOLDER if (root / MODELNET_FOLDER).is_dir() else root


def _modelnet_parts(root: Path, report: DataReport) -> list[Part]:
    folder = _modelnet_folder(root)
    parts = []
    for classes in (40, 10):
        if not (folder / f"modelnet{classes}_shape_names.txt").is_file():
            continue
        name = f"modelnet{classes}"
        for split in ("train", "test"):
            cache = folder / f"{name}_{split}_{CACHE_POINTS}pts_fps.dat"
            if classes == 40 and not cache.is_file():
                report.add(
                    "note",
                    cache,
                    "absent: training reads the 10,000-point .txt files and runs FPS on each (slower start); "
                    "the official cache is in the Point-BERT / ACT ModelNet download",
                )
            expected = OFFICIAL_COUNTS[name][split]
            parts.append(Part(f"{name} {split}", name, split, 1024, expected=expected))
    return parts


def _fewshot_parts(root: Path, report: DataReport) -> list[Part]:
    folder = root / FEWSHOT_FOLDER if (root / FEWSHOT_FOLDER).is_dir() else root
    parts = []
    for way, shot in FEWSHOT_SETTINGS:
        setting = _first_dir(folder, f"{way}way{shot}shot", f"{way}way_{shot}shot")
        if setting is None:
            report.add("error", folder / f"{way}way{shot}shot", "does not exist: the official download has 4 settings")
            continue
        missing = [k for k in range(FEWSHOT_FOLDS) if not (setting / f"{k}.pkl").is_file()]
        if missing:
            report.add("error", setting, f"lacks folds {missing} (files <fold>.pkl, folds 0–9)")
        for fold in sorted(set(range(FEWSHOT_FOLDS)) - set(missing)):
            options = {"way": way, "shot": shot, "fold": fold}
            for split, expected in (("train", way * shot), ("test", way * FEWSHOT_QUERIES)):
                parts.append(
                    Part(f"{way}way{shot}shot/{fold} {split}", "modelnet_fewshot", split, 1024, options, expected)
                )
    return parts


# -- ScanObjectNN ----------------------------------------------------------------------------------
def _scan_base(root: Path) -> Path:
    """The folder holding ``main_split*``: ``root``, ``root/h5_files``, or ``root``'s parent."""
    for base in (root, root / "h5_files", root.parent):
        if any((base / folder).is_dir() for folder, _ in SCAN_VARIANTS.values()):
            return base
    return root


def _scanobjectnn_parts(root: Path, report: DataReport) -> list[Part]:
    base = _scan_base(root)
    if base == root.parent:
        report.add(
            "note",
            root,
            f"is a main_split folder (the official cfg's path); act3d reads the variants from {base}, "
            "and data.root may be either",
        )
    elif base.name == "h5_files" and base != root:
        report.add("note", base, "the extra h5_files/ level of the download is fine: act3d looks inside it")
    parts = []
    for variant, (folder, name) in SCAN_VARIANTS.items():
        counts = OFFICIAL_COUNTS[f"scanobjectnn/{variant}"]
        files = [base / folder / f"{prefix}_{name}" for prefix in ("training", "test")]
        absent = [f for f in files if not f.is_file()]
        if absent:
            report.add("error", absent[0], f"does not exist: variant {variant} cannot be read")
            continue
        options = {"variant": variant}
        parts += [Part(f"{variant} {s}", "scanobjectnn", s, 2048, options, counts[s]) for s in ("train", "test")]
    return parts


# -- ShapeNetPart ----------------------------------------------------------------------------------
OLD_PART_FOLDER = "shapenetcore_partanno_segmentation_benchmark_v0"


def _part_folder(root: Path) -> Path:
    return root / PART_FOLDER if (root / PART_FOLDER).is_dir() else root


def _shapenetpart_parts(root: Path, report: DataReport) -> list[Part]:
    folder = _part_folder(root)
    if (folder / "points").is_dir() or root.name == OLD_PART_FOLDER or (root / OLD_PART_FOLDER).is_dir():
        report.add(
            "error",
            folder,
            "looks like the older ShapeNetPart release without normals (points/*.pts, points_label/*.seg); "
            f"act3d reads {PART_FOLDER} (<synset>/<id>.txt with x y z nx ny nz part), the release the "
            "Point-BERT / Point-MAE / ACT code uses",
        )
        return []
    split_dir = folder / "train_test_split"
    if not split_dir.is_dir():
        report.add("error", split_dir, "does not exist: it holds shuffled_{train,val,test}_file_list.json")
        return []
    counts = OFFICIAL_COUNTS["shapenetpart"]
    return [Part(s, "shapenetpart", s, 2048, expected=counts[s]) for s in ("train", "val", "test")]


# -- your own data ---------------------------------------------------------------------------------
def _has_split_folders(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def _folder_parts(root: Path, report: DataReport) -> list[Part]:
    if _has_split_folders(root) or any((c / "train").is_dir() for c in root.iterdir() if c.is_dir()):
        return [Part(s, "folder", s, 1024) for s in ("train", "test")]
    report.add("note", root, "has no train/ and test/ split: it reads as one set (split=None)")
    return [Part("all", "folder", None, 1024)]


def _npz_parts(root: Path, report: DataReport) -> list[Part]:
    return [Part(s, "npz", s, 1024) for s in ("train", "test") if (root / f"{s}.npz").is_file()] or [
        Part("train", "npz", "train", 1024)
    ]


def _any_point_files(root: Path) -> bool:
    return any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in root.glob("*/*")) or any(
        p.suffix.lower() in SUPPORTED_SUFFIXES for p in root.glob("*/*/*")
    )


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "shapenet55",
            lambda r: any((r / f).is_dir() for f in POINT_FOLDERS),
            _shapenet55_parts,
            (
                "act3d pretrain-teacher --config act_stage1_shapenet55 data.root={root}",
                "act3d pretrain --config act_pretrain_shapenet55 data.root={root} "
                "teacher_checkpoint=runs/act_stage1_shapenet55/ckpt-best.pth",
            ),
        ),
        Layout(
            "modelnet",
            lambda r: any(_modelnet_folder(r).glob("modelnet*_shape_names.txt")),
            _modelnet_parts,
            (
                "act3d classify --config finetune_modelnet40 data.root={root} init=runs/pretrain/encoder.pth",
                "act3d svm --config svm_modelnet40 data.root={root} init=runs/pretrain/encoder.pth",
            ),
        ),
        Layout(
            "modelnet_fewshot",
            lambda r: (
                _first_dir(r / FEWSHOT_FOLDER if (r / FEWSHOT_FOLDER).is_dir() else r, "5way10shot", "5way_10shot")
                is not None
            ),
            _fewshot_parts,
            ("act3d fewshot --config fewshot_modelnet40 data.root={root} init=runs/pretrain/encoder.pth",),
        ),
        Layout(
            "scanobjectnn",
            lambda r: any((_scan_base(r) / f).is_dir() for f, _ in SCAN_VARIANTS.values()),
            _scanobjectnn_parts,
            (
                "act3d classify --config finetune_scan_objbg data.root={root} init=runs/pretrain/encoder.pth",
                "act3d classify --config finetune_scan_objonly data.root={root} init=runs/pretrain/encoder.pth",
                "act3d classify --config finetune_scan_hardest data.root={root} init=runs/pretrain/encoder.pth",
            ),
        ),
        Layout(
            "shapenetpart",
            lambda r: (
                (_part_folder(r) / "synsetoffset2category.txt").is_file()
                or (r / OLD_PART_FOLDER).is_dir()
                or r.name in (PART_FOLDER, OLD_PART_FOLDER)
            ),
            _shapenetpart_parts,
            ("act3d partseg --config partseg_shapenetpart data.root={root} init=runs/pretrain/encoder.pth",),
        ),
        Layout(
            "npz",
            lambda r: (r / "classes.txt").is_file() and any(r.glob("*.npz")),
            _npz_parts,
            ("act3d classify --config classify_modelnet10_cpu data.root={root}",),
        ),
        Layout(
            "folder",
            _any_point_files,
            _folder_parts,
            ("act3d classify --config classify_cpu data.name=folder data.root={root} data.npoints=1024",),
        ),
    )
}
"""The layouts, in the order :func:`detect_layout` tries them."""


def detect_layout(root: Path) -> str | None:
    """The name of the first layout of :data:`LAYOUTS` that ``root`` holds, or None.

    A folder whose sub-folder holds an official layout is not read as your own 'folder' layout
    (its split lists are text files too).
    """
    official = _official_layout(root)
    if official is not None:
        return official
    if any(_official_layout(child) for child in root.iterdir() if child.is_dir()):
        return None
    return "folder" if LAYOUTS["folder"].detect(root) else None


def _official_layout(root: Path) -> str | None:
    return next((name for name, layout in LAYOUTS.items() if name != "folder" and layout.detect(root)), None)


def check_data(
    root: str | Path, dataset: str | None = None, limit: int | None = None, subset: bool = False
) -> DataReport:
    """Check ``root`` as layout ``dataset`` (a key of :data:`LAYOUTS`; detected when None).

    ``limit``: read at most this many samples per split (None: all). ``subset``: a partial copy is
    intended, so counts that differ from the official ones are warnings, not errors.
    """
    root = Path(root)
    if dataset is not None and dataset not in LAYOUTS:
        raise ConfigError(f"unknown layout {dataset!r}; valid: {', '.join(LAYOUTS)}")
    report = DataReport(str(root), dataset)
    if not root.is_dir():
        report.add("error", root, "is not a folder")
        return report
    report.layout = dataset or detect_layout(root)
    if report.layout is None:
        _explain_unknown(root, report)
        return report
    layout = LAYOUTS[report.layout]
    for part in layout.parts(root, report):
        _check_part(root, part, report, limit, subset)
    report.commands = [c.format(root=root) for c in layout.commands]
    return report


def _explain_unknown(root: Path, report: DataReport) -> None:
    inside = [(child, detect_layout(child)) for child in sorted(root.iterdir()) if child.is_dir()]
    hints = [f"{child} looks like {name}: run act3d data check {child}" for child, name in inside if name]
    report.add("error", root, f"holds none of the layouts act3d reads ({', '.join(LAYOUTS)})")
    for hint in hints:
        report.add("note", root, hint)


def _check_part(root: Path, part: Part, report: DataReport, limit: int | None, subset: bool) -> None:
    try:
        dataset = DATASETS[part.dataset](str(root), part.split, part.npoints, **part.options)
    except Act3dError as err:
        report.add("error", getattr(err, "path", None) or root, getattr(err, "problem", str(err)))
        return
    samples = len(dataset)
    checked = _read_samples(dataset, part.npoints, limit, report)
    counts = Counter(int(label) for label in dataset.labels)
    classes = {dataset.classes[k]: counts.get(k, 0) for k in range(dataset.num_classes)}
    report.splits.append(SplitReport(part.name, samples, part.expected, checked, classes))
    if part.expected is not None and samples != part.expected:
        level: Level = "warning" if subset else "error"
        report.add(level, root, f"{part.name}: {samples} samples, the official split has {part.expected}")
    if samples and any(n == 0 for n in classes.values()):
        empty = [c for c, n in classes.items() if n == 0]
        report.add("warning", root, f"{part.name}: no samples of {len(empty)} class(es): {', '.join(empty[:8])}")


def _read_samples(dataset: PointCloudDataset, npoints: int, limit: int | None, report: DataReport) -> int:
    """Read every sample (or the first ``limit``) with the dataset's own reader, adding what is wrong
    to ``report``; returns how many were read."""
    short = []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in range(count):
        path = _sample_path(dataset, index)
        try:
            points = dataset._load(index)["points"]
        except Act3dError as err:
            report.add("error", getattr(err, "path", None) or path, getattr(err, "problem", str(err)))
            continue
        if not np.isfinite(points).all():
            report.add("error", path, f"sample {index} has NaN or infinite coordinates")
        elif points.shape[0] < npoints:
            short.append((index, points.shape[0], path))
    if short:
        index, n, path = short[0]
        report.add(
            "warning",
            path,
            f"{len(short)} cloud(s) have fewer than the {npoints} points the presets read (sample {index}: "
            f"{n}); training repeats points to fill them",
        )
    return count


def _sample_path(dataset: PointCloudDataset, index: int) -> str:
    files = getattr(dataset, "files", None)
    if files:
        return str(files[index])
    return str(getattr(dataset, "path", "?"))  # one file holds every cloud
