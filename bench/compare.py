"""A paired comparison of pretraining arms on the real data in ../shared/data, with controls.

    python bench/compare.py                       # 3 seeds on ModelNet10, about 1.5-2 hours on 2 cores
    python bench/compare.py --quick               # 1 seed, a few steps: a smoke run
    python bench/compare.py --seeds 3 4 --out runs/compare   # more seeds: reuses its stage Is and finished seeds
    python bench/compare.py --seeds 3 --stage1-from runs/compare --out runs/other   # other settings, same stage Is

Arms (docs/results.md, "Paired comparison"):
- random init: the student as every other arm initialises it at that seed, not trained;
- Point-MAE at mask ratio 0.6 and 0.8;
- ACT with the pretrained DINOv2 teacher, and ACT with the control teacher: the same DINOv2 with its
  weights permuted within each tensor (same architecture and statistics, no knowledge);
- optionally ACT with the MiniLM language teacher (``--minilm``).

Pairing: at a seed, every arm starts from the same student weights, sees the same clouds in the same
order with the same augmentation, and hides the same patches at each step (``PretrainTask``); each
stage-II arm runs the same number of steps. One stage I per teacher (seed 0) serves every seed; its
cost and its code diagnostics are reported apart. Gate: an ACT arm's stage II runs only if its stage
I passes the information check (``act3d.objectives.code_information``); otherwise the table says
"not testable at this budget".

Read-outs on frozen ``[CLS ; max-pool]`` features, BatchNorm treated alike in every arm (statistics
re-estimated on the same training batches): a linear SVM with C chosen by 5-fold cross-validation on
the training split only; few-shot episodes with the support drawn from train and the queries from
test (10 folds per setting, linear SVM). Reported per arm: mean ± std over seeds; and the paired
differences (ACT − Point-MAE, ACT − control, each − random init) as mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch.utils.data import DataLoader

from act3d.engine.batchnorm import recalibrate_batchnorm
from act3d.engine.config import load_config
from act3d.models.encoder_io import load_encoder
from act3d.objectives.code_information import informative, verdict
from act3d.presets import preset_dir
from act3d.tasks.common import build_split
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task
from act3d.tasks.svm import extract_features

REPO = Path(__file__).resolve().parents[1]
CONFIGS = preset_dir()
EPISODES = ((5, 10), (5, 20), (10, 10), (10, 20))
C_GRID = (0.001, 0.01, 0.1, 1.0)
TEACHERS = {"DINOv2": "dinov2_vits14_imgfocus", "control": "permuted:dinov2_vits14_imgfocus", "MiniLM": "minilm_l6"}
NOT_TESTABLE = "not testable at this budget"


def stage1(teacher: str, data: list[str], args: argparse.Namespace, out: Path) -> dict:
    """One stage I (seed 0) for ``teacher``: its checkpoint, code diagnostics, verdict and seconds."""
    overrides = [
        *data,
        f"teacher.name={TEACHERS[teacher]}",
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.stage1_steps}",
        f"temperature.steps={args.stage1_steps}",
        f"kl_weight.delay={args.stage1_steps // 10}",
        f"kl_weight.steps={args.stage1_steps}",
        "train.seed=0",
        f"run.output_dir={out}",
        f"run.name=stage1-{teacher}",
        *args.stage1,
    ]
    cfg = load_config(PretrainTeacherConfig, CONFIGS / "act_stage1_cpu.yaml", overrides)
    tic = time.perf_counter()
    run_dir, result = train_task(cfg, PretrainTeacherTask, show_progress=False)
    metrics = result.final_metrics
    return {
        "checkpoint": str(run_dir / "ckpt-best.pth"),
        "seconds": time.perf_counter() - tic,
        "metrics": metrics,
        "informative": informative(metrics),
        "verdict": verdict(metrics),
    }


def reuse_stage1(earlier: Path, teachers: list[str]) -> dict:
    """The stage Is an earlier run recorded in ``earlier/stage1.json``, for the teachers whose checkpoint is there."""
    path = earlier / "stage1.json"
    if not path.is_file():
        raise SystemExit(f"--stage1-from: {path} does not exist (an earlier bench/compare.py run writes it)")
    recorded = json.loads(path.read_text())
    return {t: recorded[t] for t in teachers if t in recorded and Path(recorded[t]["checkpoint"]).is_file()}


def earlier_seeds(out: Path, args: argparse.Namespace, results: dict[str, list[dict]]) -> list[int]:
    """Seeds an earlier run into ``out`` finished with the same settings: their rows are put into
    ``results`` (so a killed or extended comparison goes on where it stopped), and their list returned."""
    path = out / "results.json"
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    same = {k: v for k, v in vars(args).items() if k not in ("seeds", "stage1_from")}
    before = {k: v for k, v in report["args"].items() if k not in ("seeds", "stage1_from")}
    if before != same or set(report["results"]) != set(results):
        raise SystemExit(f"{path} holds a comparison with other settings or arms: choose another --out")
    for arm, rows in report["results"].items():
        results[arm].extend(rows)
    return list(report["seeds_done"])


def stage2(arm: str, overrides: list[str], seed: int, args: argparse.Namespace, out: Path) -> tuple[Path, float]:
    """Stage II of one arm at one seed → its encoder file and seconds."""
    cfg = load_config(
        PretrainConfig,
        CONFIGS / "pretrain_cpu.yaml",
        [
            *overrides,
            f"train.seed={seed}",
            f"train.epochs={args.epochs}",
            *([f"train.max_steps_per_epoch={args.steps}"] if args.steps else []),
            "scheduler.warmup_epochs=0",
            "svm_eval=false",
            f"run.output_dir={out}",
            f"run.name={arm.replace(' ', '_')}-seed{seed}",
        ],
    )
    tic = time.perf_counter()
    run_dir, _ = train_task(cfg, PretrainTask, show_progress=False)
    return run_dir / "encoder.pth", time.perf_counter() - tic


def random_student(data: list[str], seed: int) -> torch.nn.Module:
    """The student every stage-II arm starts from at ``seed``, untrained."""
    cfg = load_config(
        PretrainConfig, CONFIGS / "pretrain_cpu.yaml", [*data, "objective=point_mae", f"train.seed={seed}"]
    )
    return PretrainTask(cfg).model.encoder


def read_out(encoder: torch.nn.Module, data: list[str], seed: int) -> dict[str, float]:
    """Linear SVM (C by cross-validation on train) and few-shot accuracy (%) of frozen features."""
    cfg = load_config(PretrainConfig, CONFIGS / "pretrain_cpu.yaml", [*data, "objective=point_mae"])
    train, test = build_split(cfg.data, cfg.data.train_split), build_split(cfg.data, cfg.data.test_split)
    device = torch.device("cpu")
    batches = DataLoader(
        train, batch_size=cfg.data.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    recalibrate_batchnorm(encoder, itertools.islice(batches, 20), lambda b: encoder(b["points"]))
    (xtr, ytr), (xte, yte) = extract_features(encoder, train, device), extract_features(encoder, test, device)
    svm = make_pipeline(StandardScaler(), LinearSVC(max_iter=5000, random_state=seed))
    search = GridSearchCV(svm, {"linearsvc__C": list(C_GRID)}, cv=5).fit(xtr, ytr)
    out = {"svm": 100.0 * search.score(xte, yte), "svm_C": search.best_params_["linearsvc__C"]}
    for way, shot in EPISODES:
        out[f"{way}w{shot}s"] = few_shot(xtr, ytr, xte, yte, way, shot)
    return out


def few_shot(
    xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, way: int, shot: int, folds: int = 10
) -> float:
    """Mean accuracy (%) over ``folds`` episodes of ``way`` classes: ``shot`` support clouds per class from
    train, 20 queries per class from test, a linear SVM on the support features."""
    accs = []
    for fold in range(folds):
        rng = np.random.default_rng(fold)
        chosen = rng.choice(np.unique(ytr), size=way, replace=False)
        support = np.concatenate([rng.permutation(np.flatnonzero(ytr == c))[:shot] for c in chosen])
        query = np.concatenate([rng.permutation(np.flatnonzero(yte == c))[:20] for c in chosen])
        svm = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=5000, random_state=fold))
        accs.append(100.0 * svm.fit(xtr[support], ytr[support]).score(xte[query], yte[query]))
    return float(np.mean(accs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1, help="stage-II epochs of the training split per arm")
    parser.add_argument("--steps", type=int, default=None, help="cap on stage-II steps per epoch (default: all)")
    parser.add_argument("--stage1-steps", type=int, default=300)
    parser.add_argument("--stage1", nargs="*", default=[], help="extra stage-I overrides (the regime)")
    parser.add_argument("--minilm", action="store_true", help="also the MiniLM language-teacher arm")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--ungated", action="store_true", help="run ACT arms even when their codes fail the check")
    parser.add_argument("--stage1-from", default=None, help="reuse the stage Is of an earlier run's OUT directory")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.stage1_steps = [0], 3, 3
    data = ["data.name=npz", f"data.root={args.data}", "data.options={}"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teachers = ["DINOv2", "control"] + (["MiniLM"] if args.minilm else [])
    if args.stage1_from:  # asked for: a missing stage1.json there is an error
        stage1s = reuse_stage1(Path(args.stage1_from), teachers)
    else:  # this folder's own, when an earlier run into it wrote one
        stage1s = reuse_stage1(out, teachers) if (out / "stage1.json").is_file() else {}
    stage1s.update({t: stage1(t, data, args, out) for t in teachers if t not in stage1s})
    (out / "stage1.json").write_text(json.dumps(stage1s, indent=2, default=str))
    arms = {"Point-MAE 0.6": [*data, "objective=point_mae", "masking.ratio=0.6"]}
    arms["Point-MAE 0.8"] = [*data, "objective=point_mae", "masking.ratio=0.8"]
    for t in teachers:
        if stage1s[t]["informative"] or args.ungated:
            arms[f"ACT {t}"] = [*data, "objective=act", f"teacher_checkpoint={stage1s[t]['checkpoint']}"]
    results: dict[str, list[dict]] = {"random init": [], **{arm: [] for arm in arms}}
    done = earlier_seeds(out, args, results)
    for seed in args.seeds:
        if seed in done:
            print(f"seed {seed}: already in {out / 'results.json'}", flush=True)
            continue
        results["random init"].append(read_out(random_student(data, seed), data, seed))
        for arm, overrides in arms.items():
            path, seconds = stage2(arm, overrides, seed, args, out)
            results[arm].append({**read_out(load_encoder(path), data, seed), "seconds": seconds})
        print(json.dumps({arm: rows[-1] for arm, rows in results.items()}), flush=True)
        done.append(seed)
        report = {"args": vars(args), "seeds_done": done, "stage1": stage1s, "results": results}
        (out / "results.json").write_text(json.dumps(report, indent=2, default=str))  # after every seed
        (out / "results.md").write_text(tables(report, teachers))
    print((out / "results.md").read_text())


def tables(report: dict, teachers: list[str]) -> str:
    """The stage-I diagnostics, the per-arm read-outs and the paired differences, in Markdown."""
    results, keys = report["results"], ["svm", *(f"{w}w{s}s" for w, s in EPISODES)]
    names = ["linear SVM %", *(f"{w}-way {s}-shot %" for w, s in EPISODES)]
    lines = [
        "| stage I teacher | nats / code | P(sample = argmax) | CD ×1000 sampled / shuffled / argmax | verdict | s |"
    ]
    lines.append("|---|---|---|---|---|---|")
    for t in teachers:
        m, s1 = report["stage1"][t]["metrics"], report["stage1"][t]
        cds = " / ".join(f"{1000 * m[k]:.1f}" for k in ("cd_l1", "cd_l1_shuffled_codes", "cd_l1_argmax_codes"))
        gate = "informative" if s1["informative"] else f"no information: ACT {t} {NOT_TESTABLE}"
        if not s1["informative"] and f"ACT {t}" in results:
            gate = "no information (run anyway: --ungated)"
        lines.append(
            f"| {t} | {m['code_information']:.2f} | {m['code_sample_is_argmax']:.2f} | {cds} | {gate} | "
            f"{s1['seconds']:.0f} |"
        )
    lines += ["", "| arm | " + " | ".join(names) + " | stage-II s |", "|---" * (len(names) + 2) + "|"]
    for arm, rows in results.items():
        cells = [_mean_std([r[k] for r in rows]) for k in keys]
        seconds = np.mean([r.get("seconds", 0.0) for r in rows])
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    for t in teachers:
        if f"ACT {t}" not in results:
            lines.append(f"| ACT {t} | " + " | ".join([NOT_TESTABLE] * len(names)) + " | – |")
    lines += ["", "Paired differences (same seed, same student init, data order and masks), mean ± std over seeds:", ""]
    lines += ["| difference | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for a, b in _pairs(results):
        diffs = [_mean_std([x[k] - y[k] for x, y in zip(results[a], results[b], strict=True)], sign=True) for k in keys]
        lines.append(f"| {a} − {b} | " + " | ".join(diffs) + " |")
    return "\n".join(lines) + "\n"


def _pairs(results: dict) -> list[tuple[str, str]]:
    act = [arm for arm in results if arm.startswith("ACT")]
    pairs = [(a, m) for a in act for m in ("Point-MAE 0.6", "Point-MAE 0.8")]
    if "ACT DINOv2" in results and "ACT control" in results:
        pairs.append(("ACT DINOv2", "ACT control"))
    return pairs + [(arm, "random init") for arm in results if arm != "random init"]


def _mean_std(values: list[float], sign: bool = False) -> str:
    mean = f"{np.mean(values):+.1f}" if sign else f"{np.mean(values):.1f}"
    return f"{mean} ± {np.std(values):.1f}"


if __name__ == "__main__":
    main()
