"""Low-level readers: point files, meshes, restricted pickles, HDF5 and their error messages."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import trimesh

from act3d.data.io import check_cloud, read_h5, read_point_file, safe_pickle_load
from act3d.errors import DataError

CLOUD = np.arange(30, dtype=np.float32).reshape(10, 3) / 7


def _write_text(path: Path, array: np.ndarray, sep: str) -> Path:
    path.write_text("\n".join(sep.join(f"{v:.6f}" for v in row) for row in array) + "\n")
    return path


@pytest.mark.parametrize(("name", "sep"), [("a.txt", ","), ("b.txt", " "), ("c.xyz", " "), ("d.pts", "\t")])
def test_text_files(tmp_path: Path, name: str, sep: str) -> None:
    out = read_point_file(_write_text(tmp_path / name, CLOUD, sep))
    assert out.dtype == np.float32 and out.shape == (10, 3)
    np.testing.assert_allclose(out, CLOUD, atol=1e-5)


def test_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", CLOUD.astype(np.float64))
    np.savez(tmp_path / "b.npz", points=CLOUD, other=np.zeros(2))
    np.savez(tmp_path / "c.npz", CLOUD)
    for name in ("a.npy", "b.npz", "c.npz"):
        np.testing.assert_allclose(read_point_file(tmp_path / name), CLOUD, atol=1e-6)
    np.savez(tmp_path / "d.npz", xyz=CLOUD, rgb=CLOUD)
    with pytest.raises(DataError, match=r"d\.npz: has arrays .*'points'"):
        read_point_file(tmp_path / "d.npz")


def test_npy_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: holds pickled Python objects"):
        read_point_file(tmp_path / "obj.npy")


@pytest.mark.parametrize("suffix", [".off", ".obj", ".stl", ".ply"])
def test_meshes_are_sampled_on_the_surface(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"box{suffix}"
    trimesh.creation.box(extents=(2.0, 4.0, 6.0)).export(path)
    points = read_point_file(path, num_samples=500, seed=3)
    assert points.shape == (500, 3)
    # every point lies on one of the faces x=±1, y=±2, z=±3 and inside the box
    on_face = np.isclose(np.abs(points), [1.0, 2.0, 3.0], atol=1e-5).any(axis=1)
    assert on_face.all() and (np.abs(points) <= [1 + 1e-5, 2 + 1e-5, 3 + 1e-5]).all()
    # uniform on the surface: the 6x4 faces (area 2*24 of 88) get about 55 % of the points
    assert 0.45 < np.isclose(np.abs(points[:, 0]), 1.0, atol=1e-5).mean() < 0.65
    np.testing.assert_array_equal(points, read_point_file(path, num_samples=500, seed=3))
    assert not np.array_equal(points, read_point_file(path, num_samples=500, seed=4))


def test_ply_point_cloud_gives_its_vertices(tmp_path: Path) -> None:
    trimesh.PointCloud(CLOUD).export(tmp_path / "cloud.ply")
    np.testing.assert_allclose(read_point_file(tmp_path / "cloud.ply"), CLOUD, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("1,2,3\n4,nan,6\nnan,nan,1\n", r"contains 3 NaN values \(first in row 1\)"),
        ("1 2 3\ninf 5 6\n", r"contains 1 infinite values \(first in row 1\)"),
        ("", r"is empty"),
        ("1 2\n3 4\n", r"has 2 columns, expected at least 3 \(x, y, z\)"),
        ("1 2 3\n4 five 6\n", r"is not a table of numbers"),
    ],
)
def test_bad_text_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=f"^{path}: {problem}"):
        read_point_file(path)


def test_bad_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.array([[0, 0, 0], [np.nan, 1, 1]], dtype=np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(9, dtype=np.float32))
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.npy: is empty \(0 bytes\)"):
        read_point_file(tmp_path / "empty.npy")
    with pytest.raises(DataError, match=r"nan\.npy: contains 1 NaN values"):
        read_point_file(tmp_path / "nan.npy")
    with pytest.raises(DataError, match=r"flat\.npy: has shape \(9,\)"):
        read_point_file(tmp_path / "flat.npy")
    with pytest.raises(DataError, match=r"junk\.npy: is not a valid numpy file"):
        read_point_file(tmp_path / "junk.npy")


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.npy: file does not exist"):
        read_point_file(tmp_path / "nope.npy")
    (tmp_path / "a.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"a\.csv: has unsupported extension '\.csv'"):
        read_point_file(tmp_path / "a.csv")
    (tmp_path / "bad.off").write_text("this is not a mesh")
    with pytest.raises(DataError, match=r"bad\.off: "):
        read_point_file(tmp_path / "bad.off")


def test_check_cloud_messages() -> None:
    check_cloud(np.zeros((4, 3)), "x")
    with pytest.raises(DataError, match=r"^x\.h5: sample 4 contains 2 NaN values \(first in row 0\)$"):
        check_cloud(np.array([[np.nan, np.nan, 0.0]]), "x.h5", sample=4)
    with pytest.raises(DataError, match=r"^x: has 4 columns, expected at least 6"):
        check_cloud(np.zeros((4, 4)), "x", min_columns=6)
    with pytest.raises(DataError, match=r"^x: has dtype <U1, expected real numbers$"):
        check_cloud(np.array([["a", "b", "c"]]), "x")


class _Evil:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("evil", [_Evil, _EvalEvil])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_malicious_pickle_never_runs(tmp_path: Path, evil: type, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": [evil(marker)]}, protocol=protocol))
    with pytest.raises(DataError, match=r"evil\.pkl: unsafe pickle: refers to '(posix|nt|builtins|__builtin__)\."):
        safe_pickle_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_safe_pickle_loads_arrays_and_containers(tmp_path: Path, protocol: int) -> None:
    data = [[CLOUD, CLOUD * 2], [np.array([3], dtype=np.int32)], {"k": (1, 2.5, "s", True, np.int64(7))}]
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = safe_pickle_load(path)
    np.testing.assert_array_equal(out[0][1], CLOUD * 2)
    assert out[1][0].dtype == np.int32 and out[2] == {"k": (1, 2.5, "s", True, 7)}


def test_safe_pickle_reads_numpy1_module_names(tmp_path: Path) -> None:
    """The official caches were written by numpy 1.x, which names ``numpy.core`` (not ``numpy._core``)."""
    data = pickle.dumps([CLOUD, np.array([5], dtype=np.int32)], protocol=2)
    assert b"numpy._core" in data
    path = tmp_path / "old.dat"
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    out = safe_pickle_load(path)
    np.testing.assert_array_equal(out[0], CLOUD)
    assert out[1].tolist() == [5]


def test_truncated_pickle(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps([CLOUD])[:40])
    with pytest.raises(DataError, match=r"cut\.pkl: is not a valid pickle"):
        safe_pickle_load(path)


def test_h5_reading_and_errors(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "ok.h5", "w") as f:
        f["data"] = np.zeros((2, 5, 3), np.float32)
        f["label"] = np.array([1, 2])
    arrays = read_h5(tmp_path / "ok.h5")
    assert arrays["data"].shape == (2, 5, 3) and arrays["label"].tolist() == [1, 2]
    with h5py.File(tmp_path / "nolabel.h5", "w") as f:
        f["data"] = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(DataError, match=r"nolabel\.h5: has no dataset 'label' \(found: \['data'\]\)"):
        read_h5(tmp_path / "nolabel.h5")
    (tmp_path / "junk.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match=r"junk\.h5: is not a readable HDF5 file"):
        read_h5(tmp_path / "junk.h5")
