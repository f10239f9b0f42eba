"""Training-step throughput: stage I, stage II and fine-tuning, at paper size and at the CPU presets.

    python bench/train.py                              # CPU: paper sizes at a reduced batch, and the CPU presets
    python bench/train.py --repeats 3 --baseline-src /tmp/old/src   # median of 3, and against older code
    python bench/train.py --quick                      # smoke run
    python bench/train.py --profile "stage II, paper"  # where one step's time goes (torch.profiler)

Prints one Markdown table: samples/s, seconds per step, peak memory, model FLOPs per step (counted
by torch.utils.flop_counter) and the fraction of the dense float32 matmul throughput that the same
process measured right before each timed step (the median over steps of each step's fraction, so that
the fraction does not swing with the load of a shared machine).
With ``--repeats N`` each figure is the median of N runs. With ``--baseline-src DIR`` every case also
runs with ``DIR`` (the ``src`` folder of another checkout, e.g. a ``git worktree`` of an older commit)
on the import path, interleaved with the current code, and the table adds the baseline's figures and
the speed-up: the baseline's step time ÷ the current one, each first multiplied by the matmul
throughput measured right before it (so a machine that slows down between the two runs does not
show as a speed-up or a slow-down). Each configuration runs in its own subprocess so that peak memory is its
own. On CUDA it runs in bf16 autocast, with and without torch.compile.

FLOPs are the model's as executed: code that removes wasted work (a one-hot product, per-edge
products) lowers the FLOP count as well as the time, so compare s/step, not only the fraction.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import torch

CASES = {
    # name: (task, config overrides, batch on CPU, batch on GPU)
    "stage I, paper (ViT-B/16 teacher, 64×32)": (
        "stage1",
        ["teacher.name=random:vit_base_patch16_384", "data.npoints=1024"],
        4,
        64,
    ),
    "stage I, CPU preset": ("stage1", ["@act_stage1_cpu"], 16, 16),
    "stage II, paper (12×384 student, 64×32)": ("stage2", ["data.npoints=1024"], 8, 128),
    "stage II, CPU preset": ("stage2", ["@pretrain_cpu"], 16, 16),
    "fine-tune, paper (1024 pts, 64×32)": ("finetune", ["data.npoints=1024"], 8, 32),
    "fine-tune, CPU preset": ("finetune", ["@classify_cpu"], 16, 16),
    "fine-tune, ScanObjectNN size (2048 pts, 128×32)": (
        "finetune",
        ["data.npoints=2048", "model.num_groups=128"],
        8,
        32,
    ),
}


# Stage II's target model: a paper-size autoencoder around a random ViT-S (see build_step).
STAGE2_TEACHER = ("teacher.name=random:vit_small_patch16_224",)


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Dense matmul throughput (GFLOP/s) of this device, the yardstick for model FLOP utilisation."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    tic = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - tic) / 1e9


def build_step(
    task: str,
    overrides: list[str],
    batch: int,
    device: torch.device,
    stage2_teacher: Sequence[str] = STAGE2_TEACHER,
):
    """(model, loss closure ``points (B, N, 3) → scalar``, optimizer, random clouds (batch, N, 3)) of ``task``.

    ``stage2_teacher``: config overrides of the stage-I autoencoder that makes stage II's targets
    (its frozen teacher, its sizes); its patches are the student's.
    """
    from act3d.engine.config import load_config
    from act3d.engine.optim import build_optimizer
    from act3d.models.autoencoder import build_autoencoder
    from act3d.models.cross_modal_teacher import CrossModalTeacher
    from act3d.objectives import codebook_kl, masked_feature_loss, patch_chamfer_l1
    from act3d.presets import resolve_preset
    from act3d.tasks.classify import ClassifyConfig
    from act3d.tasks.pretrain import PretrainConfig
    from act3d.tasks.pretrain_teacher import PretrainTeacherConfig

    preset = next((resolve_preset(o[1:]) for o in overrides if o.startswith("@")), None)
    overrides = [o for o in overrides if not o.startswith("@")]
    if task == "stage1":
        cfg = load_config(PretrainTeacherConfig, preset, overrides)
        model = build_autoencoder(cfg.teacher, cfg.model).to(device)

        def loss_fn(points):
            out = model(points, temperature=0.5)
            return (
                patch_chamfer_l1(out.coarse, out.patches)
                + patch_chamfer_l1(out.fine, out.patches)
                + codebook_kl(out.logits)
            )

    elif task == "stage2":
        cfg = load_config(PretrainConfig, preset, [*overrides, "objective=point_mae"])
        from act3d.models.masked import MaskedPointModel
        from act3d.models.point_transformer import PointEncoder
        from act3d.models.tokenizer import PatchGrouper

        m = cfg.model
        model = MaskedPointModel(PointEncoder(**m.model_dump()), 384, cfg.masking.ratio).to(device)
        grouper = PatchGrouper(m.num_groups, m.group_size)
        # The ACT target (a frozen stage-I forward) is timed as part of the step: a paper-size
        # autoencoder with a random ViT-S teacher stands in for the trained one (same cost).
        t_cfg = load_config(
            PretrainTeacherConfig,
            None,
            [
                *stage2_teacher,
                f"model.num_groups={m.num_groups}",
                f"model.group_size={m.group_size}",
            ],
        )
        teacher = CrossModalTeacher(build_autoencoder(t_cfg.teacher, t_cfg.model)).to(device)

        def loss_fn(points):
            patches, centers = grouper(points)
            mask = model.make_mask(centers)
            pred, _ = model(patches, centers, mask)
            target = teacher.targets(patches, centers)
            b = points.shape[0]
            return masked_feature_loss(pred, target[mask].reshape(b, -1, target.shape[-1]))

    else:
        cfg = load_config(ClassifyConfig, preset, overrides)
        from act3d.models.point_transformer import PointClassifier, PointEncoder

        model = PointClassifier(PointEncoder(**cfg.model.model_dump()), 40).to(device)
        labels = torch.randint(40, (batch,), device=device)

        def loss_fn(points):
            return torch.nn.functional.cross_entropy(model(points), labels)

    opt = build_optimizer(model.named_parameters(), cfg.optimizer)  # the trainer's optimizer
    points = torch.randn(batch, cfg.data.npoints, 3, device=device)
    return model, loss_fn, opt, points


def run_case(name: str, device_name: str, compile_: bool, steps: int) -> dict:
    """One case, with the matmul throughput of this process measured right before it."""
    task, overrides, cpu_batch, gpu_batch = CASES[name]
    device = torch.device(device_name)
    batch = gpu_batch if device.type == "cuda" else cpu_batch
    return measure_step(task, overrides, batch, device, compile_, steps, yardstick=True)


def measure_step(
    task: str,
    overrides: list[str],
    batch: int,
    device: torch.device,
    compile_: bool,
    steps: int,
    stage2_teacher: Sequence[str] = STAGE2_TEACHER,
    yardstick: bool = False,
) -> dict:
    """Time ``steps`` training steps of :func:`build_step`'s ``task`` (bf16 autocast on CUDA).

    One warm-up step (compilation included: ``first_step_seconds``) and one step counted by
    FlopCounterMode (run eagerly: the same model FLOPs, no recompilation under the counter) come first.
    Returns batch, seconds per step, FLOPs per step, peak memory (CUDA: allocated since the warm-up;
    CPU: the process's max RSS), the last loss and whether every attention layer uses fused SDPA.
    ``yardstick``: also measure the matmul throughput right before each timed step, and return its
    median (``matmul_gflops``), the median over steps of the step's fraction of it (``fraction``) and
    of the step's time in matmul-GFLOP (``matmul_equivalent``: seconds × yardstick), so that a slow
    spell of a shared machine slows a step and its yardstick alike.
    """
    model, loss_fn, opt, points = build_step(task, overrides, batch, device, stage2_teacher)
    amp = device.type == "cuda"
    step_fn = torch.compile(loss_fn) if compile_ else loss_fn

    def step(fn) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = fn(points)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    from torch.utils.flop_counter import FlopCounterMode

    tic = time.perf_counter()
    step(step_fn)
    _sync(device)
    first = time.perf_counter() - tic
    with FlopCounterMode(display=False) as counter:
        step(loss_fn)
    flops = counter.get_total_flops()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, peaks = [], []
    for _ in range(steps):
        if yardstick:
            peaks.append(matmul_gflops(device, torch.bfloat16 if amp else torch.float32, repeats=3))
        tic = time.perf_counter()
        loss = step(step_fn)
        _sync(device)
        times.append(time.perf_counter() - tic)
    seconds = statistics.median(times)
    peak = (
        torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    fused = [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
    result = {
        "batch": batch,
        "seconds": seconds,
        "flops": flops,
        "peak_bytes": peak,
        "first_step_seconds": first,
        "loss": float(loss),
        "fused_attn": bool(fused) and all(fused),
    }
    if yardstick:
        pairs = list(zip(times, peaks, strict=True))
        result["matmul_gflops"] = statistics.median(peaks)
        result["fraction"] = statistics.median(flops / 1e9 / t / p for t, p in pairs)
        result["matmul_equivalent"] = statistics.median(t * p for t, p in pairs)
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def profile_case(name: str, device: torch.device, rows: int = 15) -> str:
    """Where one training step of case ``name`` spends its time: torch.profiler's operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    task, overrides, cpu_batch, gpu_batch = CASES[name]
    batch = gpu_batch if device.type == "cuda" else cpu_batch
    _, loss_fn, opt, points = build_step(task, overrides, batch, device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(points)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return f"{name}, batch {batch}\n" + prof.key_averages().table(sort_by=key, row_limit=rows)


def child(name: str, args: argparse.Namespace, compile_: bool, src: str | None) -> dict | str:
    """Run one case in a fresh process (``src`` first on its import path): its result, or the error line."""
    cmd = [sys.executable, __file__, "--case", name, "--device", args.device, "--steps", str(args.steps)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd + (["--compile"] if compile_ else []), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1][:80]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_row(runs: list[dict]) -> dict:
    """The median of each figure over repeated runs (each run's fraction of matmul is a median over its steps)."""
    keys = ("seconds", "flops", "peak_bytes", "matmul_gflops", "fraction", "matmul_equivalent")
    row = {k: statistics.median(r[k] for r in runs) for k in keys}
    return {**row, "batch": runs[0]["batch"], "n": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="runs per case; figures are medians")
    parser.add_argument("--baseline-src", help="the src folder of another checkout to compare against")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--quick", action="store_true", help="CPU presets only, 1 timed step")
    parser.add_argument("--profile", metavar="CASE", help="profile one step of the case named CASE (a substring)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one measurement, JSON on stdout
        print(json.dumps(run_case(args.case, args.device, args.compile, args.steps)))
        return
    if args.profile:
        print(profile_case(next(n for n in CASES if args.profile in n), torch.device(args.device)))
        return
    if args.quick:
        args.steps = 1
    device = torch.device(args.device)
    names = [n for n in CASES if "CPU preset" in n] if args.quick else list(CASES)
    names = [n for n in names if args.only is None or args.only in n]
    variants = [False, True] if device.type == "cuda" else [False]
    print(
        f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
        f"threads: {torch.get_num_threads()}, medians of {args.repeats} run(s), matmul measured before each step\n"
    )
    base = " | baseline s/step | baseline % of matmul | speed-up" if args.baseline_src else ""
    head = "| case | compile | batch | s/step | samples/s | peak memory | GFLOP/step | matmul GFLOP/s | % of matmul"
    print(f"{head}{base} |")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if base else ""))
    for name in names:
        for compile_ in variants:
            runs, baseline = [], []
            for _ in range(args.repeats):  # interleaved, so that both see the same machine load
                runs.append(child(name, args, compile_, None))
                if args.baseline_src:
                    baseline.append(child(name, args, compile_, args.baseline_src))
            failed = next((r for r in runs + baseline if isinstance(r, str)), None)
            if failed:
                print(f"| {name} | {compile_} | {failed} |||||||")
                continue
            r = median_row(runs)
            cells = [
                name,
                str(compile_),
                str(r["batch"]),
                f"{r['seconds']:.3f}",
                f"{r['batch'] / r['seconds']:.1f}",
                f"{r['peak_bytes'] / 2**30:.2f} GiB",
                f"{r['flops'] / 1e9:.1f}",
                f"{r['matmul_gflops']:.0f}",
                f"{100 * r['fraction']:.0f} %",
            ]
            if baseline:
                b = median_row(baseline)
                speedup = b["matmul_equivalent"] / r["matmul_equivalent"]
                cells += [f"{b['seconds']:.3f}", f"{100 * b['fraction']:.0f} %", f"{speedup:.2f}x"]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
