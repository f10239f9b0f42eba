"""Every ``act3d`` command's ``--help`` ends with an example, and every example is a valid command line."""

from __future__ import annotations

import shlex

import pytest

from act3d.cli import EXAMPLES, TRAIN_COMMANDS, build_parser, build_parsers, main, parse_args
from act3d.engine.config import load_config
from act3d.presets import resolve_preset
from act3d.tasks.codes import CodesConfig
from act3d.tasks.fewshot import FewShotConfig
from act3d.tasks.pipeline import load_pipeline_config
from act3d.tasks.svm import SvmConfig

SCHEMAS = {"fewshot": FewShotConfig, "svm": SvmConfig}


def commands() -> list[str]:
    return list(build_parser()._subparsers._group_actions[0].choices)


def test_every_command_has_an_example_in_its_help(capsys):
    assert set(commands()) == set(EXAMPLES)
    for name in commands():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  {EXAMPLES[name]}" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_parses_and_its_config_validates(name):
    argv = shlex.split(EXAMPLES[name].split("   (")[0])[1:]
    args = parse_args(argv)
    assert args.command == name
    if name == "codes":
        load_config(CodesConfig, None, [*args.overrides, f"checkpoint={args.checkpoint}"])
    if not hasattr(args, "config") or name == "demo":
        return
    preset, overrides = resolve_preset(args.config), list(args.overrides)
    assert preset is not None and preset.is_file(), f"{name}: example preset {args.config} is not shipped"
    if name == "pipeline":
        load_pipeline_config(preset, overrides)
    elif name in TRAIN_COMMANDS:
        load_config(TRAIN_COMMANDS[name].load()[0], preset, overrides)
    else:
        load_config(SCHEMAS[name], preset, overrides)


def test_every_command_that_runs_on_a_device_defaults_to_auto():
    parser = build_parser()
    for name in commands():
        action = {a.dest: a for a in parser._subparsers._group_actions[0].choices[name]._actions}.get("device")
        assert action is None or action.default == "auto", name


RUN_OPTIONS = {"config", "device", "resume", "seeds", "overrides"}


def test_every_command_that_trains_or_evaluates_has_the_same_options():
    _, parsers = build_parsers()
    runs = [name for name, p in parsers.items() if "config" in {a.dest for a in p._actions}]
    assert set(runs) == {*TRAIN_COMMANDS, "fewshot", "svm", "pipeline", "demo"}
    for name in runs:
        assert {a.dest for a in parsers[name]._actions} >= RUN_OPTIONS, name


def test_options_and_overrides_may_come_in_any_order():
    args = parse_args(["svm", "init=random", "--config", "svm_cpu", "data.npoints=64", "--seeds", "1", "2"])
    assert args.command == "svm" and args.config == "svm_cpu" and args.seeds == [1, 2]
    assert args.overrides == ["init=random", "data.npoints=64"]
    args = parse_args(["pretrain", "teacher_checkpoint=t.pth", "--device", "cpu", "train.epochs=1", "--seeds", "5"])
    assert args.overrides == ["teacher_checkpoint=t.pth", "train.epochs=1"] and args.seeds == [5]


def test_an_encoder_given_without_init_is_an_error_that_says_how(capsys):
    assert main(["svm", "runs/x/encoder.pth", "--config", "svm_cpu"]) == 2
    assert "the encoder is given as init=runs/x/encoder.pth" in capsys.readouterr().err
    assert main(["classify", "--config", "classify_cpu", "epochs"]) == 2
    assert "'epochs' is not key=value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["svm", "--config", "svm_cpu", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
