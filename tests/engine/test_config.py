import pytest

from act3d.engine.config import load_config
from act3d.errors import ConfigError
from act3d.tasks.classify import ClassifyConfig


def write(path, text):
    path.write_text(text)
    return path


def test_preset_inheritance_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", "optimizer:\n  lr: 0.001\n  weight_decay: 0.05\ndata:\n  npoints: 2048\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\noptimizer:\n  lr: 0.0005\n")
    config = load_config(ClassifyConfig, child, ["data.batch_size=8", "train.precision=bf16"])
    assert config.optimizer.lr == 0.0005
    assert config.optimizer.weight_decay == 0.05
    assert config.data.npoints == 2048
    assert config.data.batch_size == 8
    assert config.train.precision == "bf16"


def test_unknown_key_is_named(tmp_path):
    preset = write(tmp_path / "p.yaml", "optimizer:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"optimizer\.learning_rate: unknown key"):
        load_config(ClassifyConfig, preset)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        load_config(ClassifyConfig, None, ["optimizer.lr=fast"])
    with pytest.raises(ConfigError, match=r"train\.precision"):
        load_config(ClassifyConfig, None, ["train.precision=fp8"])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(ClassifyConfig, None, ["optimizer.lr"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(ClassifyConfig, tmp_path / "nope.yaml")


def test_inheritance_loop_detected(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(ClassifyConfig, tmp_path / "a.yaml")


def test_nested_section_base(tmp_path):
    write(tmp_path / "cls.yaml", "optimizer:\n  lr: 0.002\ndata:\n  npoints: 256\n")
    write(tmp_path / "pipe.yaml", "outer:\n  base: cls.yaml\n  data:\n    batch_size: 4\n")
    from act3d.engine.config import _read_preset

    raw = _read_preset(tmp_path / "pipe.yaml")
    assert raw == {"outer": {"optimizer": {"lr": 0.002}, "data": {"npoints": 256, "batch_size": 4}}}


def test_empty_mapping_clears_the_inherited_one(tmp_path):
    write(tmp_path / "base.yaml", "data:\n  options: {num_per_class: 4}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\ndata:\n  name: npz\n  options: {}\n")
    config = load_config(ClassifyConfig, child)
    assert config.data.options == {} and config.data.name == "npz"
