"""Fuzz every act3d reader with malformed inputs and count what happens.

    .venv/bin/python bench/fuzz.py --inputs 5000          # the full campaign (a table per reader)
    .venv/bin/python bench/fuzz.py --inputs 300 --only npz,checkpoint --seed 3

Each reader is a *target*: a small valid dataset (or checkpoint) written from scratch, the files of it
that may be damaged, and the call that reads it the way ``act3d`` does (``build_dataset`` then every
item, ``load_checkpoint``, ``load_encoder``). Inputs are generated with hypothesis, half by mutating
the valid files (byte flips, truncation, insertion, deletion, duplication, overwritten integers,
text tokens such as ``nan`` / ``1e39`` / non-UTF-8 bytes, dropped or added columns), half by
structured generation (arrays of any shape and dtype with NaN/Inf/huge values, ``.npy`` headers and
HDF5 datasets declaring 10^12 elements, pickles of odd structures, pickles that would run code,
meshes whose headers lie, non-UTF-8 file names, checkpoints with hostile configs...).

Every input must end in one of:

* ``loaded``: the reader returned, and every item is what docs/data.md promises (finite float32
  ``(npoints, 3)`` points, labels and part ids in range);
* ``DataError`` / ``CheckpointError``: the project's own error, whose message names the damaged
  file (its path under the input folder).

Anything else is a failure: another exception type (``WRONG-ERROR``), an error that does not name the
file (``UNNAMED``), items that break the promise (``BAD-OUTPUT``), more than ``--timeout`` seconds
(``TIMEOUT``, enforced by a watchdog thread that interrupts the main thread) or a marker file created
by a pickle's payload (``CODE-RAN``; checked after every input). Failing inputs are kept under
``--keep`` for reproduction. The test suite runs a slice of the same campaign
(tests/reliability/test_fuzz_readers.py). The code is in bench/fuzzing/, one module per concern.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from fuzzing.campaign import Report, fuzz_target, quiet_libraries, run_hostile_corpus
from fuzzing.targets import TARGETS, TARGETS_BY_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--inputs", type=int, default=5000, help="generated inputs, split evenly over readers (+ the hostile corpus)"
    )
    parser.add_argument(
        "--only", help="comma-separated readers (default: all, plus the hostile corpus): " + ",".join(TARGETS_BY_NAME)
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per input")
    parser.add_argument("--keep", default="fuzz-failures", help="folder for failing inputs (reproduce from there)")
    args = parser.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(1)
    targets = [TARGETS_BY_NAME[n] for n in args.only.split(",")] if args.only else TARGETS
    per_target = [args.inputs // len(targets) + (i < args.inputs % len(targets)) for i in range(len(targets))]
    report = Report()
    keep = Path(args.keep)
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="act3d-fuzz-") as tmp:
        for target, n in zip(targets, per_target, strict=True):
            fuzz_target(target, n, Path(tmp), report, seed=args.seed, timeout=args.timeout, keep=keep)
            print(report.progress(target.name), flush=True)
        if not args.only:
            run_hostile_corpus(Path(tmp), report, args.timeout)
            print(report.progress("hostile corpus"), flush=True)
    print()
    print(f"{report.total} inputs in {time.perf_counter() - tic:.0f} s (seed {args.seed}, timeout {args.timeout} s)")
    print(report.table())
    print("\nhow the inputs were made:\n")
    print(report.sources_table())
    if report.failures:
        print(f"\n{len(report.failures)} failing inputs (kept in {keep}/):")
        for name, case, outcome in report.failures[:40]:
            print(f"  {name}: {outcome.kind}: {outcome.detail[:160]!r}\n      input: {case.how[:160]!r}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
