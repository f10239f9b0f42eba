"""Honest statistics shared by every evaluation command: mean ± std over seeds or folds, labelled tables.

Every ``results.json`` an act3d command writes holds ``"rows"``: ``{row label: {metric: value}}``, e.g.
``{"final epoch": {"acc": 91.2, ...}, "best epoch (official)": {...}}``. :func:`aggregate_rows` turns
the rows of several runs (seeds, folds) into ``{row label: {metric: summary}}``, where a summary is
:func:`summarize`'s ``{"mean", "std", "n", "min", "max", "values"}``.

``std`` is the sample standard deviation (``ddof=1``, 0 for a single value); ``std_population``
(``ddof=0``, what ``np.std`` gives and what few-shot tables usually quote) is kept beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from act3d.tasks.results import write_results

Rows = dict[str, dict[str, float]]

FINAL_LABEL = "final epoch"
BEST_LABEL = "best epoch (official)"
STD_NOTE = "std: sample standard deviation (ddof=1); std_population (ddof=0) is np.std's"


def summarize(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample std (``ddof=1``), population std (``ddof=0``), n, min, max and the values themselves."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summarize() needs at least one value")
    n = len(vals)
    mean = math.fsum(vals) / n
    squares = math.fsum((v - mean) ** 2 for v in vals)
    return {
        "mean": mean,
        "std": math.sqrt(squares / (n - 1)) if n > 1 else 0.0,
        "std_population": math.sqrt(squares / n),
        "n": n,
        "min": min(vals),
        "max": max(vals),
        "values": vals,
    }


def format_mean_std(summary: Mapping[str, Any], digits: int = 2) -> str:
    """``"93.21 ± 0.45"`` (sample std); a single value is shown without ``±``."""
    if summary["n"] == 1:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def epoch_rows(final: Mapping[str, float], best: Mapping[str, float], final_epoch: int, best_epoch: int) -> Rows:
    """The two labelled rows of a training run: the final epoch, and the best epoch as the official code reports."""
    return {
        FINAL_LABEL: {"epoch": float(final_epoch), **{k: float(v) for k, v in final.items() if k != "epoch"}},
        BEST_LABEL: {"epoch": float(best_epoch), **{k: float(v) for k, v in best.items() if k != "epoch"}},
    }


def aggregate_rows(runs: Sequence[Rows]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{row: {metric: summary}}`` over runs; a metric missing (or None) in some run is summarised over the others."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label in _ordered(label for rows in runs for label in rows):
        metrics = _ordered(m for rows in runs for m in rows.get(label, {}))
        present = {m: [rows[label][m] for rows in runs if rows.get(label, {}).get(m) is not None] for m in metrics}
        out[label] = {m: summarize(values) for m, values in present.items() if values}
    return out


def markdown_table(aggregated: Mapping[str, Mapping[str, Mapping[str, Any]]], digits: int = 2) -> str:
    """A Markdown table: one line per row label, one column per metric, cells ``mean ± std``."""
    metrics = _ordered(m for row in aggregated.values() for m in row)
    n = max((s["n"] for row in aggregated.values() for s in row.values()), default=0)
    lines = [f"| (n={n}) | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for label, row in aggregated.items():
        cells = [format_mean_std(row[m], digits) if m in row else "–" for m in metrics]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_table(rows: Rows, digits: int = 4) -> str:
    """A Markdown table of one run's rows (no statistics).

    Metrics named ``group/name`` (per-category mIoU...) go to a second table, one line per metric.
    """
    metrics = _ordered(m for row in rows.values() for m in row)
    main, grouped = [m for m in metrics if "/" not in m], [m for m in metrics if "/" in m]

    def cell(row: Mapping[str, float], m: str) -> str:
        if m not in row:
            return "–"
        return str(int(row[m])) if m == "epoch" else f"{row[m]:.{digits}f}"

    lines = ["| | " + " | ".join(main) + " |", "|---|" + "---|" * len(main)]
    lines += [f"| {label} | " + " | ".join(cell(row, m) for m in main) + " |" for label, row in rows.items()]
    if grouped:
        lines += ["", "| | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
        lines += [f"| {m} | " + " | ".join(cell(row, m) for row in rows.values()) + " |" for m in grouped]
    return "\n".join(lines)


def read_rows(run_dir: Path) -> Rows:
    """The ``rows`` of ``run_dir/results.json``."""
    return json.loads((Path(run_dir) / "results.json").read_text())["rows"]


def run_seeds(
    run_dir: Path,
    seeds: Sequence[int],
    run_one: Callable[[int, Path, bool], Path],
    title: str,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``run_one(seed, run_dir / f"seed{seed}", resume)`` for every seed, then write the summary.

    ``run_one`` returns the seed's run folder, which must hold a ``results.json`` with ``rows``. A seed
    folder that already has ``results.json`` is reused; one with ``ckpt-last.pth`` is resumed
    (``resume=True``), so ``--resume`` of a multi-seed run continues where it stopped.
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    per_seed: dict[int, Rows] = {}
    for seed in seeds:
        sub = Path(run_dir) / f"seed{seed}"
        if not (sub / "results.json").is_file():
            sub = run_one(seed, sub, (sub / "ckpt-last.pth").is_file())
        per_seed[seed] = read_rows(sub)
    first = json.loads((Path(run_dir) / f"seed{seeds[0]}" / "results.json").read_text())
    inherited = [f"{k}: {v}" for k, v in first.items() if isinstance(v, str) and k != "note"]
    inherited += [n for n in first.get("notes", []) if isinstance(n, str) and not n.startswith("std:")]
    return write_seed_summary(run_dir, per_seed, title, [*notes, *inherited])


def write_seed_summary(
    run_dir: Path, per_seed: Mapping[int, Rows], title: str, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """Top-level ``results.json`` / ``results.md``: mean ± std over seeds of every row and metric."""
    aggregated = aggregate_rows(list(per_seed.values()))
    payload = {
        "title": title,
        "seeds": list(per_seed),
        "aggregate": aggregated,
        "per_seed": {str(k): v for k, v in per_seed.items()},
        "rows": {label: {m: s["mean"] for m, s in row.items()} for label, row in aggregated.items()},
        "notes": [*notes, f"mean ± std over seeds {list(per_seed)}, each run in seed<k>/", STD_NOTE],
    }
    lines = [f"## {title}", "", markdown_table(aggregated), "", *[f"- {n}" for n in payload["notes"]]]
    return write_results(Path(run_dir), "seeds", payload, "\n".join(lines))


def _ordered(items: Iterable[str]) -> list[str]:
    """Unique items in first-seen order."""
    return list(dict.fromkeys(items))
