"""Stage-I arms at equal steps, read through the code diagnostics (docs/results.md).

    python bench/stage1_ablation.py                      # the regime sweep on ModelNet10, 200 steps each
    python bench/stage1_ablation.py --arms teachers      # pretrained vs random teacher vs no prompts
    python bench/stage1_ablation.py --steps 20 --only 0  # quicker

Each arm is the CPU stage-I preset on the dev data (``../shared/data/modelnet10``) with its overrides;
schedules (τ anneal, KL delay and ramp) are stretched over the run's steps. Prints one Markdown table:
the information a code carries about its patch, P(sample = argmax), distinct codes, and the test fine
CD-L1 (×1000) decoding the sampled codes, the same codes shuffled across patches, and the argmax codes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from act3d.engine.config import load_config
from act3d.objectives.code_information import informative
from act3d.presets import resolve_preset
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task

REPO = Path(__file__).resolve().parents[1]
# no KL term, the information-maximisation term at weight 0.1 (docs/method.md, stage I)
INFOMAX = [
    "kl_weight.target=0.0",
    "diversity_weight.start=0.1",
    "diversity_weight.target=0.1",
    "diversity_sharpness=1.0",
]
ARMS = {
    "teachers": {
        "pretrained DINOv2 ViT-S/14, VPT-Deep": [],
        "random-weight ViT-S (vit_small_patch16_224)": ["teacher.name=random:vit_small_patch16_224"],
        "pretrained, no prompts": ["teacher.prompt_mode=none"],
    },
    "regimes": {
        "CPU preset (paper schedule shapes, logits ×1, KL → 0.1)": [],
        "KL weight 0": ["kl_weight.target=0.0"],
        "logits ×10": ["model.logit_scale=10.0"],
        "logits ×10, KL weight 0": ["model.logit_scale=10.0", "kl_weight.target=0.0"],
        "logits ×10, KL weight 0, 64 codes": [
            "model.logit_scale=10.0",
            "kl_weight.target=0.0",
            "model.codebook_size=64",
        ],
        "KL weight 0, straight-through": ["kl_weight.target=0.0", "straight_through=true"],
        "logits ×10, KL weight 0, straight-through": [
            "model.logit_scale=10.0",
            "kl_weight.target=0.0",
            "straight_through=true",
        ],
        "logits ×10, KL weight 0, straight-through, 64 codes": [
            "model.logit_scale=10.0",
            "kl_weight.target=0.0",
            "straight_through=true",
            "model.codebook_size=64",
        ],
        "logits ×10, KL weight 0, batch diversity 0.05": [
            "model.logit_scale=10.0",
            "kl_weight.target=0.0",
            "diversity_weight.start=0.05",
            "diversity_weight.target=0.05",
        ],
        "logits ×10, KL weight 0, infomax 0.05": [
            "model.logit_scale=10.0",
            "kl_weight.target=0.0",
            "diversity_weight.start=0.05",
            "diversity_weight.target=0.05",
            "diversity_sharpness=1.0",
        ],
        "KL weight 0, infomax 0.1": [
            *INFOMAX,
        ],
        "logits ×3, KL weight 0, infomax 0.1": [
            "model.logit_scale=3.0",
            *INFOMAX,
        ],
        "KL weight 0, infomax 0.1, 16 patches of 64 points": [
            *INFOMAX,
            "model.num_groups=16",
            "model.group_size=64",
        ],
    },
}
COLUMNS = (
    ("nats / code", "code_information", 1, "{:.2f}"),
    ("P(sample = argmax)", "code_sample_is_argmax", 1, "{:.2f}"),
    ("codes sampled / argmax", None, 1, ""),
    ("CD ×1000 sampled", "cd_l1", 1000, "{:.1f}"),
    ("shuffled", "cd_l1_shuffled_codes", 1000, "{:.1f}"),
    ("argmax", "cd_l1_argmax_codes", 1000, "{:.1f}"),
    ("shuffle gap", "code_shuffle_gap", 100, "{:+.1f} %"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", choices=sorted(ARMS), default="regimes")
    parser.add_argument("--only", type=int, nargs="*", help="indices of the arms to run (default: all)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/stage1_ablation")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every arm")
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
        *args.overrides,
    ]
    header = "| arm | " + " | ".join(c[0] for c in COLUMNS) + " | verdict | s |"
    rows = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for i, (arm, overrides) in enumerate(ARMS[args.arms].items()):
        if args.only is not None and i not in args.only:
            continue
        name = f"{args.arms}{i}-seed{args.seed}"
        cfg = load_config(
            PretrainTeacherConfig, resolve_preset("act_stage1_cpu"), [*common, *overrides, f"run.name={name}"]
        )
        tic = time.perf_counter()
        _, result = train_task(cfg, PretrainTeacherTask, show_progress=False)
        rows.append(_row(arm, result.final_metrics, time.perf_counter() - tic))
        print(rows[-1], flush=True)
        (Path(args.out) / name / "arm.json").write_text(json.dumps({"arm": arm, "overrides": overrides}))
    print(f"\n{args.steps} steps, batch {cfg.data.batch_size}, seed {args.seed}, data {args.data}\n")
    print("\n".join(rows))


def _row(arm: str, m: dict[str, float], seconds: float) -> str:
    cells = []
    for _, key, scale, fmt in COLUMNS:
        cells.append(
            f"{m['codes_sampled']:.0f} / {m['codes_argmax']:.0f}" if key is None else fmt.format(scale * m[key])
        )
    verdict = "informative" if informative(m) else "no information"
    return f"| {arm} | " + " | ".join(cells) + f" | {verdict} | {seconds:.0f} |"


if __name__ == "__main__":
    main()
