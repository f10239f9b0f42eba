"""``act3d codes``: the stage-I code diagnostics of a checkpoint, ours or official, without training."""

from __future__ import annotations

import json

import pytest
import torch
from tests.models.test_cross_modal_teacher import SIZES, TRUNK, official_checkpoint

from act3d.cli import main
from act3d.engine.config import DataConfig, load_config
from act3d.models.autoencoder import build_autoencoder
from act3d.tasks.codes import CodesConfig, merged_data
from act3d.tasks.common import build_split
from act3d.tasks.pretrain_teacher import code_diagnostics

RECORDED = {"name": "synthetic", "npoints": 128, "options": {"num_per_class": 2}, "batch_size": 4}


def our_checkpoint(path):
    """A stage-I checkpoint as ``act3d pretrain-teacher`` writes it (model, config with its data)."""
    torch.manual_seed(0)
    autoencoder = build_autoencoder(TRUNK, SIZES)
    config = {"task": "pretrain-teacher", "teacher": TRUNK.model_dump(), "model": SIZES.model_dump(), "data": RECORDED}
    torch.save({"model": autoencoder.state_dict(), "config": config}, path)
    return autoencoder


def test_codes_reads_the_checkpoints_own_data_and_reports_what_stage_one_evaluation_computes(tmp_path, capsys):
    autoencoder = our_checkpoint(tmp_path / "ckpt-best.pth").eval()
    out = tmp_path / "runs"
    argv = ["codes", str(tmp_path / "ckpt-best.pth"), "data.batch_size=3", f"run.output_dir={out}", "run.name=c"]
    assert main([*argv, "--device", "cpu"]) == 0
    results = json.loads((out / "c" / "results.json").read_text())
    assert results["kind"] == "codes" and "act3d pretrain-teacher" in results["checkpoint"]
    recorded = load_config(CodesConfig, out / "c" / "config.yaml", [])
    assert (recorded.data.npoints, recorded.data.options, recorded.data.batch_size) == (128, {"num_per_class": 2}, 3)
    expected = code_diagnostics(autoencoder, build_split(recorded.data, "test"), recorded.data, torch.device("cpu"), 0)
    assert results["rows"]["test"] == pytest.approx(expected)
    assert results["verdict"] in capsys.readouterr().out
    assert (out / "c" / "code_swap.png").is_file() and (out / "c" / "reconstructions.png").is_file()


def test_codes_converts_an_official_stage_one_with_the_patch_count_it_is_given(tmp_path):
    official_checkpoint(tmp_path / "ckpt_act_dvae.pth")
    data = [f"data.{k}={v}" for k, v in (("name", "synthetic"), ("npoints", 128), ("options", "{num_per_class: 1}"))]
    argv = ["codes", str(tmp_path / "ckpt_act_dvae.pth"), f"num_groups={SIZES.num_groups}", "pictures=0", "mode=train"]
    assert main([*argv, *data, f"run.output_dir={tmp_path}", "run.name=o", "--device", "cpu"]) == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "official ACT stage I" in results["checkpoint"] and results["mode"] == "train"
    assert 0 <= results["rows"]["test"]["code_information"] <= results["rows"]["test"]["code_entropy_max"]


def test_codes_names_a_missing_checkpoint_and_patches_that_do_not_fit(tmp_path, capsys):
    assert main(["codes", str(tmp_path / "nowhere.pth"), f"run.output_dir={tmp_path}"]) == 2
    assert "nowhere.pth: checkpoint not found" in capsys.readouterr().err
    our_checkpoint(tmp_path / "ckpt.pth")
    assert main(["codes", str(tmp_path / "ckpt.pth"), "data.npoints=4", f"run.output_dir={tmp_path}"]) == 2
    assert "model.num_groups=8 exceeds data.npoints=4" in capsys.readouterr().err


def test_fields_set_on_the_command_line_replace_the_recorded_ones_and_only_those():
    given = load_config(CodesConfig, None, ["data.augment.jitter=true", "data.root=elsewhere"]).data
    merged = merged_data({**RECORDED, "augment": {"shift": 0.5}}, given)
    assert merged.root == "elsewhere" and merged.npoints == 128 and merged.options == {"num_per_class": 2}
    assert merged.augment.jitter and merged.augment.shift == 0.5
    assert merged_data({}, DataConfig()) == DataConfig()
