"""``act3d embed``: features of a folder of point-cloud and mesh files, saved to .npy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from act3d.cli import main
from act3d.models.encoder_io import save_encoder
from act3d.models.point_transformer import EncoderConfig, PointEncoder


def test_embed_folder_of_files_matches_the_python_api(tmp_path, capsys):
    torch.manual_seed(0)
    config = EncoderConfig(dim=32, depth=1, num_heads=2, num_groups=8, group_size=8)
    encoder = PointEncoder(**config.model_dump())
    ckpt = save_encoder(encoder, config, tmp_path / "encoder.pth")
    inputs = tmp_path / "clouds"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    np.save(inputs / "a.npy", rng.normal(size=(300, 3)).astype(np.float32))
    np.savetxt(inputs / "b.xyz", rng.normal(size=(200, 3)))
    trimesh.creation.box().export(inputs / "c.off")
    out = tmp_path / "features.npy"
    assert main(["embed", str(ckpt), str(inputs), "--out", str(out), "--npoints", "128"]) == 0
    feats = np.load(out)
    names = (tmp_path / "features.txt").read_text().split()
    assert feats.shape == (3, 64) and [n.rsplit("/", 1)[-1] for n in names] == ["a.npy", "b.xyz", "c.off"]
    from act3d.ops import farthest_point_sample, gather_points

    cloud = torch.from_numpy(np.load(inputs / "a.npy"))[None]
    expected = encoder.embed(gather_points(cloud, farthest_point_sample(cloud, 128)))
    np.testing.assert_allclose(feats[0], expected[0].numpy(), rtol=1e-4, atol=1e-5)


def test_embed_rejects_too_small_clouds(tmp_path):
    config = EncoderConfig(dim=32, depth=1, num_heads=2, num_groups=8, group_size=8)
    ckpt = save_encoder(PointEncoder(**config.model_dump()), config, tmp_path / "encoder.pth")
    np.save(tmp_path / "tiny.npy", np.zeros((50, 3), dtype=np.float32) + np.arange(50)[:, None])
    assert (
        main(["embed", str(ckpt), str(tmp_path / "tiny.npy"), "--out", str(tmp_path / "f.npy"), "--npoints", "128"])
        == 2
    )
    with pytest.raises(SystemExit):
        main(["embed"])
