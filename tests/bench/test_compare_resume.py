"""``bench/compare.py`` goes on where an earlier run into the same folder stopped, and only then."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def compare_module():
    spec = importlib.util.spec_from_file_location("bench_compare", REPO / "bench" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def args(out: Path, seeds: list[int], steps: int = 200) -> argparse.Namespace:
    return argparse.Namespace(seeds=seeds, stage1_steps=steps, out=str(out), stage1_from=None, epochs=1)


def test_finished_seeds_are_reused_and_other_settings_refused(tmp_path):
    compare = compare_module()
    earlier = {"args": vars(args(tmp_path, [1, 2])), "seeds_done": [1, 2]}
    earlier["results"] = {"random init": [{"svm": 50.0}, {"svm": 52.0}], "ACT DINOv2": [{"svm": 60.0}, {"svm": 61.0}]}
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    results = {"random init": [], "ACT DINOv2": []}
    assert compare.earlier_seeds(tmp_path, args(tmp_path, [0]), results) == [1, 2]
    assert results["ACT DINOv2"] == [{"svm": 60.0}, {"svm": 61.0}]
    with pytest.raises(SystemExit, match="other settings"):
        compare.earlier_seeds(tmp_path, args(tmp_path, [0], steps=300), {"random init": [], "ACT DINOv2": []})
    with pytest.raises(SystemExit, match="other settings or arms"):
        compare.earlier_seeds(tmp_path, args(tmp_path, [0]), {"random init": [], "ACT control": []})
    assert compare.earlier_seeds(tmp_path / "new", args(tmp_path, [0]), {"random init": []}) == []
