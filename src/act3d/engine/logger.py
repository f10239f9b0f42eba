"""Metrics to a JSON-lines file and TensorBoard, and a PNG of the curves at the end of a run."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from act3d.engine.run import write_text_atomic


class MetricLogger:
    """Appends ``{"step", "epoch", **metrics}`` records to ``metrics.jsonl`` and TensorBoard.

    Only the main process should create one; resuming appends to the same file.
    """

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 (held for the run; line-buffered)
        self._writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        record = {"step": step, "epoch": epoch, **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        self._file.close()
        self._writer.close()


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop records after ``last_step`` (and torn lines): a resumed run replays those steps."""
    if path.is_file():
        kept = [json.dumps(r) + "\n" for r in read_metrics(path) if r["step"] <= last_step]
        write_text_atomic(path, "".join(kept))


def read_metrics(path: Path) -> list[dict[str, float]]:
    """All records of a ``metrics.jsonl``; a torn last line (killed run) is skipped."""
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def plot_curves(metrics_path: Path, out_path: Path) -> Path:
    """One panel per metric name (against the global step) → PNG at ``out_path``."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for record in read_metrics(metrics_path):
        for key, value in record.items():
            if key not in ("step", "epoch") and math.isfinite(value):
                series[key].append((record["step"], value))
    names = sorted(series)
    cols = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys = zip(*series[name], strict=True)
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
