"""ACT vs Point-MAE vs no pretraining on the real data in ../shared/data, at one equal budget.

    python bench/compare.py                 # 3 seeds, CPU presets on ModelNet10 (about 30 min on 2 cores)
    python bench/compare.py --quick         # 1 seed, a few steps: a smoke run

For each seed: ACT (stage I + stage II), Point-MAE (stage II with the masked-patch Chamfer objective)
and a randomly initialised encoder; every stage-II run gets the same number of optimizer steps and
the same student, data and augmentation. Stage I is ACT's extra cost and is reported separately.
Read-outs on frozen [CLS ; max-pool] features: linear-SVM accuracy on the official ModelNet10 split,
and few-shot accuracy (N-way K-shot episodes drawn reproducibly from the test split, 10 folds,
linear SVM on the K·N support features, 20 queries per class) as mean ± std over folds. The few-shot
read-out is a frozen-feature probe, not the paper's fine-tuned protocol (see docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from act3d.engine.config import load_config
from act3d.models.encoder_io import load_encoder
from act3d.models.point_transformer import PointEncoder
from act3d.tasks.common import train_and_test_sets
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task
from act3d.tasks.svm import extract_features, linear_svm_accuracy

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
EPISODES = ((5, 10), (5, 20), (10, 10), (10, 20))


def few_shot_accuracy(
    features: np.ndarray, labels: np.ndarray, way: int, shot: int, folds: int = 10, queries: int = 20
) -> tuple[float, float]:
    """Mean ± std over ``folds`` episodes of a linear SVM trained on ``shot`` examples of ``way`` classes."""
    accs = []
    classes = np.unique(labels)
    for fold in range(folds):
        rng = np.random.default_rng(fold)
        chosen = rng.choice(classes, size=way, replace=False)
        support, query = [], []
        for c in chosen:
            idx = rng.permutation(np.flatnonzero(labels == c))
            support.extend(idx[:shot])
            query.extend(idx[shot : shot + queries])
        s, q = np.array(support), np.array(query)
        accs.append(linear_svm_accuracy((features[s], labels[s]), (features[q], labels[q]), c=1.0, seed=fold))
    return float(np.mean(accs)), float(np.std(accs))


def pretrain(
    objective: str, data: list[str], steps: int, stage1: list[str], seed: int, out: Path
) -> tuple[Path, float]:
    """Stage II (after stage I for ACT) → the encoder file and the seconds spent in stage I."""
    stage2 = [
        *data,
        f"train.seed={seed}",
        f"run.output_dir={out}",
        f"run.name={objective}-seed{seed}",
        f"objective={objective}",
        "train.epochs=1",
        f"train.max_steps_per_epoch={steps}",
        "scheduler.warmup_epochs=0",
        "svm_eval=false",
    ]
    if objective == "point_mae":
        stage2.append("masking.ratio=0.6")  # Point-MAE's own mask ratio
    stage1_seconds = 0.0
    if objective == "act":
        s1 = load_config(
            PretrainTeacherConfig,
            CONFIGS / "act_stage1_cpu.yaml",
            [*data, *stage1, f"train.seed={seed}", f"run.output_dir={out}", f"run.name=stage1-seed{seed}"],
        )
        tic = time.perf_counter()
        s1_dir, _ = train_task(s1, PretrainTeacherTask, show_progress=False)
        stage1_seconds = time.perf_counter() - tic
        stage2.append(f"teacher_checkpoint={s1_dir / 'ckpt-best.pth'}")
    run_dir, _ = train_task(
        load_config(PretrainConfig, CONFIGS / "pretrain_cpu.yaml", stage2), PretrainTask, show_progress=False
    )
    return run_dir / "encoder.pth", stage1_seconds


def evaluate(encoder: torch.nn.Module, data_overrides: list[str]) -> dict[str, float]:
    cfg = load_config(PretrainConfig, CONFIGS / "pretrain_cpu.yaml", [*data_overrides, "objective=point_mae"])
    train, test = train_and_test_sets(cfg.data, 0)
    device = torch.device("cpu")
    tr, te = extract_features(encoder, train.dataset, device), extract_features(encoder, test, device)
    out = {"svm": linear_svm_accuracy(tr, te)}
    for way, shot in EPISODES:
        out[f"{way}w{shot}s"] = few_shot_accuracy(*te, way, shot)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=150, help="stage-II optimizer steps per arm")
    parser.add_argument("--stage1-steps", type=int, default=150, help="ACT stage-I optimizer steps")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.stage1_steps = [0], 3, 3
    data = ["data.name=npz", f"data.root={args.data}", "data.options={}"]
    stage1 = [
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.stage1_steps}",
        "scheduler.warmup_epochs=0",
        f"temperature.steps={args.stage1_steps}",
        f"kl_weight.delay={args.stage1_steps // 10}",
        f"kl_weight.steps={args.stage1_steps}",
    ]
    out = Path(args.out)
    rows: dict[str, list[dict]] = {"ACT": [], "Point-MAE": [], "no pretraining": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        for arm, objective in (("ACT", "act"), ("Point-MAE", "point_mae")):
            tic = time.perf_counter()
            path, s1 = pretrain(objective, data, args.steps, stage1, seed, out)
            result = evaluate(load_encoder(path), data)
            result.update(stage1_s=s1, total_s=time.perf_counter() - tic)
            rows[arm].append(result)
        cfg = load_config(PretrainConfig, CONFIGS / "pretrain_cpu.yaml", ["objective=point_mae"])
        torch.manual_seed(seed)
        rows["no pretraining"].append(evaluate(PointEncoder(**cfg.model.model_dump()), data))
        print(json.dumps({k: v[-1] for k, v in rows.items()}), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(table(rows, args))


def table(rows: dict[str, list[dict]], args: argparse.Namespace) -> str:
    def ms(values):
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}"

    head = "| arm | linear SVM acc % | " + " | ".join(f"{w}-way {s}-shot %" for w, s in EPISODES) + " | seconds |"
    lines = [
        f"seeds {args.seeds}, {args.steps} stage-II steps per arm, data {args.data}",
        "",
        head,
        "|---" * (3 + len(EPISODES)) + "|",
    ]
    for arm, results in rows.items():
        cells = [ms([r["svm"] for r in results])]
        # few-shot: mean over seeds of the per-seed fold mean, ± mean over seeds of the fold std
        for way, shot in EPISODES:
            key = f"{way}w{shot}s"
            mean = np.mean([r[key][0] for r in results])
            std = np.mean([r[key][1] for r in results])
            cells.append(f"{mean:.1f} ± {std:.1f}")
        secs = np.mean([r.get("total_s", 0.0) for r in results])
        cells.append(f"{secs:.0f}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
