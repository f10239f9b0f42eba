"""`act3d data check`: each official layout is recognised and passes; each broken variant gets its own message."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from act3d.cli import main, parse_args
from act3d.data.doctor import FEWSHOT_FOLDS, FEWSHOT_SETTINGS, LAYOUTS, DataReport, check_data
from act3d.presets import preset_names
from layouts import (
    MN_TRAIN,
    SN_TRAIN,
    cloud,
    fewshot_fold,
    modelnet_tree,
    scanobjectnn_tree,
    shapenet55_tree,
    shapenetpart_tree,
)


def fewshot_tree(root: Path) -> Path:
    for way, shot in FEWSHOT_SETTINGS:
        for fold in range(FEWSHOT_FOLDS):
            fewshot_fold(root / "ModelNetFewshot" / f"{way}way{shot}shot" / f"{fold}.pkl", way=way, shot=1)
    return root / "ModelNetFewshot"


def folder_tree(root: Path) -> Path:
    for split in ("train", "test"):
        for cls in ("cup", "lamp"):
            (root / split / cls).mkdir(parents=True)
            np.save(root / split / cls / "a.npy", cloud(40))
    return root


TREES = {
    "shapenet55": lambda tmp: shapenet55_tree(tmp / "ShapeNet55-34"),
    "modelnet": lambda tmp: modelnet_tree(tmp / "ModelNet"),
    "modelnet_fewshot": fewshot_tree,
    "scanobjectnn": lambda tmp: scanobjectnn_tree(tmp).parent,
    "shapenetpart": lambda tmp: shapenetpart_tree(tmp / "ShapeNetPart"),
    "folder": folder_tree,
}


def messages(report: DataReport, level: str) -> str:
    return "\n".join(f"{f.path}: {f.message}" for f in report.findings if f.level == level)


@pytest.mark.parametrize("layout", sorted(TREES))
def test_each_official_layout_is_recognised_read_and_passes_as_a_subset(tmp_path: Path, layout: str) -> None:
    root = TREES[layout](tmp_path)
    report = check_data(root, subset=True)
    assert report.layout == layout, report.text()
    assert report.ok, report.text()
    assert report.splits and all(s.checked == s.samples > 0 for s in report.splits)
    assert all(sum(s.classes.values()) == s.samples for s in report.splits), "class balance covers every sample"
    assert report.commands and all(f"data.root={root}" in c for c in report.commands)
    assert "OK: complete and readable" in report.text() and "train on it:" in report.text()


@pytest.mark.parametrize("layout", sorted(set(TREES) - {"folder"}))
def test_counts_below_the_official_ones_fail_unless_a_subset_is_intended(tmp_path: Path, layout: str) -> None:
    report = check_data(TREES[layout](tmp_path))
    assert not report.ok
    assert "the official split has" in messages(report, "error")
    assert "NOT READY" in report.text() and "train on it:" not in report.text()


def test_every_suggested_command_is_a_valid_command_line_with_a_shipped_preset() -> None:
    for layout in LAYOUTS.values():
        for command in layout.commands:
            args = parse_args(shlex.split(command.format(root="data/x"))[1:])
            assert args.config in preset_names(), command


def test_shapenet55_without_split_lists_says_where_to_get_them(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path / "ShapeNet55-34")
    shutil.rmtree(root / "ShapeNet-55")
    report = check_data(root, subset=True)
    assert report.layout == "shapenet55" and not report.ok
    assert "train.txt: does not exist" in messages(report, "error") and "Point-MAE repository" in report.text()


def test_shapenet55_masksurf_folder_name_is_a_note_not_an_error(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path / "ShapeNet55-34", folder="shapenet_pc_masksurf_with_normal", columns=6)
    report = check_data(root, subset=True)
    assert report.ok and "the official configs name this folder shapenet_pc/" in messages(report, "note")


def test_a_half_copied_shapenet55_names_the_missing_cloud(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path / "ShapeNet55-34")
    (root / "shapenet_pc" / SN_TRAIN[2]).unlink()
    report = check_data(root, subset=True)
    assert f"{SN_TRAIN[2]}: does not exist but is listed in" in messages(report, "error")


def test_modelnet_unreadable_and_short_files_are_named_and_missing_caches_noted(tmp_path: Path) -> None:
    folder = modelnet_tree(tmp_path / "ModelNet")
    bad = folder / "airplane" / f"{MN_TRAIN[0]}.txt"
    rows = cloud(100, 6)
    rows[7, 1] = np.nan
    np.savetxt(bad, rows, delimiter=",", fmt="%.6f")
    short = folder / "night_stand" / f"{MN_TRAIN[1]}.txt"
    np.savetxt(short, cloud(30, 6), delimiter=",", fmt="%.6f")  # the tree's other clouds have 100 points
    report = check_data(tmp_path / "ModelNet", subset=True)
    assert not report.ok
    assert f"{bad}: contains 1 NaN values (first in row 7)" in messages(report, "error")
    warning = "3 cloud(s) have fewer than the 1024 points the presets read (sample 1: 30)"
    assert f"{short}: {warning}" in messages(report, "warning"), "counted over the readable clouds, first named"
    assert "modelnet40_train_8192pts_fps.dat: absent" in messages(report, "note")


def test_fewshot_missing_folds_and_settings_are_listed(tmp_path: Path) -> None:
    root = fewshot_tree(tmp_path)
    (root / "10way20shot" / "4.pkl").unlink()
    shutil.rmtree(root / "5way20shot")
    report = check_data(tmp_path, subset=True)
    assert report.layout == "modelnet_fewshot" and not report.ok
    errors = messages(report, "error")
    assert "10way20shot: lacks folds [4]" in errors and "5way20shot: does not exist" in errors


def test_scanobjectnn_levels_and_a_missing_variant(tmp_path: Path) -> None:
    h5 = scanobjectnn_tree(tmp_path)
    assert "extra h5_files/ level" in messages(check_data(h5.parent, subset=True), "note")
    from_main_split = check_data(h5 / "main_split", subset=True)
    assert from_main_split.ok and "is a main_split folder" in messages(from_main_split, "note")
    shutil.rmtree(h5 / "main_split_nobg")
    report = check_data(h5.parent, subset=True)
    assert not report.ok and "variant OBJ_ONLY cannot be read" in messages(report, "error")
    assert {s.name for s in report.splits} == {"OBJ_BG train", "OBJ_BG test", "PB_T50_RS train", "PB_T50_RS test"}


def test_shapenetpart_old_release_half_copy_and_missing_lists(tmp_path: Path) -> None:
    old = tmp_path / "old" / "shapenetcore_partanno_segmentation_benchmark_v0"
    (old / "02691156" / "points").mkdir(parents=True)
    (old / "synsetoffset2category.txt").write_text("Airplane\t02691156\n")
    report = check_data(tmp_path / "old", dataset="shapenetpart")
    assert "older ShapeNetPart release without normals" in messages(report, "error")

    folder = shapenetpart_tree(tmp_path / "ShapeNetPart")
    shutil.rmtree(folder / "03797390")
    report = check_data(tmp_path / "ShapeNetPart", subset=True)
    assert not report.ok and "does not exist but is listed in" in messages(report, "error")
    shutil.rmtree(folder / "train_test_split")
    report = check_data(tmp_path / "ShapeNetPart", subset=True)
    assert "train_test_split: does not exist" in messages(report, "error")


def test_an_unknown_folder_points_to_the_layout_inside_it(tmp_path: Path) -> None:
    modelnet_tree(tmp_path / "ModelNet")
    (tmp_path / "notes").mkdir()
    report = check_data(tmp_path)
    assert report.layout is None and not report.ok
    assert f"{tmp_path / 'ModelNet'} looks like modelnet" in messages(report, "note")


def test_the_doctor_writes_nothing(tmp_path: Path) -> None:
    root = modelnet_tree(tmp_path / "ModelNet")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    check_data(root, subset=True)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_cli_exit_status_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = modelnet_tree(tmp_path / "ModelNet")
    assert main(["data", "check", str(root), "--subset"]) == 0
    assert "layout: modelnet" in capsys.readouterr().out
    assert main(["data", "check", str(root), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False and payload["layout"] == "modelnet"
    assert main(["data", "check", str(root), "--dataset", "shapenet55", "--subset"]) == 1
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().out


def test_the_cli_names_every_layout() -> None:
    from act3d.cli import DATA_LAYOUTS

    assert list(DATA_LAYOUTS) == list(LAYOUTS)
