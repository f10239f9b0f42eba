"""The ``act3d`` command line: ``act3d <command> --config PRESET [key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from act3d.errors import Act3dError, ConfigError
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
        "classification: from scratch, fine-tuning (init=CKPT), probes (mode=mlp-linear|mlp-3), mode=lora|prompt",
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
    "codes": "act3d codes runs/act_stage1/ckpt-best.pth data.root=../shared/data/modelnet10",
    "embed": "act3d embed runs/pretrain/encoder.pth meshes/ --out features.npy",
    "presets": "act3d presets",
    "export": "act3d export runs/pretrain exported/act3d-dinov2-modelnet10",
    "data": "act3d data check data/ScanObjectNN",
    "pipeline": "act3d pipeline --config pipeline_cpu stage1.train.epochs=2",
    "demo": "act3d demo --device cpu",
}
"""One runnable line per command, shown at the end of its ``--help``."""

DATA_LAYOUTS = ("shapenet55", "modelnet", "modelnet_fewshot", "scanobjectnn", "shapenetpart", "npz", "folder")
"""The layouts ``act3d data check --dataset`` names (act3d.data.doctor.LAYOUTS; kept here for a fast ``--help``)."""

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


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser (``--help``, the list of commands) and each command's own parser."""
    parser = argparse.ArgumentParser(
        prog="act3d",
        description="ACT: 3D point-cloud transformers taught by pretrained 2D/language transformers.",
        epilog="Presets ship inside the package (see `act3d presets`). Multi-GPU: torchrun --nproc-per-node N "
        "-m act3d.cli <command> ...",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name, command in TRAIN_COMMANDS.items():
        _run_options(_command(sub, name, command.help), "continue the run in this folder exactly")
    text = "N-way K-shot fine-tuning over folds (official fold files or generated episodes): mean ± std"
    _run_options(_command(sub, "fewshot", text), "continue this sweep: finished folds are kept")
    text = "linear SVM on frozen [CLS ; max-pool] features of an encoder (init=CHECKPOINT, or init=random)"
    _run_options(_command(sub, "svm", text), "keep this run's results, or its finished seeds", progress=False)
    codes = _command(sub, "codes", "do a stage-I checkpoint's codes carry information about their patches?")
    codes.add_argument("checkpoint", help="a stage-I ckpt-best.pth, or the official ACT ckpt_act_dvae.pth")
    codes.add_argument("--device", default="auto", help=DEVICE_HELP)
    codes.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="e.g. data.root=DIR, data.test_split=train, mode=train (as stage II), num_groups=64 (official)",
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
    exp = _command(
        sub, "export", "a pretrained encoder as a shareable folder: model.safetensors, config.json, README.md"
    )
    exp.add_argument("run_dir", help="a pretrain run (its encoder.pth) or a pipeline run (stage2/encoder.pth)")
    exp.add_argument("out_dir", help="the folder to write (new or empty); upload it to the Hugging Face Hub as it is")
    exp.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty OUT_DIR")
    data = _command(sub, "data", "data tools: `act3d data check ROOT` (the data doctor)")
    check = data.add_subparsers(dest="action", required=True, metavar="<action>").add_parser(
        "check",
        help="which layout ROOT holds and everything that would stop training on it (writes nothing)",
        description="Read ROOT with the readers training uses; exit 0 only when complete and readable.",
        epilog=f"example:\n  {EXAMPLES['data']}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("root", help="the dataset folder")
    check.add_argument("--dataset", help="the layout, when not detected: " + ", ".join(DATA_LAYOUTS))
    check.add_argument("--limit", type=int, metavar="N", help="read at most N samples per split (default: all)")
    check.add_argument("--subset", action="store_true", help="a partial copy: counts below the official ones warn")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    for name, text in (
        ("pipeline", "the whole chain: stage I → stage II → linear SVM + fine-tuning, one run folder"),
        ("demo", "the pipeline on the built-in synthetic shapes, sized for a CPU (preset pipeline_cpu)"),
    ):
        _run_options(_command(sub, name, text), "continue this pipeline: finished stages are kept")
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``act3d`` parser (see :func:`parse_args` for how a command line is read)."""
    return build_parsers()[0]


def _run_options(parser: argparse.ArgumentParser, resume_help: str, progress: bool = True) -> None:
    """The options every command that trains or evaluates shares, declared once."""
    parser.add_argument("--config", help="YAML preset (path, or a name from `act3d presets`)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--resume", metavar="RUN_DIR", help=resume_help)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run once per seed in <run>/seed<k>/, then mean ± std over seeds at the top (e.g. --seeds 0 1 2)",
    )
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. optimizer.lr=1e-4; the encoder is always init=CHECKPOINT (or init=random)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read a command line; a command's options and ``key=value`` overrides may come in any order."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, commands = build_parsers()
    if not argv or argv[0] not in commands or argv[0] == "data":
        return parser.parse_args(argv)  # help, the list of commands, nested commands, or the error naming them
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def run_train_command(name: str, args: argparse.Namespace) -> Path:
    from act3d.engine.config import load_config
    from act3d.tasks.runner import train_task

    schema, make_task = TRAIN_COMMANDS[name].load()
    preset, overrides, resume = _resumable(args)
    config = load_config(schema, preset, overrides)
    if args.seeds:
        from act3d.tasks.runner import train_seeds

        run_dir = train_seeds(config, make_task, args.seeds, preset, resume, args.device, not args.no_progress)
    else:
        run_dir, _ = train_task(config, make_task, preset, resume, args.device, not args.no_progress)
    _print_results(run_dir)
    return run_dir


def _resumable(args: argparse.Namespace) -> tuple[Path | None, list[str], bool]:
    """Preset and overrides of a command that may ``--resume RUN_DIR`` (its recorded config)."""
    for item in args.overrides:
        if "=" not in item:
            hint = f"init={item}" if item == "random" or Path(item).suffix in {".pth", ".pt", ".safetensors"} else ""
            raise ConfigError(f"{item!r} is not key=value" + (f": the encoder is given as {hint}" if hint else ""))
    preset = resolve_preset(args.config)
    if args.resume is None:
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


def run_codes_command(args: argparse.Namespace) -> None:
    from act3d.engine.config import load_config
    from act3d.tasks.codes import CodesConfig, run_codes

    config = load_config(CodesConfig, None, [*args.overrides, f"checkpoint={args.checkpoint}"])
    _print_results(run_codes(config, None, args.device))


def run_embed_command(args: argparse.Namespace) -> None:
    from act3d.engine.distributed import resolve_device
    from act3d.tasks.embed import embed_files

    device = resolve_device(args.device)
    print(embed_files(args.checkpoint, args.inputs, args.out, args.npoints, device, args.preset))


def run_pipeline_command(args: argparse.Namespace) -> None:
    from act3d.tasks.pipeline import PipelineConfig, load_pipeline_config, run_pipeline, with_seed
    from act3d.tasks.runner import sweep_seeds

    if args.command == "demo" and args.config is None and args.resume is None:
        args.config = "pipeline_cpu"
    preset, overrides, resume = _resumable(args)
    config = load_pipeline_config(preset, overrides)
    progress = not args.no_progress
    if not args.seeds:
        run_dir = run_pipeline(config, preset, args.device, progress, resume)
    else:

        def one(cfg: PipelineConfig, _resume: bool) -> Path:  # a seed folder holds stage folders
            return run_pipeline(cfg, None, args.device, progress, (Path(cfg.run.output_dir) / cfg.run.name).is_dir())

        run_dir = sweep_seeds(config, args.seeds, one, "pipeline", preset, resume, seed_config=with_seed)
    _print_results(run_dir)


def run_export_command(args: argparse.Namespace) -> None:
    from act3d.tasks.export import export_run

    out = export_run(args.run_dir, args.out_dir, args.overwrite)
    print(f"exported to {out}: " + ", ".join(sorted(p.name for p in out.iterdir() if not p.name.startswith("."))))
    print(f'load it with act3d.load_encoder("{out}"), or init={out} in any command')


def run_data_command(args: argparse.Namespace) -> int:
    from act3d.tasks.data_check import run_data_check

    return run_data_check(args.root, args.dataset, args.limit, args.subset, args.json)


HANDLERS: dict[str, Callable[[argparse.Namespace], Any]] = {
    **{name: (lambda args: run_train_command(args.command, args)) for name in TRAIN_COMMANDS},
    "fewshot": run_fewshot_command,
    "svm": run_svm_command,
    "codes": run_codes_command,
    "embed": run_embed_command,
    "presets": lambda args: print("\n".join(preset_names())),
    "data": run_data_command,
    "export": run_export_command,
    "pipeline": run_pipeline_command,
    "demo": run_pipeline_command,
}
"""What each command runs (its options are declared in :func:`build_parser`, its example in :data:`EXAMPLES`)."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        status = HANDLERS[args.command](args)
    except Act3dError as err:
        print(f"act3d: error: {err}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
