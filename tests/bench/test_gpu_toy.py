"""``bench/gpu.py --toy``: the GPU check's whole code path, on the CPU at toy size (see docs/gpu.md)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu-out")
    work = tmp_path_factory.mktemp("gpu-work")
    cmd = [sys.executable, str(REPO / "bench" / "gpu.py"), "--toy", "--out", str(out), "--work", str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=REPO)
    path = out / "gpu.json"
    assert path.is_file(), f"no gpu.json; exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(path.read_text()), out, proc


@pytest.mark.slow
def test_every_section_ran_and_every_check_passed(toy_report):
    report, _, proc = toy_report
    failed = [f"{r['section']} {r['name']}: {r['value']} {r['detail']}" for r in _rows(report) if not r["ok"]]
    assert not failed, "\n".join(failed)
    assert {k: s["status"] for k, s in report["sections"].items()} == {"a": "done", "b": "done", "c": "done"}
    assert report["all_ok"] and proc.returncode == 0, proc.stderr[-3000:]
    assert report["meta"]["toy"] and report["meta"]["device"] == "cpu"


@pytest.mark.slow
def test_section_a_covers_every_op_model_and_the_loader(toy_report):
    names = [r["name"] for r in toy_report[0]["sections"]["a"]["rows"]]
    for op in ("farthest_point_sample", "knn", "chamfer_distance"):
        assert sum(op in n for n in names) == 2, (op, names)  # dense and buckets
    for part in ("group", "ball_query", "ACTAutoencoder", "(ACT)", "(Point-MAE)", "PointClassifier", "PartSegmenter"):
        assert any(part in n for n in names), (part, names)
    assert any(n.startswith("loader: official") for n in names)
    for row in toy_report[0]["sections"]["a"]["rows"]:
        assert math.isfinite(row["data"]["max_abs_err"]), row


@pytest.mark.slow
def test_section_b_trained_three_stages_with_finite_losses(toy_report):
    rows = toy_report[0]["sections"]["b"]["rows"]
    assert [r["name"].split(":")[0] for r in rows] == ["stage I", "stage II", "fine-tune"]
    for row in rows:
        assert row["data"]["steps"] == 2 and math.isfinite(row["data"]["loss"]), row
        assert row["data"]["test"] and all(math.isfinite(v) for v in row["data"]["test"].values()), row


@pytest.mark.slow
def test_section_c_measured_every_case_and_the_epoch_estimate(toy_report):
    rows = {r["name"]: r for r in toy_report[0]["sections"]["c"]["rows"]}
    cases = [r for r in rows.values() if "samples_per_s" in r["data"]]
    assert sorted(r["data"]["task"] for r in cases) == ["finetune", "stage1", "stage2"]
    for row in cases:
        d = row["data"]
        assert d["samples_per_s"] > 0 and d["flops"] > 0 and d["peak_bytes"] > 0 and math.isfinite(d["loss"]), row
    epoch = rows["ShapeNet-55 stage-II epoch (estimate)"]["data"]["seconds_per_epoch"]
    assert all(v > 0 for v in epoch.values())


@pytest.mark.slow
def test_markdown_table_is_written_and_printed(toy_report):
    report, out, proc = toy_report
    table = (out / "gpu.md").read_text()
    assert "| section | check | ok | result | details | s |" in table
    assert table.count("\n| ") - 1 == len(_rows(report))  # one line per row, plus the header
    assert table.strip() in proc.stdout


def _rows(report: dict) -> list[dict]:
    return [r for s in report["sections"].values() for r in s["rows"]]
