"""Benchmark of act3d.ops against naive PyTorch code and the best CPU libraries.

    .venv/bin/python bench/ops.py            # paper sizes: B=32, N=1024/2048/8192, G=64/128/512, K=32
    .venv/bin/python bench/ops.py --quick    # smoke run: B=4, small sizes, 2 repeats

Each measurement runs in a fresh subprocess: the peak resident set size is reset (``clear_refs``),
the op is called once cold, and the reported memory is the peak (``VmHWM``) minus the RSS just
before the call, i.e. everything the call had allocated at once (torch's CPU allocations included,
which tracemalloc cannot see), inputs excluded (Linux only). Then it is timed: one warm-up call and
the median (and min) of ``--repeats`` calls. All implementations get the same number of threads
(torch, pykdtree's OpenMP, cKDTree workers), 1 by default: fpsample is single-threaded, and on a
small shared machine a second OpenMP thread stalls whenever another process holds the other core.
The per-cloud libraries run cloud by cloud in a Python loop, as they would in a data pipeline.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

GiB = 2**30
NAIVE_LIMIT_BYTES = 4 * GiB  # naive versions that would allocate more than this are skipped


# ----------------------------------------------------------------------------------------------
# the implementations under test: each builder returns a zero-argument callable running the op
# ----------------------------------------------------------------------------------------------
def ours_fps(x: torch.Tensor, g: int, method: str) -> Callable[[], object]:
    from act3d.ops import farthest_point_sample

    return lambda: farthest_point_sample(x, g, method=method)


def naive_fps_per_cloud(x: torch.Tensor, g: int) -> Callable[[], object]:
    """The research-code fallback: pointMLP's farthest_point_sample run cloud by cloud."""

    def run() -> torch.Tensor:
        out = []
        for cloud in x:
            distance = torch.ones(cloud.shape[0]) * 1e10
            farthest = torch.tensor(0)
            picked = torch.zeros(g, dtype=torch.long)
            for i in range(g):
                picked[i] = farthest
                dist = torch.sum((cloud - cloud[farthest]) ** 2, -1)
                distance = torch.min(distance, dist)
                farthest = torch.max(distance, -1)[1]
            out.append(picked)
        return torch.stack(out)

    return run


def naive_fps_batched(x: torch.Tensor, g: int) -> Callable[[], object]:
    """pointMLP's farthest_point_sample as written (batched, loop over picks), first start fixed."""

    def run() -> torch.Tensor:
        B, N, _ = x.shape
        centroids = torch.zeros(B, g, dtype=torch.long)
        distance = torch.ones(B, N) * 1e10
        farthest = torch.zeros(B, dtype=torch.long)
        batch_indices = torch.arange(B)
        for i in range(g):
            centroids[:, i] = farthest
            centroid = x[batch_indices, farthest, :].view(B, 1, 3)
            distance = torch.min(distance, torch.sum((x - centroid) ** 2, -1))
            farthest = torch.max(distance, -1)[1]
        return centroids

    return run


def fpsample_fps(x: torch.Tensor, g: int, h: int) -> Callable[[], object]:
    import fpsample

    clouds = [c.numpy() for c in x]
    if h == 0:
        return lambda: [fpsample.fps_sampling(c, g, start_idx=0) for c in clouds]
    return lambda: [fpsample.bucket_fps_kdline_sampling(c, g, h, start_idx=0) for c in clouds]


def ours_knn(x: torch.Tensor, c: torch.Tensor, k: int, method: str) -> Callable[[], object]:
    from act3d.ops import knn

    return lambda: knn(c, x, k, method=method)


def naive_knn(x: torch.Tensor, c: torch.Tensor, k: int) -> Callable[[], object]:
    return lambda: torch.cdist(c, x).topk(k, largest=False)


def kdtree_knn(x: torch.Tensor, c: torch.Tensor, k: int, lib: str, threads: int) -> Callable[[], object]:
    build, query = _kdtree(lib, threads)
    clouds, centres = [a.numpy() for a in x], [a.numpy() for a in c]
    return lambda: [query(build(p), q, k) for p, q in zip(clouds, centres, strict=True)]


def ours_chamfer(a: torch.Tensor, b: torch.Tensor, backward: bool, method: str) -> Callable[[], object]:
    from act3d.ops import chamfer_distance

    return _with_backward(lambda: chamfer_distance(a, b, norm=1, method=method), (a, b), backward)


def naive_chamfer(a: torch.Tensor, b: torch.Tensor, backward: bool) -> Callable[[], object]:
    def loss() -> torch.Tensor:
        dist = torch.cdist(a, b)
        return (dist.amin(2).mean() + dist.amin(1).mean()) / 2

    return _with_backward(loss, (a, b), backward)


def kdtree_chamfer(a: torch.Tensor, b: torch.Tensor, lib: str, threads: int) -> Callable[[], object]:
    build, query = _kdtree(lib, threads)
    pairs = [(x.detach().numpy(), y.detach().numpy()) for x, y in zip(a, b, strict=True)]

    def run() -> float:
        total = 0.0
        for x, y in pairs:
            total += query(build(y), x, 1)[0].mean() + query(build(x), y, 1)[0].mean()
        return total / (2 * len(pairs))

    return run


def _with_backward(
    loss: Callable[[], torch.Tensor], inputs: tuple[torch.Tensor, ...], backward: bool
) -> Callable[[], object]:
    if not backward:
        return lambda: loss().detach()
    return lambda: torch.autograd.grad(loss(), inputs)


def _kdtree(lib: str, threads: int) -> tuple[Callable, Callable]:
    if lib == "cKDTree":
        from scipy.spatial import cKDTree

        return cKDTree, lambda tree, q, k: tree.query(q, k, workers=threads)
    from pykdtree.kdtree import KDTree

    return KDTree, lambda tree, q, k: tree.query(q, k)


# ----------------------------------------------------------------------------------------------
# one measurement, in a subprocess
# ----------------------------------------------------------------------------------------------
OURS = {"ours": "auto", "ours, dense": "dense", "ours, buckets": "buckets"}
"""Our rows: what ``method="auto"`` picks (what users get), and each implementation forced."""


def build_case(case: dict) -> Callable[[], object]:
    """Inputs (seeded) and the callable for one case description."""
    gen = torch.Generator().manual_seed(0)
    B, N, impl, threads = case["B"], case["N"], case["impl"], case["threads"]
    if case["op"] == "fps":
        x, g = torch.rand(B, N, 3, generator=gen), case["G"]
        if impl.startswith("fpsample"):
            return fpsample_fps(x, g, case["h"])
        if impl in OURS:
            return ours_fps(x, g, OURS[impl])
        return (naive_fps_per_cloud if impl == "naive (per-cloud loop)" else naive_fps_batched)(x, g)
    if case["op"] == "knn":
        from act3d.ops import farthest_point_sample, gather_points

        x = torch.rand(B, N, 3, generator=gen)
        c = gather_points(x, farthest_point_sample(x, case["G"]))
        k = case["K"]
        if impl in ("cKDTree", "pykdtree"):
            return kdtree_knn(x, c, k, impl, threads)
        return ours_knn(x, c, k, OURS[impl]) if impl in OURS else naive_knn(x, c, k)
    backward = case["op"] == "chamfer fwd+bwd"
    a = torch.rand(B, N, 3, generator=gen, requires_grad=backward)
    b = torch.rand(B, N, 3, generator=gen, requires_grad=backward)
    if impl in ("cKDTree", "pykdtree"):
        return kdtree_chamfer(a, b, impl, threads)
    return ours_chamfer(a, b, backward, OURS[impl]) if impl in OURS else naive_chamfer(a, b, backward)


def memory_kib(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident since the last reset) from /proc, in KiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_memory(case: dict) -> int:
    """Bytes the first (cold) call of ``case`` had allocated at its peak, above the RSS before it."""
    fn = build_case(case)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    before = memory_kib("VmRSS")
    fn()
    return 1024 * (memory_kib("VmHWM") - before)


def timings(cases: list[dict]) -> list[tuple[float, float]]:
    """(median, min) seconds per case; the cases' calls are interleaved round by round, so a change of
    load on the machine hits every implementation alike and the ratios stay meaningful. Each round
    starts one case later, so no implementation always runs first, after another one's working set
    (measured: FPS at 1024 points was ~10 % slower in the first slot than the same code in the second)."""
    fns = [build_case(case) for case in cases]
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(cases[0]["repeats"]):
        for i in range(len(fns)):
            j = (i + round_) % len(fns)
            start = time.perf_counter()
            fns[j]()
            times[j].append(time.perf_counter() - start)
    return [(statistics.median(ts), min(ts)) for ts in times]


def in_subprocess(task: str, payload: dict | list, threads: int) -> object:
    """Runs ``peak_memory`` or ``timings`` in a fresh interpreter with ``threads`` threads everywhere."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--task", task, "--payload", json.dumps(payload)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} {payload} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# the plan and the report
# ----------------------------------------------------------------------------------------------
def naive_bytes(case: dict) -> int:
    """What the dense kNN / Chamfer allocates at least: its B x M x N matrix, times 3 with backward."""
    B, N = case["B"], case["N"]
    if case["op"] == "fps":
        return 0
    if case["op"] == "knn":
        return 4 * B * case["G"] * N
    return 4 * B * N * N * (3 if case["op"] == "chamfer fwd+bwd" else 1)


def plan(quick: bool, threads: int, repeats: int) -> list[dict]:
    B = 4 if quick else 32
    sizes = [(1024, 64), (2048, 128)] if quick else [(1024, 64), (2048, 128), (8192, 512)]
    chamfer_sizes = [1024] if quick else [1024, 2048, 8192]
    base = {"B": B, "threads": threads, "repeats": repeats}
    cases = []
    for n, g in sizes:
        heights = (3,) if quick else (3, 5, 7)
        fps = [
            *OURS,
            "naive (per-cloud loop)",
            "pointMLP (batched loop)",
            "fpsample.fps_sampling",
            *[f"fpsample kdline h={h}" for h in heights],
        ]
        cases += [{**base, "op": "fps", "N": n, "G": g, "impl": i, "h": int(i[-1]) if "h=" in i else 0} for i in fps]
        knn = [*OURS, "naive (cdist + topk)", "cKDTree", "pykdtree"]
        cases += [{**base, "op": "knn", "N": n, "G": g, "K": 32, "impl": i} for i in knn]
    for n in chamfer_sizes:
        for op in ("chamfer fwd", "chamfer fwd+bwd"):
            impls = [*OURS, "naive (full cdist)"] + (["cKDTree", "pykdtree"] if op == "chamfer fwd" else [])
            cases += [{**base, "op": op, "N": n, "impl": i} for i in impls]
    return cases


def size_label(case: dict) -> str:
    if case["op"] == "fps":
        return f"B={case['B']} N={case['N']} → {case['G']}"
    if case["op"] == "knn":
        return f"B={case['B']} G={case['G']} K={case['K']} of N={case['N']}"
    return f"B={case['B']} {case['N']} vs {case['N']}"


LIBRARIES = ("fpsample", "cKDTree", "pykdtree")


def report_targets(results: dict[tuple, dict[str, float]]) -> None:
    """Ours against the fastest library and the naive per-cloud / dense version, per op and size."""
    print("\n| op | size | ours | best library | ours ÷ library | naive | ours ÷ naive |")
    print("|---|---|---|---|---|---|---|")
    for (op, size), times in results.items():
        libs = {impl: t for impl, t in times.items() if impl.startswith(LIBRARIES)}
        naive = next((t for impl, t in times.items() if impl.startswith("naive")), None)
        best = min(libs, key=libs.get) if libs else None
        lib_cells = f"{best} {libs[best]:.1f} ms | {times['ours'] / libs[best]:.2f}" if best else "— | —"
        naive_cells = f"{naive:.1f} ms | {times['ours'] / naive:.3f}" if naive else "skipped | —"
        print(f"| {op} | {size} | {times['ours']:.1f} ms | {lib_cells} | {naive_cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: B=4, small sizes, 2 repeats")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and every library (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5, quick 2)")
    parser.add_argument("--task", choices=["peak_memory", "timings"], help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        print(json.dumps({"peak_memory": peak_memory, "timings": timings}[args.task](json.loads(args.payload))))
        return
    repeats = args.repeats or (2 if args.quick else 5)
    print(
        f"act3d.ops benchmark, {datetime.date.today()}, {os.cpu_count()} CPUs, {args.threads} threads, "
        f"torch {torch.__version__}, load average at start {os.getloadavg()[0]:.2f}\n"
    )
    print("| op | size | implementation | time: median (min) | peak extra memory | ours ÷ this (medians) |")
    print("|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for case in plan(args.quick, args.threads, repeats):
        groups.setdefault((case["op"], size_label(case)), []).append(case)
    results: dict[tuple, dict[str, float]] = {}
    for (op, size), cases in groups.items():
        too_big = [
            c for c in cases if c["impl"].startswith("naive") and op != "fps" and naive_bytes(c) > NAIVE_LIMIT_BYTES
        ]
        runnable = [c for c in cases if c not in too_big]
        times = in_subprocess("timings", runnable, args.threads)
        results[op, size] = {c["impl"]: 1e3 * t[0] for c, t in zip(runnable, times, strict=True)}
        ours = results[op, size]["ours"]
        for case, (median, best) in zip(runnable, times, strict=True):
            memory = in_subprocess("peak_memory", case, args.threads) / 2**20
            ratio = "" if case["impl"] == "ours" else f"{ours / (1e3 * median):.2f}"
            timing = f"{1e3 * median:.1f} ms ({1e3 * best:.1f})"
            print(f"| {op} | {size} | {case['impl']} | {timing} | {memory:.0f} MiB | {ratio} |", flush=True)
        for case in too_big:
            print(
                f"| {op} | {size} | {case['impl']} | skipped (would allocate {naive_bytes(case) / GiB:.1f} GiB) | | |"
            )
    report_targets(results)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
