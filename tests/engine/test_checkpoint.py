import os
import pickle
import random

import numpy as np
import pytest
import torch

from act3d.engine.checkpoint import atomic_path, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from act3d.errors import CheckpointError


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian half in numpy's state
    save_checkpoint({"rng": rng_state()}, tmp_path / "c.pth")
    expected = (random.random(), np.random.randn(3), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pth")["rng"])
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.randn(3), expected[1])
    torch.testing.assert_close(torch.rand(3), expected[2], rtol=0, atol=0)


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    save_checkpoint({"w": torch.ones(3)}, path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous one is intact"):
        save_checkpoint({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    torch.testing.assert_close(load_checkpoint(path)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]


@pytest.mark.parametrize("unique", [False, True])
def test_atomic_path_replaces_on_success_only(tmp_path, unique):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path, unique) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    names = []
    for text in ("new", "newer"):
        with atomic_path(path, unique) as tmp:
            assert path.read_text() != text  # not visible before the block ends
            tmp.write_text(text)
            names.append(tmp.name)
        assert path.read_text() == text and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert (names[0] != names[1]) == unique  # writers of a shared cache get a file each


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": _Exploit()}))
    with pytest.raises(CheckpointError, match="evil.pth: not a readable checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint(tmp_path / "junk.pth")


def test_numpy_scalars_load_but_numpy_arrays_and_objects_stay_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scalars = {"acc": np.float64(91.5), "epoch": np.int64(3), "flag": np.bool_(True), "half": np.float16(0.5)}
    save_checkpoint({"metrics": scalars}, tmp_path / "scalars.pth")
    loaded = load_checkpoint(tmp_path / "scalars.pth")["metrics"]
    assert loaded == scalars and type(loaded["acc"]) is np.float64
    for name, value in [("array", np.arange(3)), ("objects", np.array([{"a": 1}], dtype=object))]:
        torch.save({"metrics": value}, tmp_path / f"{name}.pth")
        with pytest.raises(CheckpointError, match=f"{name}.pth: not a readable checkpoint"):
            load_checkpoint(tmp_path / f"{name}.pth")
    exploit = np.array([_Exploit()], dtype=object)
    path = tmp_path / "evil_numpy.pth"
    path.write_bytes(pickle.dumps({"metrics": exploit}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
