"""Stage-I ablation at equal steps: pretrained teacher vs random teacher vs no prompts.

    python bench/stage1_ablation.py               # ModelNet10 from ../shared/data, CPU preset, 200 steps
    python bench/stage1_ablation.py --steps 20    # quicker

Prints test Chamfer-L1 (fine patches, hard τ=1 sample, ×1000) at the end of each run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from act3d.engine.config import load_config
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task

REPO = Path(__file__).resolve().parents[1]
ARMS = {
    "pretrained DINOv2 ViT-S/14, VPT-Deep": [],
    "random-weight ViT-S (vit_small_patch16_224, --teacher random)": ["teacher.name=random:vit_small_patch16_224"],
    "pretrained, no prompts": ["teacher.prompt_mode=none"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/stage1_ablation")
    args = parser.parse_args()
    common = [
        "data.name=npz",
        f"data.root={args.data}",
        "data.options={}",
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.steps}",
        "scheduler.warmup_epochs=0",
        f"temperature.steps={args.steps}",
        f"kl_weight.delay={args.steps // 10}",
        f"kl_weight.steps={args.steps}",
        f"train.seed={args.seed}",
        f"run.output_dir={args.out}",
    ]
    rows = []
    for i, (arm, overrides) in enumerate(ARMS.items()):
        cfg = load_config(
            PretrainTeacherConfig, REPO / "configs" / "act_stage1_cpu.yaml", [*common, *overrides, f"run.name=arm{i}"]
        )
        _, result = train_task(cfg, PretrainTeacherTask, show_progress=False)
        m = result.final_metrics
        rows.append(f"| {arm} | {1000 * m['cd_l1']:.2f} | {1000 * m['cd_l1_coarse']:.2f} | {m['codes_used']:.1f} |")
    print(f"\n{args.steps} steps, batch 16, seed {args.seed}, data {args.data}\n")
    print("| stage-I teacher | test CD-L1 ×1000 (fine) | coarse | codes used / batch |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
