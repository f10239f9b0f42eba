"""Fine-tuning modes compared on the real ModelNet10 dev set: accuracy, time per epoch, trainable share.

    python bench/finetune_modes.py                         # pretrain once (Point-MAE), then 5 modes x 3 seeds
    python bench/finetune_modes.py --init runs/x/encoder.pth --seeds 0 --epochs 1   # your encoder, quicker
    python bench/finetune_modes.py --quick                 # a smoke run: a few steps per mode
    python bench/finetune_modes.py --modes lora prompt --seeds 0 --set optimizer.lr=0.005 --out runs/fm_lr

Every mode starts from the same pretrained encoder and, at a seed, sees the same clouds in the same
order (``classify_modelnet10_cpu``; only ``mode`` differs). Without ``--init`` the encoder is
pretrained here first with Point-MAE (``pretrain_cpu`` sizes, ``--pretrain-steps`` steps on the
ModelNet10 train split); which encoder was used is printed with the table. Reported per mode: test
accuracy of the final epoch (mean ± std over seeds), the paired difference to ``full`` at each
seed, the trainable share, and the wall time per epoch (training + evaluation, this machine).
Results go to ``OUT/results.json`` after every run; a rerun reuses the runs already finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from act3d.engine.config import load_config
from act3d.presets import resolve_preset
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.runner import train_task

REPO = Path(__file__).resolve().parents[1]
MODES = ("full", "mlp-linear", "mlp-3", "lora", "prompt")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "modelnet10"))
    parser.add_argument("--init", help="encoder to fine-tune (default: pretrain one here with Point-MAE)")
    parser.add_argument("--pretrain-steps", type=int, default=250)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "runs" / "finetune_modes"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of every fine-tune")
    parser.add_argument("--quick", action="store_true", help="4 steps per epoch, 1 seed, 1 epoch")
    return parser.parse_args()


def pretrain(args: argparse.Namespace, out: Path) -> Path:
    """A Point-MAE encoder of the CPU sizes, pretrained on the train split (reused when present)."""
    run = out / "pretrain_point_mae"
    if (run / "encoder.pth").is_file():
        return run / "encoder.pth"
    steps = 4 if args.quick else args.pretrain_steps
    overrides = ["objective=point_mae", "data.name=npz", f"data.root={args.data}", "data.options={}", "svm_eval=false"]
    overrides += ["train.epochs=1", f"train.max_steps_per_epoch={steps}", "scheduler.warmup_epochs=0"]
    config = load_config(PretrainConfig, resolve_preset("pretrain_cpu"), [*overrides, f"run.output_dir={out}"])
    config.run.name = run.name
    train_task(config, PretrainTask, show_progress=False)
    return run / "encoder.pth"


def finetune(args: argparse.Namespace, init: Path, mode: str, seed: int, out: Path) -> dict[str, float | str]:
    run = out / f"{mode}_seed{seed}"
    if (run / "bench.json").is_file():
        return json.loads((run / "bench.json").read_text())
    epochs = 1 if args.quick else args.epochs
    overrides = [f"init={init}", f"mode={mode}", f"data.root={args.data}", f"train.epochs={epochs}"]
    overrides += [f"train.seed={seed}", f"run.output_dir={out}", f"run.name={run.name}", *args.set]
    if args.quick:
        overrides.append("train.max_steps_per_epoch=4")
    config = load_config(ClassifyConfig, resolve_preset("classify_modelnet10_cpu"), overrides)
    tic = time.perf_counter()
    _, result = train_task(config, ClassificationTask, show_progress=False)
    row = {
        "acc": result.final_metrics["acc"],
        "best_acc": result.best_metrics["acc"],
        "seconds_per_epoch": (time.perf_counter() - tic) / epochs,
        "trainable": json.loads((run / "results.json").read_text())["trainable_parameters"],
    }
    (run / "bench.json").write_text(json.dumps(row))
    return row


def table(rows: dict[str, dict[int, dict]], seeds: list[int]) -> str:
    lines = [
        "| mode | trainable parameters | test acc %, final epoch | − full, paired | s / epoch |",
        "|---|---|---|---|---|",
    ]
    for mode, per_seed in rows.items():
        accs = np.array([per_seed[s]["acc"] for s in seeds])
        paired = "–"
        if mode != "full" and "full" in rows:
            diff = accs - np.array([rows["full"][s]["acc"] for s in seeds])
            paired = f"{diff.mean():+.2f} ± {diff.std(ddof=1) if len(diff) > 1 else 0:.2f}"
        spread = accs.std(ddof=1) if len(accs) > 1 else 0.0
        secs = np.mean([per_seed[s]["seconds_per_epoch"] for s in seeds])
        trainable = per_seed[seeds[0]]["trainable"]
        lines.append(f"| {mode} | {trainable} | {accs.mean():.2f} ± {spread:.2f} | {paired} | {secs:.0f} |")
    return "\n".join(lines)


def main() -> None:
    args = parse()
    seeds = args.seeds[:1] if args.quick else args.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    init = Path(args.init) if args.init else pretrain(args, out)
    rows: dict[str, dict[int, dict]] = {}
    for seed in seeds:
        for mode in args.modes:
            rows.setdefault(mode, {})[seed] = finetune(args, init, mode, seed, out)
            (out / "results.json").write_text(json.dumps({"init": str(init), "rows": rows}, indent=2))
    settings = f"{1 if args.quick else args.epochs} epoch(s) of classify_modelnet10_cpu {' '.join(args.set)}"
    print(f"encoder: {init}; seeds {seeds}; {settings}")
    print(table(rows, seeds))


if __name__ == "__main__":
    main()
