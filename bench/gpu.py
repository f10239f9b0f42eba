"""One-command GPU check: correctness on CUDA, short real training runs, training throughput.

    python3 bench/gpu.py --out DIR          # on the GPU machine (docs/gpu.md): at most ~8 minutes
    python3 bench/gpu.py --toy --out DIR    # the same code path on the CPU at toy size (CI: well under 60 s)

(a) every op (FPS, kNN, ball query, grouping, Chamfer + gradients) on the device vs the CPU on the
    same inputs; every model (stage-I autoencoder, stage-II model with both objectives, classifier,
    part segmenter) on the device in fp32 vs the CPU, and forward + backward in bf16 autocast; the
    official-layout checkpoint loader. (The tests have no CUDA parametrisation: the checks live here.)
(b) stage I (20 steps), stage II with the ACT objective (20 steps, on the stage-I checkpoint just
    written) and a 20-step fine-tune of its encoder, on the built-in synthetic shapes, through
    ``act3d.cli.main``: wall time, last training loss, test metric.
(c) samples/s, peak memory and share of the measured bf16 matmul throughput of a training step at
    the paper's sizes and batches, eager and with ``torch.compile`` (bench/train.py's steps), and the
    time of one ShapeNet-55 stage-II epoch at the measured rate.

Each check catches its own errors; DIR/gpu.json and DIR/gpu.md are rewritten after every row, so a
crash or a timeout keeps what was measured. Missing pydantic / trimesh are installed from ``wheels/``
(scripts/gpu_wheels.sh) without a registry; the package is imported from this checkout's ``src/``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import io
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NEEDED = ("pydantic", "trimesh")  # what the GPU machine's image lacks
SHAPENET55_CLOUDS = 52_470  # stage-II training clouds per epoch (train + test)
FP32_TOL, BF16_TOL = 1e-3, 1e-1  # relative L2 error of a model's output vs the CPU's fp32 output

# --toy sizes: 64 points in 4 patches of 16, a 1-2 block 48-wide student, a 2-block random ViT-Ti teacher.
TOY_POINTS, TOY_GROUPS, TOY_GROUP_SIZE = 64, 4, 16
TOY_PATCHES = [f"data.npoints={TOY_POINTS}", f"model.num_groups={TOY_GROUPS}", f"model.group_size={TOY_GROUP_SIZE}"]
TOY_STUDENT = ["model.dim=48", "model.depth=1", "model.num_heads=6"]
TOY_TEACHER = "vit_tiny_patch16_224"
TOY_AUTOENCODER = ["teacher.num_blocks=2", "teacher.prompts=2", "model.codebook_size=64", "model.encoder_dim=32"]
# Stage II's targets come from the stage-I autoencoder, whose teacher is the paper's ViT-B/16 (a random one).
STAGE2_TEACHER = ("teacher.name=random:vit_base_patch16_384",)
TOY_STAGE2_TEACHER = (f"teacher.name=random:{TOY_TEACHER}", *TOY_AUTOENCODER)


def ensure_packages(wheels: Path, site: Path) -> str:
    """Install the :data:`NEEDED` packages that are missing from the wheels in ``wheels`` into ``site``.

    No registry is used (``--no-index --no-deps``); ``site`` goes first on ``sys.path`` and on
    ``PYTHONPATH``. Runs before torch is imported, so that a newer typing-extensions wins. Returns a note.
    """
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return "present"
    files = sorted(str(p) for p in wheels.glob("*.whl"))
    if not files:
        return f"missing {', '.join(missing)} and no wheels in {wheels} (run scripts/gpu_wheels.sh)"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--upgrade"]
    how = "pip"
    if subprocess.run([*pip, "--target", str(site), *files]).returncode != 0:
        how = "unzipped (pip failed)"  # a wheel is a zip of what goes on sys.path
        for file in files:
            zipfile.ZipFile(file).extractall(site)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    importlib.invalidate_caches()
    return f"installed {', '.join(missing)} from {wheels.name}/ into {site} ({how})"


def load_bench_train() -> ModuleType:
    """bench/train.py as a module (bench/ is not a package): ``build_step``, ``measure_step``, ``CASES``."""
    spec = importlib.util.spec_from_file_location("act3d_bench_train", Path(__file__).with_name("train.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------ report

SECTIONS = {
    "a": "(a) CUDA vs CPU: ops, models (fp32, bf16 fwd+bwd), official-layout loader",
    "b": "(b) 20-step runs through the CLI on synthetic shapes",
    "c": "(c) training throughput at the paper's sizes",
}


def make_row(section: str, name: str, ok: bool, value: str = "", detail: str = "", **data: Any) -> dict:
    """One table row: ``value`` is the headline figure, ``data`` the numbers behind it (JSON)."""
    return {"section": section, "name": name, "ok": bool(ok), "value": value, "detail": detail, "data": data}


class Report:
    """Rows by section, written to ``out/gpu.json`` and ``out/gpu.md`` after every change."""

    def __init__(self, out: Path, meta: dict[str, Any]) -> None:
        self.out = out
        self.meta = meta
        self.sections = {key: {"title": title, "status": "not run", "rows": []} for key, title in SECTIONS.items()}
        self.start = time.perf_counter()

    def add(self, row: dict) -> None:
        self.sections[row["section"]]["rows"].append(row)
        mark = "ok " if row["ok"] else "FAIL"
        print(f"[{row['section']}] {mark} {row['name']}: {row['value']}  {row['detail']}", flush=True)
        self.save()

    def set_status(self, section: str, status: str) -> None:
        self.sections[section]["status"] = status
        self.save()

    def save(self) -> None:
        self.meta["seconds"] = round(time.perf_counter() - self.start, 1)
        rows = [r for s in self.sections.values() for r in s["rows"]]
        broken = any(s["status"].startswith(("error", "interrupted")) for s in self.sections.values())
        all_ok = bool(rows) and all(r["ok"] for r in rows) and not broken
        payload = {"meta": self.meta, "all_ok": all_ok, "sections": self.sections}
        self.out.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.out / "gpu.json", json.dumps(payload, indent=2, default=str))
        _write_atomic(self.out / "gpu.md", self.markdown())

    def markdown(self) -> str:
        m = self.meta
        lines = [
            f"act3d GPU check: {m.get('device_name')}, torch {m.get('torch')}, {'toy' if m.get('toy') else 'full'} "
            f"run, {m.get('seconds')} s",
            "",
            "| section | check | ok | result | details | s |",
            "|---|---|---|---|---|---|",
        ]
        for key, section in self.sections.items():
            if section["status"] not in ("done", "running"):
                lines.append(f"| {key} | *section* | ✗ | {section['status']} | | |")
            for r in section["rows"]:
                cells = [key, r["name"], "✓" if r["ok"] else "✗", r["value"], r["detail"], f"{r.get('seconds', 0):.1f}"]
                lines.append("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def guarded(section: str, name: str, check: Callable[[], dict]) -> dict:
    """``check()``'s row, timed; an exception becomes a failed row that names it."""
    tic = time.perf_counter()
    try:
        row = check()
    except Exception as err:  # one failure must not lose the other checks
        message = f"{type(err).__name__}: {err}".replace("\n", " ")
        row = make_row(section, name, False, "error", message[:300], traceback=traceback.format_exc()[-3000:])
    row["seconds"] = round(time.perf_counter() - tic, 2)
    return row


@dataclass
class Setup:
    """What every section needs: the device, toy size or not, folders and the time budget."""

    device: Any  # torch.device
    toy: bool
    work: Path
    deadline: float  # time.perf_counter() value after which optional work (torch.compile) is skipped
    steps: int  # timed steps per throughput case


# ---------------------------------------------------------------------------------- (a) ops checks


@dataclass
class OpInputs:
    """Padded clouds: points (B, N, 3) with lengths (B,), queries (B, M, 3), other (B, N2, 3)."""

    points: Any
    lengths: Any
    queries: Any
    other: Any
    other_lengths: Any
    samples: int  # FPS picks M
    k: int
    radius: float


def op_inputs(toy: bool) -> OpInputs:
    import torch

    b, n, n2, m, k = (2, 256, 192, 32, 8) if toy else (4, 4096, 2048, 512, 32)
    g = torch.Generator().manual_seed(0)
    points, other = torch.rand(b, n, 3, generator=g), torch.rand(b, n2, 3, generator=g)
    lengths = torch.tensor([n - (i * n) // 8 for i in range(b)])
    other_lengths = torch.tensor([n2 - (i * n2) // 6 for i in range(b)])
    queries = torch.rand(b, m, 3, generator=g)
    return OpInputs(points, lengths, queries, other, other_lengths, m, k, 0.2 if toy else 0.1)


def _gathered(points: Any, idx: Any) -> Any:
    """points (B, N, 3), idx (B, M, K) → (B, M, K, 3)."""
    b, m, k = idx.shape
    return points.gather(1, idx.reshape(b, m * k, 1).expand(-1, -1, 3)).reshape(b, m, k, 3)


def _sq_dist(query: Any, points: Any, idx: Any) -> Any:
    """float64 squared distances (B, M, K) from query (B, M, 3) to points[idx], idx (B, M, K)."""
    return ((_gathered(points.double(), idx) - query.double()[:, :, None]) ** 2).sum(-1)


def fps_gap(points: Any, lengths: Any, idx: Any) -> float:
    """How far ``idx`` (B, M) is from farthest point sampling, in float64: the largest, over steps, of
    (farthest remaining squared distance − that of the point picked); 0 for exact FPS, ties allowed."""
    import torch

    p = points.double()
    valid = torch.arange(p.shape[1])[None] < lengths[:, None]
    if not (idx < lengths[:, None]).all():
        return math.inf
    chosen = _gathered(p, idx[:, :, None])[:, :, 0]
    min_d = ((p - chosen[:, :1]) ** 2).sum(-1).masked_fill(~valid, -1.0)
    worst = 0.0
    for j in range(1, idx.shape[1]):
        picked = min_d.gather(1, idx[:, j : j + 1])[:, 0]
        worst = max(worst, (min_d.amax(1) - picked).max().item())
        min_d = torch.minimum(min_d, ((p - chosen[:, j : j + 1]) ** 2).sum(-1))
    return worst


def _row(name: str, err: float, tol: float, detail: str, ok: bool = True) -> dict:
    ok = ok and math.isfinite(err) and err <= tol
    return make_row("a", name, ok, f"{err:.1e}", f"{detail}; tol {tol:.0e}", max_abs_err=err, tol=tol)


def check_fps(x: OpInputs, method: str, device: Any) -> dict:
    from act3d.ops import farthest_point_sample

    ref = farthest_point_sample(x.points, x.samples, x.lengths, method=method)
    got = farthest_point_sample(x.points.to(device), x.samples, x.lengths.to(device), method=method).cpu()
    same = (ref == got).float().mean().item()
    gap = fps_gap(x.points, x.lengths, got)
    return _row(f"op: farthest_point_sample ({method})", gap, 1e-5, f"FPS gap; indices equal to CPU: {same:.2%}")


def check_knn(x: OpInputs, method: str, device: Any) -> dict:
    from act3d.ops import knn

    d_ref, i_ref = knn(x.queries, x.points, x.k, point_lengths=x.lengths, method=method)
    d_got, i_got = knn(
        x.queries.to(device), x.points.to(device), x.k, point_lengths=x.lengths.to(device), method=method
    )
    d_got, i_got = d_got.cpu(), i_got.cpu()
    valid = bool((i_got < x.lengths[:, None, None]).all())
    # Near-ties may swap indices: the device's neighbours must be as near as the CPU's.
    gap = (_sq_dist(x.queries, x.points, i_got) - _sq_dist(x.queries, x.points, i_ref)).abs().max().item()
    err = max((d_got - d_ref).abs().max().item(), gap)
    same = (i_ref == i_got).float().mean().item()
    return _row(f"op: knn ({method})", err, 1e-5, f"distances + neighbour gap; indices equal: {same:.2%}", valid)


def check_group(x: OpInputs, device: Any) -> dict:
    from act3d.ops import group

    _, i_ref = group(x.points, x.queries, x.k, point_lengths=x.lengths)
    patches, idx = group(x.points.to(device), x.queries.to(device), x.k, point_lengths=x.lengths.to(device))
    patches, idx = patches.cpu(), idx.cpu()
    own = (patches - (_gathered(x.points, idx) - x.queries[:, :, None])).abs().max().item()
    gap = (_sq_dist(x.queries, x.points, idx) - _sq_dist(x.queries, x.points, i_ref)).abs().max().item()
    return _row("op: group", max(own, gap), 1e-5, "patches vs their indices + neighbour gap")


def check_ball_query(x: OpInputs, device: Any) -> dict:
    from act3d.ops import ball_query

    ref = ball_query(x.queries, x.points, x.radius, x.k, point_lengths=x.lengths)
    got = ball_query(x.queries.to(device), x.points.to(device), x.radius, x.k, point_lengths=x.lengths.to(device))
    differ = (ref != got.cpu()).float().mean().item()  # a point within rounding of the sphere may flip
    return _row("op: ball_query", differ, 1e-3, "fraction of indices that differ from the CPU's")


def check_chamfer(x: OpInputs, method: str, device: Any) -> dict:
    """Chamfer L1 and L2 values, and gradients w.r.t. both clouds (a few entries may differ at ties)."""
    from act3d.ops import chamfer_distance

    def run(dev: Any, norm: int) -> tuple[Any, Any, Any]:
        a, b = (t.detach().clone().to(dev).requires_grad_() for t in (x.points, x.other))
        la, lb = x.lengths.to(dev), x.other_lengths.to(dev)
        loss = chamfer_distance(a, b, norm=norm, a_lengths=la, b_lengths=lb, method=method)
        loss.backward()
        return loss.detach().cpu(), a.grad.cpu(), b.grad.cpu()

    err, differ = 0.0, 0.0
    for norm in (1, 2):
        ref, got = run("cpu", norm), run(device, norm)
        err = max(err, abs(got[0].item() - ref[0].item()) / max(abs(ref[0].item()), 1e-12))
        for g_got, g_ref in zip(got[1:], ref[1:], strict=True):
            scale = g_ref.abs().max().item()
            differ = max(differ, ((g_got - g_ref).abs() > 1e-6 + 1e-3 * scale).float().mean().item())
    ok = differ <= 1e-3
    return _row(f"op: chamfer_distance L1/L2 + grads ({method})", err, 1e-5, f"relative; grads differ {differ:.2%}", ok)


def op_checks(s: Setup) -> list[tuple[str, Callable[[], dict]]]:
    x = op_inputs(s.toy)
    checks = []
    for method in ("dense", "buckets"):
        checks += [
            (f"op: farthest_point_sample ({method})", partial(check_fps, x, method, s.device)),
            (f"op: knn ({method})", partial(check_knn, x, method, s.device)),
            (f"op: chamfer_distance ({method})", partial(check_chamfer, x, method, s.device)),
        ]
    return [
        *checks,
        ("op: group", partial(check_group, x, s.device)),
        ("op: ball_query", partial(check_ball_query, x, s.device)),
    ]


# ------------------------------------------------------------------------------- (a) model checks


@dataclass
class Sizes:
    """Model sizes: the paper's on the GPU, tiny ones for ``--toy``."""

    npoints: int
    groups: int
    group_size: int
    encoder: dict[str, int]  # dim, depth, num_heads
    stage1: list[str]  # PretrainTeacherConfig overrides: teacher and autoencoder sizes
    layers: tuple[int, ...]  # part-segmentation blocks
    batch: int = 2


def sizes(toy: bool) -> Sizes:
    if toy:
        stage1 = [f"teacher.name=random:{TOY_TEACHER}", *TOY_AUTOENCODER, "model.token_dim=48"]
        return Sizes(TOY_POINTS, TOY_GROUPS, TOY_GROUP_SIZE, {"dim": 48, "depth": 2, "num_heads": 6}, stage1, (1, 2))
    return Sizes(
        1024,
        64,
        32,
        {"dim": 384, "depth": 12, "num_heads": 6},
        ["teacher.name=random:vit_base_patch16_384"],
        (4, 8, 12),
    )


def _encoder(z: Sizes) -> Any:
    from act3d.models.point_transformer import EncoderConfig, PointEncoder

    return PointEncoder(**EncoderConfig(**z.encoder, num_groups=z.groups, group_size=z.group_size).model_dump())


def _seeded(*shape: int, seed: int = 1) -> Any:
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _clouds(z: Sizes) -> Any:
    """(B, N, 3) random clouds in the unit ball."""
    x = _seeded(z.batch, z.npoints, 3)
    return x / x.norm(dim=-1, keepdim=True).amax(1, keepdim=True)


@dataclass
class ModelCase:
    """``run(model, inputs) → (output compared with the CPU's, patch centres (B, G, 3), scalar loss)``."""

    name: str
    build: Callable[[], Any]
    inputs: Callable[[Any], tuple]  # model → CPU tensors
    run: Callable[[Any, tuple], tuple[Any, Any, Any]]


def model_cases(z: Sizes) -> list[ModelCase]:
    import torch.nn.functional as F

    from act3d.engine.config import load_config
    from act3d.models.autoencoder import build_autoencoder
    from act3d.models.masked import MaskedPointModel
    from act3d.models.part_segmentation import PartSegmenter
    from act3d.models.point_transformer import PointClassifier
    from act3d.objectives import codebook_kl, masked_feature_loss, masked_patch_loss, patch_chamfer_l1
    from act3d.tasks.pretrain_teacher import PretrainTeacherConfig

    def stage1() -> Any:
        patches = [f"model.num_groups={z.groups}", f"model.group_size={z.group_size}"]
        cfg = load_config(PretrainTeacherConfig, None, [*z.stage1, *patches])
        return build_autoencoder(cfg.teacher, cfg.model)

    def run_stage1(model: Any, inputs: tuple) -> tuple:
        out = model(inputs[0], temperature=1.0)  # logits come before the Gumbel draw: comparable
        loss = patch_chamfer_l1(out.coarse, out.patches) + patch_chamfer_l1(out.fine, out.patches)
        return out.logits, out.centers, loss + codebook_kl(out.logits)

    def stage2_inputs(model: Any) -> tuple:
        import torch

        patches, centers = model.encoder.grouper(_clouds(z))
        torch.manual_seed(0)
        return patches, centers, model.make_mask(centers)

    def run_stage2(objective: str, model: Any, inputs: tuple) -> tuple:
        patches, centers, mask = inputs
        pred, _ = model(patches, centers, mask)
        if objective == "act":
            loss = masked_feature_loss(pred.float(), _seeded(*pred.shape).to(pred.device))
        else:
            target = _seeded(*pred.shape[:2], z.group_size, 3).to(pred.device)
            loss = masked_patch_loss(pred.float(), target)
        return pred, centers, loss

    def run_classifier(model: Any, inputs: tuple) -> tuple:
        points, labels = inputs
        logits = model(points)
        return logits, model.encoder.grouper(points)[1], F.cross_entropy(logits.float(), labels)

    def run_partseg(model: Any, inputs: tuple) -> tuple:
        points, category, parts = inputs
        logits = model(points, category)
        loss = F.cross_entropy(logits.float().flatten(0, 1), parts.flatten())
        return logits, model.encoder.grouper(points)[1], loss

    labels = (_seeded(z.batch).abs() * 10).long() % 40
    category = (_seeded(z.batch, seed=2).abs() * 10).long() % 16
    parts = (_seeded(z.batch, z.npoints, seed=3).abs() * 10).long() % 50
    return [
        ModelCase("model: stage I ACTAutoencoder", stage1, lambda m: (_clouds(z),), run_stage1),
        ModelCase(
            "model: stage II MaskedPointModel (ACT)",
            lambda: MaskedPointModel(_encoder(z), 384, 0.8),
            stage2_inputs,
            partial(run_stage2, "act"),
        ),
        ModelCase(
            "model: stage II MaskedPointModel (Point-MAE)",
            lambda: MaskedPointModel(_encoder(z), 3 * z.group_size, 0.6),
            stage2_inputs,
            partial(run_stage2, "point_mae"),
        ),
        ModelCase(
            "model: PointClassifier",
            lambda: PointClassifier(_encoder(z), 40),
            lambda m: (_clouds(z), labels),
            run_classifier,
        ),
        ModelCase(
            "model: PartSegmenter",
            lambda: PartSegmenter(_encoder(z), 16, 50, layers=z.layers),
            lambda m: (_clouds(z), category, parts),
            run_partseg,
        ),
    ]


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """No TF32 in matmuls or convolutions (CUDA): fp32 results comparable with the CPU's."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _bf16(device: Any) -> Any:
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)


def _errors(got: Any, ref: Any) -> tuple[float, float]:
    """(max abs error, relative L2 error) of ``got`` vs ``ref``, in float32 on the CPU."""
    got, ref = got.detach().float().cpu(), ref.detach().float().cpu()
    diff = got - ref
    return diff.abs().max().item(), (diff.norm() / ref.norm().clamp_min(1e-12)).item()


def check_model(case: ModelCase, device: Any) -> dict:
    """CPU fp32 (eval) vs device fp32 and bf16 (eval), then a bf16 forward + backward in train mode."""
    import torch

    torch.manual_seed(0)
    model = case.build().eval()
    inputs = case.inputs(model)
    with torch.no_grad():
        ref, ref_centers, _ = case.run(model, inputs)
    dev_model = copy.deepcopy(model).to(device)
    dev_inputs = tuple(t.to(device) for t in inputs)
    with torch.no_grad(), strict_fp32():
        out32, centers, _ = case.run(dev_model, dev_inputs)
    with torch.no_grad(), _bf16(device):
        out16, _, _ = case.run(dev_model, dev_inputs)
    dev_model.train()
    with _bf16(device):
        _, _, loss = case.run(dev_model, dev_inputs)
    loss.backward()
    params = [(n, p) for n, p in dev_model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None]
    bad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    e32, r32 = _errors(out32, ref)
    e16, r16 = _errors(out16, ref)
    # FPS may break a near-tie differently on the device: then the outputs are not comparable
    # (the FPS op check above covers FPS), and only finiteness is checked.
    comparable = _errors(centers, ref_centers)[0] <= 1e-5
    close = not comparable or (r32 <= FP32_TOL and r16 <= BF16_TOL)
    finite = math.isfinite(loss.item()) and bool(torch.isfinite(out16.float()).all())
    detail = (
        f"rel L2 fp32 {r32:.1e} (tol {FP32_TOL:.0e}), bf16 {e16:.1e} abs / {r16:.1e} rel (tol {BF16_TOL:.0e}); "
        f"bf16 loss {loss.item():.4g}; grads of {len(params)} tensors"
        + (f"; none for {no_grad[:3]}" if no_grad else "")
        + (f"; non-finite {bad[:3]}" if bad else "")
        + ("" if comparable else "; FPS tie: centres differ, outputs not compared")
    )
    ok = close and finite and not no_grad and not bad
    data = {"max_abs_err": e32, "rel_l2": r32, "max_abs_err_bf16": e16, "rel_l2_bf16": r16, "loss_bf16": loss.item()}
    return make_row("a", case.name, ok, f"{e32:.1e}", detail, **data)


def check_official_loader(z: Sizes, s: Setup) -> dict:
    """An official-layout ``{'base_model': {'module.ACT_encoder.…'}}`` of a PointEncoder, read back by
    ``load_encoder``: same weights, same output on the device (official mini-PointNet weights are
    Conv1d ``(out, in, 1)``; ours are Linear ``(out, in)``)."""
    import torch

    from act3d.models.encoder_io import load_encoder
    from act3d.models.point_transformer import EncoderConfig

    torch.manual_seed(0)
    encoder = _encoder(z).eval()
    official = {"module.ACT_decoder.blocks.0.norm1.weight": torch.ones(4), "module.mask_token": torch.zeros(1, 1, 4)}
    for key, value in encoder.state_dict().items():
        if key.startswith("patch_embed."):
            key = "encoder." + key.removeprefix("patch_embed.")
            value = value[..., None] if value.ndim == 2 else value
        official[f"module.ACT_encoder.{key}"] = value.clone()
    path = s.work / "official_act.pth"
    torch.save({"base_model": official, "epoch": 300}, path)
    config = EncoderConfig(**z.encoder, num_groups=z.groups, group_size=z.group_size)
    loaded = load_encoder(path, config).eval()
    theirs = loaded.state_dict()
    weight_err = max((theirs[k].float() - v.float()).abs().max().item() for k, v in encoder.state_dict().items())
    points = _clouds(z).to(s.device)
    with torch.no_grad():
        out_err = _errors(loaded.to(s.device)(points), encoder.to(s.device)(points))[0]
    err = max(weight_err, out_err)
    detail = f"{len(official)} keys (2 non-encoder, dropped); weights {weight_err:.1e}, output {out_err:.1e}"
    return make_row(
        "a", "loader: official ACT layout → load_encoder", err == 0.0, f"{err:.1e}", detail, max_abs_err=err
    )


def section_a(s: Setup, report: Report) -> None:
    z = sizes(s.toy)
    checks = op_checks(s)
    checks += [(case.name, partial(check_model, case, s.device)) for case in model_cases(z)]
    checks.append(("loader: official ACT layout → load_encoder", partial(check_official_loader, z, s)))
    for name, check in checks:
        report.add(guarded("a", name, check))


# ------------------------------------------------------------------------------- (b) CLI training


def cli_runs(s: Setup) -> list[tuple[str, list[str]]]:
    """(name, ``act3d`` argv) of stage I → stage II (ACT, on stage I's checkpoint) → fine-tune."""
    device = s.device.type if s.device.index is None else f"{s.device.type}:{s.device.index}"
    common = ["--device", device, "--no-progress", "train.epochs=1", f"run.output_dir={s.work}"]
    if s.toy:
        common += [
            *TOY_PATCHES,
            "data.batch_size=2",
            "data.options.num_per_class=1",
            "train.max_steps_per_epoch=2",
            "train.bn_recalibration_batches=1",
        ]
        student = TOY_STUDENT
        stage1 = [f"teacher.name={TOY_TEACHER}", *TOY_AUTOENCODER, "model.token_dim=48"]
        stage2 = [*student, "decoder_depth=1", "decoder_heads=6"]
    else:
        common += ["train.max_steps_per_epoch=20", "train.precision=bf16"]
        student, stage1, stage2 = [], [], []
    teacher = s.work / "stage1" / "ckpt-best.pth"
    encoder = s.work / "stage2" / "encoder.pth"
    return [
        (
            "stage I: act3d pretrain-teacher (act_stage1_cpu, random teacher)",
            [
                "pretrain-teacher",
                "--config",
                "act_stage1_cpu",
                *common,
                *stage1,
                "teacher.weights=random",
                "pictures=1",
            ],
        ),
        (
            "stage II: act3d pretrain objective=act (pretrain_cpu)",
            [
                "pretrain",
                "--config",
                "pretrain_cpu",
                *common,
                *stage2,
                "objective=act",
                f"teacher_checkpoint={teacher}",
            ],
        ),
        (
            "fine-tune: act3d classify init=encoder.pth (classify_cpu)",
            ["classify", "--config", "classify_cpu", *common, *student, f"init={encoder}"],
        ),
    ]


def run_cli(name: str, argv: list[str], run_name: str, steps: int) -> dict:
    """Run ``act3d argv`` in this process: ``steps`` training steps; its last loss and test metrics."""
    from act3d.cli import main
    from act3d.engine.logger import read_metrics

    run_dir = Path(next(a for a in argv if a.startswith("run.output_dir=")).partition("=")[2]) / run_name
    shutil.rmtree(run_dir, ignore_errors=True)
    captured = io.StringIO()
    tic = time.perf_counter()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            code = main([*argv, f"run.name={run_name}"])
    except Exception as err:  # keep what the run printed before it broke
        raise RuntimeError(f"{type(err).__name__}: {err} | output: {captured.getvalue()[-300:]}") from err
    wall = time.perf_counter() - tic
    records = read_metrics(run_dir / "metrics.jsonl")
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    results = json.loads((run_dir / "results.json").read_text()) if (run_dir / "results.json").is_file() else {}
    final = {k: v for k, v in results.get("final_epoch", {}).items() if isinstance(v, int | float) and k != "epoch"}
    loss = losses[-1] if losses else math.nan
    ok = code == 0 and len(losses) == steps and all(math.isfinite(v) for v in losses) and bool(final)
    shown = sorted(final, key=lambda k: k != results.get("primary_metric"))[:3]  # the primary metric first
    test = ", ".join(f"{k} {final[k]:.4g}" for k in shown) + (", …" if len(final) > len(shown) else "")
    detail = f"{len(losses)} steps in {wall:.1f} s (build, train, eval); test: {test or 'none'}"
    if code != 0:
        detail = f"exit {code}: {captured.getvalue()[-200:]}"
    return make_row("b", name, ok, f"loss {loss:.4g}", detail, loss=loss, steps=len(losses), wall_s=wall, test=final)


def section_b(s: Setup, report: Report) -> None:
    steps = 2 if s.toy else 20
    for (name, argv), run_name in zip(cli_runs(s), ("stage1", "stage2", "finetune"), strict=True):
        report.add(guarded("b", name, partial(run_cli, name, argv, run_name, steps)))


# ------------------------------------------------------------------------------ (c) throughput


def throughput_cases(toy: bool, bench: ModuleType) -> list[tuple[str, str, list[str], int]]:
    """(name, task, overrides, batch): bench/train.py's paper cases (stage I 64, II 128, fine-tune 32)."""
    if toy:
        stage1 = [*sizes(True).stage1, *TOY_PATCHES]
        student = [*TOY_STUDENT, *TOY_PATCHES]
        return [
            ("stage I (toy)", "stage1", stage1, 1),
            ("stage II (toy)", "stage2", student, 2),
            ("fine-tune (toy)", "finetune", student, 2),
        ]
    cases = [(name, task, overrides, gpu) for name, (task, overrides, _, gpu) in bench.CASES.items() if "paper" in name]
    if len(cases) != 3:
        raise RuntimeError(f"bench/train.py: expected 3 paper cases, found {[c[0] for c in cases]}")
    return cases


def measure(s: Setup, bench: ModuleType, case: tuple, compile_: bool, peak_gflops: float) -> dict:
    """One throughput row: samples/s, s/step, peak memory, FLOP share of the matmul yardstick."""
    import torch

    name, task, overrides, batch = case
    teacher = TOY_STAGE2_TEACHER if s.toy else STAGE2_TEACHER
    r = bench.measure_step(task, overrides, batch, s.device, compile_, s.steps, stage2_teacher=teacher)
    rate = r["batch"] / r["seconds"]
    share = r["flops"] / r["seconds"] / (peak_gflops * 1e9)
    memory = "peak" if s.device.type == "cuda" else "max RSS"
    detail = (
        f"batch {r['batch']}, {r['seconds'] * 1e3:.1f} ms/step, {memory} {r['peak_bytes'] / 2**30:.2f} GiB, "
        f"{_flops(r['flops'])}/step = {share:.0%} of matmul, first step {r['first_step_seconds']:.1f} s, "
        f"SDPA {'yes' if r['fused_attn'] else 'NO'}, loss {r['loss']:.4g}"
    )
    ok = math.isfinite(r["loss"]) and r["fused_attn"] and rate > 0
    if s.device.type == "cuda":
        torch.cuda.empty_cache()
    label = f"{name}, {'torch.compile' if compile_ else 'eager'}"
    data = {**r, "samples_per_s": rate, "matmul_share": share, "compile": compile_, "task": task}
    return make_row("c", label, ok, f"{rate:.1f} samples/s", detail, **data)


def _flops(value: float) -> str:
    """``value`` FLOPs as ``12.3 TFLOP`` / ``45.6 GFLOP``."""
    return f"{value / 1e12:.1f} TFLOP" if value >= 1e12 else f"{value / 1e9:.1f} GFLOP"


def epoch_estimate(rows: list[dict]) -> dict:
    """One ShapeNet-55 stage-II epoch at the measured stage-II rates (eager, compiled)."""
    rates = {r["data"]["compile"]: r["data"]["samples_per_s"] for r in rows if r["data"].get("task") == "stage2"}
    if not rates:
        return make_row("c", "ShapeNet-55 stage-II epoch (estimate)", False, "no stage-II rate")
    best = max(rates.values())
    parts = [f"{'compiled' if c else 'eager'} {SHAPENET55_CLOUDS / v / 60:.1f} min" for c, v in sorted(rates.items())]
    detail = (
        f"{SHAPENET55_CLOUDS:,} clouds: "
        + ", ".join(parts)
        + f"; 300 epochs ≈ {300 * SHAPENET55_CLOUDS / best / 3600:.1f} h"
    )
    data = {"seconds_per_epoch": {str(c): SHAPENET55_CLOUDS / v for c, v in rates.items()}}
    return make_row(
        "c", "ShapeNet-55 stage-II epoch (estimate)", True, f"{SHAPENET55_CLOUDS / best:.0f} s", detail, **data
    )


def section_c(s: Setup, report: Report) -> None:
    import torch

    bench = load_bench_train()
    cuda = s.device.type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    dtype, n = (torch.bfloat16, 8192) if cuda else (torch.float32, 512)
    holder: dict[str, float] = {}

    def yardstick() -> dict:
        holder["gflops"] = bench.matmul_gflops(s.device, dtype, n=n, repeats=20 if cuda else 3)
        kind = "bf16" if cuda else "fp32"
        return make_row("c", f"dense {kind} matmul {n}³ (yardstick)", True, _flops(holder["gflops"] * 1e9) + "/s")

    report.add(guarded("c", "matmul yardstick", yardstick))
    peak = holder.get("gflops", math.nan)
    measured = []
    cases = throughput_cases(s.toy, bench)
    # Compiled: stage II first (the epoch estimate), stage I (the longest compilation) last.
    compiled = sorted(cases, key=lambda case: ["stage2", "finetune", "stage1"].index(case[1]))
    for compile_, order in [(False, cases), (True, compiled)] if cuda and not s.toy else [(False, cases)]:
        for case in order:
            label = f"{case[0]}, {'torch.compile' if compile_ else 'eager'}"
            if compile_ and time.perf_counter() > s.deadline:
                report.add(make_row("c", label, False, "skipped", "time budget spent (--budget)"))
                continue
            row = guarded("c", label, partial(measure, s, bench, case, compile_, peak))
            report.add(row)
            measured += [row] if row["ok"] else []
            if compile_:
                import torch._dynamo

                torch._dynamo.reset()
    report.add(guarded("c", "ShapeNet-55 stage-II epoch (estimate)", partial(epoch_estimate, measured)))


# ------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu.json and gpu.md")
    parser.add_argument("--toy", action="store_true", help="CPU, toy sizes, no torch.compile (CI)")
    parser.add_argument("--device", help="default: cuda if available (cpu with --toy)")
    parser.add_argument("--sections", default="abc", help="which of a, b, c to run (default: abc)")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds after which compiled cases are skipped")
    parser.add_argument("--steps", type=int, help="timed steps per throughput case (default 10; toy 1)")
    parser.add_argument("--work", type=Path, help="scratch folder for runs and checkpoints (default: a temporary one)")
    parser.add_argument("--wheels", type=Path, default=REPO / "wheels", help="wheels of missing packages")
    return parser.parse_args(argv)


class Interrupted(BaseException):
    """SIGTERM (``timeout``): stop measuring, but write and print what was measured."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(f"signal {signum}")


def describe(device: Any, toy: bool, packages: str) -> dict[str, Any]:
    """The run's metadata: device, versions, SDPA back-ends."""
    import torch

    cuda = device.type == "cuda"
    return {
        "toy": toy,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor() or "CPU",
        "device_memory_gib": round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "packages": packages,
        "sdpa_flash": torch.backends.cuda.flash_sdp_enabled(),
        "sdpa_mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
    }


def run_sections(s: Setup, report: Report, keys: str) -> None:
    """Each section in turn; a section whose own set-up fails is marked so, and the next one runs."""
    sections = {"a": section_a, "b": section_b, "c": section_c}
    for key in [k for k in sections if k in keys]:
        report.set_status(key, "running")
        try:
            sections[key](s, report)
            report.set_status(key, "done")
        except Exception as err:
            report.set_status(key, f"error: {type(err).__name__}: {err}"[:300])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tic = time.perf_counter()
    signal.signal(signal.SIGTERM, _interrupt)
    work = args.work or Path(tempfile.mkdtemp(prefix="act3d-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    packages = ensure_packages(args.wheels, work / "site")
    sys.path.insert(0, str(REPO / "src"))  # this checkout's act3d, installed or not
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    import torch

    device = torch.device(args.device or ("cpu" if args.toy or not torch.cuda.is_available() else "cuda"))
    s = Setup(device, args.toy, work, tic + args.budget, args.steps or (1 if args.toy else 10))
    report = Report(args.out, describe(device, args.toy, packages))
    print(f"act3d GPU check on {report.meta['device_name']} (torch {torch.__version__}); packages: {packages}")
    try:
        run_sections(s, report, args.sections)
    except Interrupted as stop:
        report.meta["interrupted"] = str(stop)
        for section in report.sections.values():
            section["status"] = "interrupted" if section["status"] == "running" else section["status"]
    finally:
        report.save()
        print("\n" + report.markdown(), flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if json.loads((args.out / "gpu.json").read_text())["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
