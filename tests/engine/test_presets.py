"""The presets shipped inside the package: found by name, each valid for the command it belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest

from act3d.engine.config import load_config
from act3d.presets import preset_dir, preset_names, resolve_preset
from act3d.tasks.classify import ClassifyConfig
from act3d.tasks.fewshot import FewShotConfig
from act3d.tasks.partseg import PartSegConfig
from act3d.tasks.pipeline import load_pipeline_config
from act3d.tasks.pretrain import PretrainConfig
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig
from act3d.tasks.svm import SvmConfig

SCHEMAS = {
    "act_stage1_": PretrainTeacherConfig,
    "act_pretrain_": PretrainConfig,
    "point_mae_": PretrainConfig,
    "pretrain_": PretrainConfig,
    "classify_": ClassifyConfig,
    "finetune_": ClassifyConfig,
    "linear_": ClassifyConfig,
    "mlp3_": ClassifyConfig,
    "fewshot_": FewShotConfig,
    "svm_": SvmConfig,
    "partseg_": PartSegConfig,
}


def test_presets_ship_inside_the_package():
    assert preset_dir().parent == Path(__import__("act3d").__file__).parent
    assert {"pipeline_cpu", "pretrain_cpu", "act_stage1_shapenet55", "finetune_modelnet40"} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_valid_for_its_command(name):
    if name.startswith("pipeline_"):
        load_pipeline_config(resolve_preset(name), [])
        return
    (schema,) = [schema for prefix, schema in SCHEMAS.items() if name.startswith(prefix)]
    needs = ["teacher_checkpoint=stage1/ckpt-best.pth"] if schema is PretrainConfig else []  # given per run
    load_config(schema, resolve_preset(name), needs)


def test_resolve_preset_by_name_by_file_name_by_path_and_unknown(tmp_path):
    shipped = preset_dir() / "pretrain_cpu.yaml"
    assert resolve_preset("pretrain_cpu") == shipped
    assert resolve_preset("pretrain_cpu.yaml") == shipped
    own = tmp_path / "pretrain_cpu.yaml"
    own.write_text("base: null\n")
    assert resolve_preset(own) == own  # an existing file wins over the shipped preset of that name
    assert resolve_preset("no_such_preset") == Path("no_such_preset")
    assert resolve_preset(None) is None
