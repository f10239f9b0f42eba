"""The one writer of a run's ``results.json`` / ``results.md`` and its versioned schema (docs/results_files.md).

Every command's ``results.json`` is a JSON object with at least::

    {"schema": "act3d-results/1", "kind": "<what wrote it>", "rows": {row label: {metric: number or null}}, ...}

``kind`` is ``train`` (classify, partseg, pretrain, pretrain-teacher), ``svm``, ``fewshot``, ``codes``,
``pipeline`` or ``seeds`` (mean over seeds). ``rows`` is what :func:`act3d.tasks.stats.read_rows` and ``--seeds``
aggregate; each kind adds its own details beside it (epochs, folds, per-seed values, notes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from act3d.engine.run import write_text_atomic

SCHEMA = "act3d-results/1"
KINDS = ("train", "svm", "fewshot", "codes", "pipeline", "seeds")


def write_results(run_dir: Path, kind: str, payload: dict[str, Any], markdown: str) -> dict[str, Any]:
    """Write ``run_dir/results.json`` (``payload`` stamped with the schema and ``kind``) and ``results.md``.

    Raises:
        ValueError: an unknown ``kind``, or ``rows`` missing or not ``{label: {metric: number or None}}``.
    """
    if kind not in KINDS:
        raise ValueError(f"results kind {kind!r}: expected one of {', '.join(KINDS)}")
    check_rows(payload.get("rows"))
    full = {"schema": SCHEMA, "kind": kind, **payload}
    write_text_atomic(Path(run_dir) / "results.json", json.dumps(full, indent=2))
    write_text_atomic(Path(run_dir) / "results.md", markdown if markdown.endswith("\n") else markdown + "\n")
    return full


def check_rows(rows: Any) -> None:
    """Raise ValueError unless ``rows`` is ``{label: {metric: number or None}}`` (NaN allowed: a diverged
    metric is reported as it is, never dropped)."""
    if not isinstance(rows, dict) or not rows:
        raise ValueError(f"results rows must be a non-empty {{label: {{metric: value}}}} mapping, got {rows!r}")
    for label, row in rows.items():
        if not isinstance(label, str) or not isinstance(row, dict):
            raise ValueError(f"results row {label!r}: expected a label and a {{metric: value}} mapping")
        for metric, value in row.items():
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
            if not isinstance(metric, str) or not ok:
                raise ValueError(f"results row {label!r}: {metric!r} = {value!r} is not a number")
