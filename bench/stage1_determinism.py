"""Is stage I bitwise reproducible on this machine? Two identical short stage-I runs, compared tensor by tensor.

    python bench/stage1_determinism.py                  # 30 steps of the informative ModelNet10 regime, twice

Prints the two runs' code information and CD-L1 and how many checkpoint tensors differ (docs/results.md,
"three seeds": the same command gave other stage Is in two sessions on fresh machines).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from act3d.engine.config import load_config
from act3d.presets import resolve_preset
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task

REPO = Path(__file__).resolve().parents[1]
INFOMAX = ["model.logit_scale=3.0", "kl_weight.target=0.0", "diversity_weight.start=0.1"]
INFOMAX += ["diversity_weight.target=0.1", "diversity_sharpness=1.0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default="runs/stage1_determinism")
    args = parser.parse_args()
    common = [
        "data.name=npz",
        f"data.root={args.data}",
        "data.options={}",
        "teacher.name=dinov2_vits14_imgfocus",
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.steps}",
        f"temperature.steps={args.steps}",
        f"kl_weight.delay={args.steps // 10}",
        f"kl_weight.steps={args.steps}",
        "train.seed=0",
        f"run.output_dir={args.out}",
        "pictures=0",
        *INFOMAX,
    ]
    runs = []
    for name in ("a", "b"):
        cfg = load_config(PretrainTeacherConfig, resolve_preset("act_stage1_cpu"), [*common, f"run.name={name}"])
        run_dir, result = train_task(cfg, PretrainTeacherTask, show_progress=False)
        runs.append((torch.load(run_dir / "ckpt-last.pth", weights_only=True)["model"], result.final_metrics))
    (first, metrics_a), (second, metrics_b) = runs
    for name, metrics in (("a", metrics_a), ("b", metrics_b)):
        print(f"run {name}: code_information {metrics['code_information']:.5f}, cd_l1 {metrics['cd_l1']:.5f}")
    differing = [k for k in first if not torch.equal(first[k], second[k])]
    print(f"checkpoint tensors differing: {len(differing)} of {len(first)} {differing[:5]}")


if __name__ == "__main__":
    main()
