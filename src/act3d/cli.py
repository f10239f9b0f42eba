"""The ``act3d`` command line: ``act3d <command> --config PRESET [key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from act3d.errors import Act3dError
from act3d.presets import preset_names, resolve_preset


@dataclass(frozen=True)
class TrainCommand:
    """A training sub-command: its config schema and task factory, imported lazily (fast ``--help``)."""

    help: str
    module: str
    schema: str
    task: str

    def load(self) -> tuple[type, Callable[[Any], Any]]:
        import importlib

        mod = importlib.import_module(self.module)
        return getattr(mod, self.schema), getattr(mod, self.task)


TRAIN_COMMANDS = {
    "classify": TrainCommand(
        "classification: from scratch, fine-tuning (init=CKPT) or MLP probes (mode=mlp-linear|mlp-3)",
        "act3d.tasks.classify",
        "ClassifyConfig",
        "ClassificationTask",
    ),
    "partseg": TrainCommand(
        "part segmentation (ShapeNetPart protocol): instance and class mIoU",
        "act3d.tasks.partseg",
        "PartSegConfig",
        "PartSegTask",
    ),
    "pretrain-teacher": TrainCommand(
        "ACT stage I: train the cross-modal autoencoder around a frozen pretrained transformer",
        "act3d.tasks.pretrain_teacher",
        "PretrainTeacherConfig",
        "PretrainTeacherTask",
    ),
    "pretrain": TrainCommand(
        "ACT stage II: masked point modeling distilled from the stage-I teacher (or objective=point_mae)",
        "act3d.tasks.pretrain",
        "PretrainConfig",
        "PretrainTask",
    ),
}


EXAMPLES = {
    "classify": "act3d classify --config finetune_modelnet40 init=runs/pretrain/encoder.pth --seeds 0 1 2",
    "partseg": "act3d partseg --config partseg_shapenetpart init=runs/pretrain/encoder.pth data.root=data/shapenetpart",
    "pretrain-teacher": "act3d pretrain-teacher --config act_stage1_modelnet10_cpu data.root=../shared/data/modelnet10",
    "pretrain": "act3d pretrain --config pretrain_cpu teacher_checkpoint=runs/act_stage1/ckpt-best.pth",
    "fewshot": "act3d fewshot --config fewshot_modelnet10_cpu init=runs/pretrain/encoder.pth",
    "svm": "act3d svm --config svm_modelnet10_cpu init=runs/pretrain/encoder.pth   (or init=random)",
    "embed": "act3d embed runs/pretrain/encoder.pth meshes/ --out features.npy",
    "presets": "act3d presets",
    "pipeline": "act3d pipeline --config pipeline_cpu stage1.train.epochs=2",
    "demo": "act3d demo --device cpu",
}
"""One runnable line per command, shown at the end of its ``--help``."""

DEVICE_HELP = "auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps"


def _command(sub: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` ends with its example (:data:`EXAMPLES`)."""
    return sub.add_parser(
        name,
        help=text,
        description=text,
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="act3d",
        description="ACT: 3D point-cloud transformers taught by pretrained 2D/language transformers.",
        epilog="Presets ship inside the package (see `act3d presets`). Multi-GPU: torchrun --nproc-per-node N "
        "-m act3d.cli <command> ...",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name, command in TRAIN_COMMANDS.items():
        p = _command(sub, name, command.help)
        p.add_argument("--config", help="YAML preset (path, or a name from `act3d presets`)")
        p.add_argument("--device", default="auto", help=DEVICE_HELP)
        p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder exactly")
        p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optimizer.lr=1e-4")
        if name in SEEDED_COMMANDS:
            _add_seeds(p)
        if name == "pretrain-teacher":
            p.add_argument(
                "--teacher",
                help="teacher name (see docs/teachers.md); 'random' keeps the architecture with random weights "
                "(an ablation: the run's results say RANDOM WEIGHTS)",
            )
    text = "N-way K-shot fine-tuning over folds (official fold files or generated episodes): mean ± std"
    few = _command(sub, "fewshot", text)
    few.add_argument("--config", help="YAML preset (path, or a name from `act3d presets`)")
    few.add_argument("--device", default="auto", help=DEVICE_HELP)
    few.add_argument("--resume", metavar="RUN_DIR", help="continue this sweep: finished folds are kept")
    few.add_argument("--no-progress", action="store_true")
    _add_seeds(few)
    few.add_argument("overrides", nargs="*", metavar="key=value")
    text = "linear SVM on frozen [CLS ; max-pool] features of an encoder (or init=random, the baseline)"
    svm = _command(sub, "svm", text)
    svm.add_argument("--config", help="YAML preset (path, or a name from `act3d presets`)")
    svm.add_argument("--device", default="auto", help=DEVICE_HELP)
    svm.add_argument("--resume", metavar="RUN_DIR", help="keep this run's results, or its finished seeds")
    _add_seeds(svm)
    svm.add_argument(
        "overrides",
        nargs="*",
        metavar="[CHECKPOINT] key=value",
        help="the encoder checkpoint, or 'random' (default: the config's init), then dotted overrides",
    )
    emb = _command(sub, "embed", "features of point-cloud/mesh files from a pretrained encoder")
    emb.add_argument("checkpoint", help="encoder.pth, a pretrain checkpoint, or an official ACT/Point-MAE one")
    emb.add_argument("inputs", nargs="+", help="files or folders (.ply .off .obj .stl .npy .npz .txt .xyz)")
    emb.add_argument("--out", default="features.npy", help="output .npy (names go to the matching .txt)")
    emb.add_argument("--npoints", type=int, default=1024, help="FPS-subsample each cloud to this many points")
    emb.add_argument("--device", default="auto", help=DEVICE_HELP)
    emb.add_argument(
        "--preset",
        help="patch settings of an official checkpoint: modelnet, fewshot, shapenet (64 groups), scan, partseg "
        "(128), modelnet8k (512); official checkpoints do not record them",
    )
    _command(sub, "presets", "list the config presets shipped in the package")
    for name, text in (
        ("pipeline", "the whole chain: stage I → stage II → linear SVM + fine-tuning, one run folder"),
        ("demo", "the pipeline on the built-in synthetic shapes, sized for a CPU (preset pipeline_cpu)"),
    ):
        p = _command(sub, name, text)
        p.add_argument("--config", help="YAML preset" + (" (default: pipeline_cpu)" if name == "demo" else ""))
        p.add_argument("--device", default="auto", help=DEVICE_HELP)
        p.add_argument("--resume", metavar="RUN_DIR", help="continue this pipeline: finished stages are kept")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


SEEDED_COMMANDS = ("classify", "partseg")


def _add_seeds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run once per seed in <run>/seed<k>/, then mean ± std over seeds at the top (e.g. --seeds 0 1 2)",
    )


def run_train_command(name: str, args: argparse.Namespace) -> Path:
    from act3d.engine.config import load_config
    from act3d.tasks.runner import train_task

    schema, make_task = TRAIN_COMMANDS[name].load()
    preset, overrides, resume = _resumable(args)
    config = load_config(schema, preset, overrides)
    teacher = getattr(args, "teacher", None)
    if teacher:
        current = config.teacher.name.removeprefix("random:")
        config.teacher.name = f"random:{current}" if teacher == "random" else teacher
    if getattr(args, "seeds", None):
        from act3d.tasks.runner import train_seeds

        run_dir = train_seeds(config, make_task, args.seeds, preset, resume, args.device, not args.no_progress)
    else:
        run_dir, _ = train_task(config, make_task, preset, resume, args.device, not args.no_progress)
    _print_results(run_dir)
    return run_dir


def _resumable(args: argparse.Namespace) -> tuple[Path | None, list[str], bool]:
    """Preset and overrides of a command that may ``--resume RUN_DIR`` (its recorded config)."""
    preset = resolve_preset(args.config)
    if getattr(args, "resume", None) is None:
        return preset, list(args.overrides), False
    run_dir = Path(args.resume)
    overrides = [*args.overrides, f"run.output_dir={run_dir.parent}", f"run.name={run_dir.name}"]
    return preset or run_dir / "config.yaml", overrides, True


def _print_results(run_dir: Path) -> None:
    print((run_dir / "results.md").read_text() if (run_dir / "results.md").exists() else "")
    print(f"run folder: {run_dir}")


def run_fewshot_command(args: argparse.Namespace) -> Path:
    from act3d.engine.config import load_config
    from act3d.tasks.fewshot import FewShotConfig, run_fewshot
    from act3d.tasks.runner import sweep_seeds

    preset, overrides, resume = _resumable(args)
    config = load_config(FewShotConfig, preset, overrides)
    progress = not args.no_progress
    if not args.seeds:
        run_dir = run_fewshot(config, preset, args.device, progress, resume)
    else:

        def one(cfg: FewShotConfig, _resume: bool) -> Path:  # a seed folder holds fold folders, no checkpoint
            return run_fewshot(cfg, None, args.device, progress, (Path(cfg.run.output_dir) / cfg.run.name).is_dir())

        run_dir = sweep_seeds(config, args.seeds, one, "fewshot", preset, resume, ["each seed: mean over folds"])
    _print_results(run_dir)
    return run_dir


def run_svm_command(args: argparse.Namespace) -> Path:
    from act3d.engine.config import load_config
    from act3d.tasks.runner import sweep_seeds
    from act3d.tasks.svm import SvmConfig, run_svm

    overrides = list(args.overrides)
    if overrides and ("=" not in overrides[0] or Path(overrides[0]).exists()):  # `act3d svm CHECKPOINT ...`
        args.overrides = [*overrides[1:], f"init={overrides[0]}"]
    preset, overrides, resume = _resumable(args)
    config = load_config(SvmConfig, preset, overrides)
    finished = Path(args.resume or "") / "results.json"
    if resume and not args.seeds and finished.is_file():
        run_dir = finished.parent  # a finished SVM run: its results stand (a sweep keeps its finished seeds)
    elif not args.seeds:
        run_dir = run_svm(config, preset, args.device)
    else:
        one = lambda cfg, _: run_svm(cfg, None, args.device)  # noqa: E731
        run_dir = sweep_seeds(config, args.seeds, one, "svm", preset, resume)
    _print_results(run_dir)
    return run_dir


def run_embed_command(args: argparse.Namespace) -> None:
    from act3d.engine.distributed import resolve_device
    from act3d.tasks.embed import embed_files

    device = resolve_device(args.device)
    print(embed_files(args.checkpoint, args.inputs, args.out, args.npoints, device, args.preset))


def run_pipeline_command(args: argparse.Namespace) -> None:
    from act3d.tasks.pipeline import load_pipeline_config, run_pipeline

    if args.command == "demo" and args.config is None and args.resume is None:
        args.config = "pipeline_cpu"
    preset, overrides, resume = _resumable(args)
    config = load_pipeline_config(preset, overrides)
    _print_results(run_pipeline(config, preset, args.device, not args.no_progress, resume))


HANDLERS: dict[str, Callable[[argparse.Namespace], Any]] = {
    **{name: (lambda args: run_train_command(args.command, args)) for name in TRAIN_COMMANDS},
    "fewshot": run_fewshot_command,
    "svm": run_svm_command,
    "embed": run_embed_command,
    "presets": lambda args: print("\n".join(preset_names())),
    "pipeline": run_pipeline_command,
    "demo": run_pipeline_command,
}
"""What each command runs (its options are declared in :func:`build_parser`, its example in :data:`EXAMPLES`)."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value items after an option (`act3d svm CKPT --config X key=value`) land in `extra`.
    if extra and hasattr(args, "overrides") and not any(item.startswith("-") for item in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        HANDLERS[args.command](args)
    except Act3dError as err:
        print(f"act3d: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
