"""`act3d export`: a run's encoder as model.safetensors + config.json + README.md, read back by load_encoder
from the folder and from a Hugging Face Hub cache (never the network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from act3d import load_encoder
from act3d.cli import main
from act3d.errors import CheckpointError
from act3d.models.encoder_io import is_hub_id, save_encoder_folder
from act3d.models.point_transformer import EncoderConfig, PointEncoder
from helpers import TINY_ENCODER, TINY_SYNTHETIC


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-step Point-MAE pretrain run on the built-in shapes."""
    out = tmp_path_factory.mktemp("runs")
    argv = ["pretrain", "--config", "pretrain_cpu", "objective=point_mae", "--no-progress", *TINY_ENCODER]
    argv += [*TINY_SYNTHETIC, "train.epochs=1", "train.max_steps_per_epoch=2", "svm_eval=false"]
    assert main([*argv, f"run.output_dir={out}", "run.name=mae", "decoder_heads=2"]) == 0
    return out / "mae"


def embeddings(encoder: PointEncoder) -> torch.Tensor:
    torch.manual_seed(0)
    points = torch.rand(3, 256, 3)
    with torch.no_grad():
        return encoder.eval().embed(points)


def test_export_round_trips_to_identical_embeddings(pretrain_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "act3d-mae-tiny"
    assert main(["export", str(pretrain_run), str(out)]) == 0
    assert "exported to" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert all(p.stat().st_mode & 0o044 for p in out.iterdir()), "readable by others, like any file to share"
    assert torch.equal(embeddings(load_encoder(out)), embeddings(load_encoder(pretrain_run / "encoder.pth")))
    card = json.loads((out / "config.json").read_text())
    assert card["format"] == "act3d-encoder" and card["encoder"]["dim"] == 32
    assert card["objective"] == "point_mae" and card["teacher"] is None and card["data"]["name"] == "synthetic"
    assert card["seed"] == 0 and "git_commit" in card and "final epoch" in card["results"]
    assert str(pretrain_run.parent) not in (out / "config.json").read_text() and card["source"] == "encoder.pth"
    assert card["source_run"] == "mae", "names, not the machine's paths"
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: act3d") and "Point-MAE" in readme and "act3d.load_encoder" in readme
    assert "| final epoch |" in readme, "the card carries the run's metrics"


def test_export_never_overwrites_without_asking(pretrain_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["export", str(pretrain_run), str(out)]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(pretrain_run), str(out), "--overwrite"]) == 0
    assert (out / "mine.txt").read_text() == "keep me" and (out / "model.safetensors").is_file()
    assert main(["export", str(tmp_path), str(tmp_path / "x")]) == 2
    assert "holds no encoder.pth or stage2/encoder.pth" in capsys.readouterr().err


def test_an_exported_folder_is_an_init_for_fine_tuning(pretrain_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    main(["export", str(pretrain_run), str(out)])
    argv = ["classify", "--config", "classify_cpu", "--no-progress", *TINY_ENCODER, *TINY_SYNTHETIC, f"init={out}"]
    argv += ["train.epochs=1", "train.max_steps_per_epoch=1", f"run.output_dir={tmp_path}", "run.name=ft"]
    assert main(argv) == 0
    assert str(out) in json.loads((tmp_path / "ft" / "results.json").read_text())["init"]


def tiny_folder(folder: Path) -> PointEncoder:
    config = EncoderConfig(dim=16, depth=1, num_heads=2, num_groups=8, group_size=8)
    torch.manual_seed(1)
    encoder = PointEncoder(**config.model_dump())
    save_encoder_folder(encoder, config, folder, {"source": "test"})
    return encoder


def test_folder_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    tiny_folder(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_encoder(tmp_path / "m")
    tiny_folder(tmp_path / "v")
    card = json.loads((tmp_path / "v" / "config.json").read_text())
    (tmp_path / "v" / "config.json").write_text(json.dumps({**card, "format_version": 99}))
    with pytest.raises(CheckpointError, match=r"format_version 99 is newer"):
        load_encoder(tmp_path / "v")
    tiny_folder(tmp_path / "k")
    (tmp_path / "k" / "config.json").write_text(json.dumps({**card, "encoder": {**card["encoder"], "dim": 24}}))
    with pytest.raises(CheckpointError, match=r"encoder weights do not match: .*shape mismatch"):
        load_encoder(tmp_path / "k")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json: does not exist"):
        load_encoder(tmp_path / "empty")


def hub_cache(cache: Path, repo_id: str) -> Path:
    """The layout huggingface_hub keeps a downloaded repository in (refs/main → snapshots/<commit>/)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_a_hub_repository_loads_from_the_cache_and_never_from_the_network(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # a download attempt would fail here, not reach out
    monkeypatch.delenv("ACT3D_ALLOW_DOWNLOAD", raising=False)
    encoder = tiny_folder(hub_cache(tmp_path / "cache", "someone/act3d-tiny"))
    assert is_hub_id("someone/act3d-tiny") and is_hub_id("hf:someone/act3d-tiny") and not is_hub_id(str(tmp_path))
    for name in ("someone/act3d-tiny", "hf:someone/act3d-tiny"):
        assert torch.equal(embeddings(load_encoder(name)), embeddings(encoder))
    with pytest.raises(
        CheckpointError, match=r"someone/absent: not found in the Hugging Face cache; downloads are off"
    ):
        load_encoder("someone/absent")
    monkeypatch.setenv("ACT3D_ALLOW_DOWNLOAD", "1")
    assert torch.equal(embeddings(load_encoder("someone/act3d-tiny")), embeddings(encoder))
    with pytest.raises(CheckpointError, match=r"someone/absent: not found in the Hugging Face cache \("):
        load_encoder("someone/absent")


def test_provenance_names_the_stage_one_teacher_of_an_act_run(tmp_path: Path) -> None:
    import yaml

    from act3d.tasks.export import model_card, provenance

    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    stage1.mkdir()
    stage2.mkdir()
    teacher = {"name": "dinov2_vits14_imgfocus", "num_blocks": 4, "prompts": 8}
    (stage1 / "config.yaml").write_text(yaml.safe_dump({"teacher": teacher, "data": {"name": "npz"}}))
    act = {"objective": "act", "teacher_checkpoint": str(stage1 / "ckpt-best.pth"), "data": {"name": "npz"}}
    (stage2 / "config.yaml").write_text(yaml.safe_dump(act))
    (stage2 / "environment.json").write_text(json.dumps({"seed": 3, "git_commit": "abc"}))
    meta = provenance(tmp_path, stage2 / "encoder.pth")
    assert meta["teacher"] == {**teacher, "checkpoint": "ckpt-best.pth", "stage1_data": "npz"}
    assert meta["seed"] == 3 and meta["git_commit"] == "abc" and meta["objective"] == "act"
    card = model_card("x", meta, EncoderConfig())
    assert "| cross-modal teacher | dinov2_vits14_imgfocus (4 blocks, 8 prompts) |" in card and "ACT stage II" in card
