"""The campaign: generated inputs through a target (hypothesis), the hostile corpus, and the report."""

from __future__ import annotations

import logging
import pickle
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from act3d.data.io import read_point_file, safe_pickle_load
from act3d.engine.checkpoint import load_checkpoint
from act3d.models.encoder_io import load_encoder

from .cases import FAILURES, OK, Case, Outcome, run_case
from .structured import crafted_pickles, payloads
from .targets import Target
from .valid_files import _torch_bytes, npy, npz


@dataclass
class Report:
    """Outcome counts per target, and the failing inputs (kept on disk when ``keep`` is set)."""

    counts: dict[str, Counter] = field(default_factory=dict)
    sources: dict[str, Counter] = field(default_factory=dict)  # mutated / structured / hostile pickle
    failures: list[tuple[str, Case, Outcome]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def table(self) -> str:
        kinds = list(OK) + [k for k in FAILURES]
        head = "| reader | inputs | " + " | ".join(kinds) + " | slowest input (s) |"
        lines = [head, "|---|" + "---:|" * (len(kinds) + 2)]
        total: Counter = Counter()
        for name, counts in self.counts.items():
            total += counts
            cells = " | ".join(str(counts.get(k, 0)) for k in kinds)
            lines.append(f"| {name} | {sum(counts.values())} | {cells} | {self.slowest.get(name, 0):.2f} |")
        cells = " | ".join(str(total.get(k, 0)) for k in kinds)
        slowest = max(self.slowest.values(), default=0.0)
        lines.append(f"| **all** | **{sum(total.values())}** | {cells} | {slowest:.2f} |")
        return "\n".join(lines)

    def progress(self, name: str) -> str:
        counts = self.counts[name]
        outcomes = "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        return f"{name:18s} {sum(counts.values()):5d} inputs in {self.seconds.get(name, 0.0):6.1f} s  {outcomes}"

    def sources_table(self) -> str:
        kinds = ["mutated", "structured", "hostile"]
        lines = ["| reader | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
        total: Counter = Counter()
        for name, counts in self.sources.items():
            total += counts
            lines.append(f"| {name} | " + " | ".join(str(counts.get(k, 0)) for k in kinds) + " |")
        lines.append("| **all** | " + " | ".join(str(total.get(k, 0)) for k in kinds) + " |")
        return "\n".join(lines)


def source_of(case: Case) -> str:
    """How an input was made: by mutating a valid file, by structured generation, or as a hostile pickle."""
    if case.how.startswith("mutated "):
        return "mutated"
    return "hostile" if "hostile" in case.how or "dtype flags forged" in case.how else "structured"


def fuzz_target(
    target: Target,
    inputs: int,
    workdir: Path,
    report: Report,
    seed: int = 0,
    timeout: float = 10.0,
    raise_on_failure: bool = False,
    keep: Path | None = None,
) -> None:
    """Run ``inputs`` generated inputs through ``target``, adding to ``report``.

    With ``raise_on_failure`` a failing input raises AssertionError (hypothesis then shrinks it), as in
    the test suite; otherwise the campaign goes on and failures are collected.
    """
    marker = workdir / "CODE-EXECUTED-MARKER"
    counts = report.counts.setdefault(target.name, Counter())
    counter = iter(range(10**9))
    strategy = target.cases(marker)
    tic = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(
        max_examples=inputs,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink] if raise_on_failure else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(st.data())
    def one_input(data) -> None:
        case = data.draw(strategy, label="case")
        root = workdir / f"{target.name}-{next(counter)}"
        start = time.perf_counter()
        outcome = run_case(target, case, root, marker, timeout)
        report.slowest[target.name] = max(report.slowest.get(target.name, 0.0), time.perf_counter() - start)
        counts[outcome.kind] += 1
        report.sources.setdefault(target.name, Counter())[source_of(case)] += 1
        if outcome.kind in FAILURES:
            report.failures.append((target.name, case, outcome))
            if keep is not None:
                kept = keep / root.name
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(root, kept, symlinks=True)
                (kept / "OUTCOME.txt").write_text(
                    f"{outcome.kind}: {outcome.detail}\n{case.how}\n", errors="backslashreplace"
                )
        shutil.rmtree(root, ignore_errors=True)
        if raise_on_failure and outcome.kind in FAILURES:
            raise AssertionError(f"{target.name}: {outcome.kind}: {outcome.detail}\ninput: {case.how!r}")

    one_input()
    report.seconds[target.name] = report.seconds.get(target.name, 0.0) + time.perf_counter() - tic


def hostile_corpus(marker: Path) -> list[tuple[str, str, bytes, Callable[[Path], object]]]:
    """(label, file name, bytes, reader) for every code-running payload in every reader of pickled data.

    All must be refused with DataError / CheckpointError and none may create ``marker``.
    """
    crafted = [(n, d) for n, d in crafted_pickles(marker) if not n.startswith("dtype flags")]  # those load
    built = [
        (f"{name}, protocol {p}", pickle.dumps(obj, protocol=p)) for name, obj in payloads(marker) for p in range(6)
    ]
    nested = [
        (f"{name} in a few-shot fold", pickle.dumps({"train": [(obj, 0, 8)], "test": []}))
        for name, obj in payloads(marker)
    ]
    corpus = []
    for label, data in [*crafted, *built, *nested]:
        corpus.append((f"pickle: {label}", "x.pkl", data, safe_pickle_load))
        corpus.append((f"as checkpoint: {label}", "x.pth", data, load_checkpoint))
    for name, obj in payloads(marker):
        legacy = _torch_bytes({"model": obj}, _use_new_zipfile_serialization=False)
        corpus += [
            (f"torch.save: {name}", "t.pth", _torch_bytes({"model": obj}), load_checkpoint),
            (f"legacy torch: {name}", "l.pth", legacy, load_checkpoint),
            (f"encoder: {name}", "e.pth", _torch_bytes({"state_dict": obj}), load_encoder),
            (f"object .npy: {name}", "o.npy", npy(np.array([obj, 1], dtype=object)), read_point_file),
            (f"object .npz: {name}", "o.npz", npz(points=np.array([obj], dtype=object)), read_point_file),
        ]
    return corpus


def run_hostile_corpus(workdir: Path, report: Report, timeout: float = 10.0) -> None:
    """Every entry of :func:`hostile_corpus` through :func:`run_case`, counted as reader "hostile corpus"."""
    marker = workdir / "CODE-EXECUTED-MARKER"
    counts = report.counts.setdefault("hostile corpus", Counter())
    report.sources.setdefault("hostile corpus", Counter())
    tic = time.perf_counter()
    for i, (label, name, data, reader) in enumerate(hostile_corpus(marker)):
        target = Target("hostile corpus", label, dict, (), lambda root, r=reader, n=name: r(root / n), None)
        case = Case({name: data}, name, label)
        root = workdir / f"hostile-{i}"
        start = time.perf_counter()
        outcome = run_case(target, case, root, marker, timeout)
        report.slowest["hostile corpus"] = max(report.slowest.get("hostile corpus", 0.0), time.perf_counter() - start)
        if outcome.kind == "loaded":  # a hostile input must never load
            outcome = Outcome("BAD-OUTPUT", "a hostile pickle loaded")
        counts[outcome.kind] += 1
        report.sources["hostile corpus"]["hostile"] += 1
        if outcome.kind in FAILURES:
            report.failures.append(("hostile corpus", case, outcome))
        shutil.rmtree(root, ignore_errors=True)
    report.seconds["hostile corpus"] = time.perf_counter() - tic


def quiet_libraries() -> None:
    logging.getLogger("trimesh").setLevel(logging.CRITICAL)
    logging.getLogger("h5py").setLevel(logging.CRITICAL)
