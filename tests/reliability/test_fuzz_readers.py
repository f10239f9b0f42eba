"""Fuzzed readers: a slice of ``bench/fuzz.py``'s campaign, plus the hostile inputs it must always refuse.

Every generated input must load correctly or raise ``DataError`` / ``CheckpointError`` naming the
damaged file, within the per-input time limit, without running code. The full campaign (5,000
inputs, a table per reader, counts in docs/reliability.md) is ``.venv/bin/python bench/fuzz.py``.
Set ``ACT3D_FUZZ_SEED`` to explore other inputs than the fixed default.
"""

from __future__ import annotations

import io
import os
import pickle
import time

import h5py
import numpy as np
import pytest
import torch

from act3d.data import build_dataset
from act3d.data.io import read_h5, read_point_file, safe_pickle_load
from act3d.errors import CheckpointError, DataError
from act3d.models.encoder_io import load_encoder
from fuzzing import campaign, cases, structured, targets, valid_files

INPUTS_PER_READER = 24  # x 17 readers = 408 inputs, ~15 s on one core
SEED = int(os.environ.get("ACT3D_FUZZ_SEED", "0"))

campaign.quiet_libraries()


@pytest.mark.parametrize("name", list(targets.TARGETS_BY_NAME))
def test_generated_inputs_load_or_raise_the_documented_error(name, tmp_path):
    report = campaign.Report()
    campaign.fuzz_target(
        targets.TARGETS_BY_NAME[name],
        INPUTS_PER_READER,
        tmp_path,
        report,
        seed=SEED,
        timeout=10.0,
        raise_on_failure=True,
    )
    counts = report.counts[name]
    assert sum(counts.values()) >= INPUTS_PER_READER
    assert set(counts) <= set(cases.OK), counts


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_that_would_run_code_never_do(tmp_path):
    marker = tmp_path / "CODE-RAN"
    corpus = campaign.hostile_corpus(marker)
    for label, name, data, reader in corpus:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises((DataError, CheckpointError)) as info:
            reader(path)
        assert str(info.value).startswith(str(path)), (label, str(info.value))
        assert not marker.exists(), f"{label}: the payload ran"
    assert len(corpus) >= 150
    # the payloads do work when unpickled without restriction: the marker test can see them
    pickle.loads(pickle.dumps(structured.payloads(marker)[0][1]))
    assert marker.exists()


def test_forged_dtype_flags_are_ignored_not_trusted(tmp_path):
    """numpy's dtype.__setstate__ trusts pickled flags; the restricted unpickler rebuilds dtypes itself."""
    for flags in (1, 8, 63, 255):
        path = tmp_path / f"forged{flags}.dat"
        path.write_bytes(structured.forged_dtype_flags(flags))
        clouds, _ = safe_pickle_load(path)
        assert clouds[0].dtype == np.float32 and clouds[0].dtype.flags == 0 and not clouds[0].dtype.hasobject
        np.testing.assert_array_equal(clouds[0], np.ones((64, 6), np.float32))


@pytest.mark.parametrize("protocol", range(6))
def test_restricted_unpickler_round_trips_numpy(tmp_path, protocol):
    values = {
        "f4": np.arange(12, dtype=np.float32).reshape(4, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big-endian": np.arange(3, dtype=">f8"),
        "empty": np.zeros((0, 3), np.float32),
        "objects": np.array([None, 1], dtype=object),
        "str": np.array(["ab", "c"]),
        "scalars": [np.int64(7), np.float32(2.5), np.bool_(True)],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(values, protocol=protocol))
    loaded = safe_pickle_load(path)
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            got = loaded[key]
            assert got.dtype == value.dtype and got.shape == value.shape and got.flags.writeable
            assert got.flags.f_contiguous == value.flags.f_contiguous
            np.testing.assert_array_equal(got, value)
    assert [type(v) for v in loaded["scalars"]] == [np.int64, np.float32, np.bool_]


@pytest.mark.parametrize(
    "shape",
    [(10**12, 3), (3, 10**12), (2**62, 2**62), (10**9, 2048, 3)],
)
def test_npy_headers_declaring_huge_arrays(tmp_path, shape):
    path = tmp_path / "huge.npy"
    path.write_bytes(structured.npy_header("<f4", shape))
    tic = time.perf_counter()
    with pytest.raises(DataError, match=r"huge\.npy: is not a valid numpy file"):
        read_point_file(path)
    assert time.perf_counter() - tic < 5


@pytest.mark.parametrize("shape", [(10**12, 3), (10**9, 2048, 3), (2**40,)])
def test_h5_datasets_declaring_huge_shapes(tmp_path, shape):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=shape, dtype="<f4", chunks=tuple(min(s, 64) for s in shape))
        f.create_dataset("label", data=np.zeros(4, np.uint8))
    tic = time.perf_counter()
    with pytest.raises(DataError, match=r"huge\.h5: dataset 'data' of shape .* declares .* GiB, more than"):
        read_h5(path)
    assert time.perf_counter() - tic < 5


def test_float64_values_beyond_float32_are_refused_not_turned_into_inf(tmp_path):
    cloud = np.ones((10, 3))
    cloud[4, 1] = 1e300
    np.save(tmp_path / "big.npy", cloud)
    with pytest.raises(DataError, match=r"big\.npy: contains 1 values beyond float32's range .* row 4"):
        read_point_file(tmp_path / "big.npy")
    (tmp_path / "classes.txt").write_text("a\n")
    points = np.ones((3, 8, 3))
    points[2, 5, 0] = -1e39
    np.savez(tmp_path / "train.npz", points=points, labels=np.zeros(3, np.int64))
    with pytest.raises(DataError, match=r"train\.npz: sample 2 contains 1 values beyond float32's range"):
        build_dataset("npz", str(tmp_path), "train", 8)


def test_coordinates_near_float32_max_normalise_without_overflow(tmp_path):
    cloud = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    cloud[3] = 3.0e38
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "x.npy", cloud)
    points = build_dataset("folder", str(tmp_path), None, 32)[0]["points"]
    assert torch.isfinite(points).all() and torch.isclose(points.norm(dim=1).max(), torch.tensor(1.0))


def test_mesh_and_folder_names_that_are_not_utf8(tmp_path):
    odd = os.fsdecode(b"caf\xe9")
    (tmp_path / odd).mkdir()
    (tmp_path / odd / f"{odd}.off").write_bytes(valid_files.mesh_bytes("off"))
    dataset = build_dataset("folder", str(tmp_path), None, 32)
    assert dataset.classes == [odd] and dataset[0]["points"].shape == (32, 3)


def test_watchdog_interrupts_a_reader_that_never_returns(tmp_path):
    def hang(root):
        while True:
            time.sleep(0.01)

    target = targets.Target("hang", "", dict, (), hang, None)
    tic = time.perf_counter()
    outcome = cases.run_case(target, cases.Case({}, "", "nothing"), tmp_path / "in", tmp_path / "m", timeout=0.5)
    assert outcome.kind == "TIMEOUT" and time.perf_counter() - tic < 3


def test_an_error_that_does_not_name_the_file_is_a_failure(tmp_path):
    def vague(root):
        raise DataError(None, "something is wrong")

    target = targets.Target("vague", "", dict, (), vague, None)
    case = cases.Case({"f.npy": b"x"}, "f.npy", "x")
    assert cases.run_case(target, case, tmp_path / "in", tmp_path / "m", timeout=5).kind == "UNNAMED"


def test_torch_checkpoint_with_huge_declared_config_is_refused_before_allocating(tmp_path):
    encoder_file = valid_files.encoder_files()["encoder.pth"]
    state = torch.load(io.BytesIO(encoder_file), weights_only=True)
    for change in ({"dim": 10**6}, {"depth": 10**6}, {"mlp_ratio": 1e12}):
        state["config"] = {**state["config"], **change}
        path = tmp_path / "enc.pth"
        torch.save(state, path)
        tic = time.perf_counter()
        with pytest.raises(CheckpointError, match=r"enc\.pth: the config declares an encoder of .* parameters"):
            load_encoder(path)
        assert time.perf_counter() - tic < 5
