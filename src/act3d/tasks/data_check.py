"""``act3d data check``: the data doctor's report (:mod:`act3d.data.doctor`) printed, and its exit status."""

from __future__ import annotations

from pathlib import Path

from act3d.data.doctor import check_data


def run_data_check(root: str | Path, layout: str | None, limit: int | None, subset: bool, as_json: bool) -> int:
    """Print the report of ``root`` (text or JSON); 0 when complete and readable, 1 otherwise."""
    report = check_data(root, layout, limit, subset)
    print(report.to_json() if as_json else report.text())
    return 0 if report.ok else 1
