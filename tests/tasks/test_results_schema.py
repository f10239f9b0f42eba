"""One results writer: every results.json carries the schema, its kind and well-formed rows."""

from __future__ import annotations

import json

import pytest

from act3d.tasks.results import SCHEMA, write_results
from act3d.tasks.stats import read_rows


def test_written_results_carry_the_schema_and_read_back_as_rows(tmp_path):
    rows = {"final epoch": {"acc": 91.5, "loss": float("nan")}, "best epoch (official)": {"acc": 92.0, "x": None}}
    write_results(tmp_path, "train", {"rows": rows, "detail": "kept"}, "| table |")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["schema"] == SCHEMA and payload["kind"] == "train" and payload["detail"] == "kept"
    assert read_rows(tmp_path)["final epoch"]["acc"] == 91.5
    assert (tmp_path / "results.md").read_text() == "| table |\n"


@pytest.mark.parametrize(
    ("kind", "rows", "message"),
    [
        ("bogus", {"a": {"acc": 1.0}}, "results kind 'bogus'"),
        ("svm", None, "non-empty"),
        ("svm", {}, "non-empty"),
        ("svm", {"a": [1.0]}, "mapping"),
        ("svm", {"a": {"acc": "high"}}, "is not a number"),
        ("svm", {"a": {"acc": True}}, "is not a number"),
    ],
)
def test_malformed_results_are_refused_before_anything_is_written(tmp_path, kind, rows, message):
    with pytest.raises(ValueError, match=message):
        write_results(tmp_path, kind, {"rows": rows}, "")
    assert not (tmp_path / "results.json").exists()
