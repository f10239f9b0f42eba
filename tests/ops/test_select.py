"""The selection and distance kernels under knn, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.ops import knn
from act3d.ops._distance import point_rows, query_rows, sq_distances
from act3d.ops._select import selection_block, smallest_k_


@pytest.mark.parametrize(
    ("rows", "n", "k", "block"), [(50, 1024, 32, 4), (7, 96, 5, 1), (9, 2048, 1, 32), (4, 512, 16, 8)]
)
def test_smallest_k_picks_the_k_smallest_values(rows: int, n: int, k: int, block: int) -> None:
    # float32 rows are compared as int32 bits of |dist|: padding (+inf), duplicates, the slightly
    # negative values the expanded distance formula rounds to, and a NaN with its sign bit set
    # (x86's default NaN, which as int32 bits would rank first) must rank as floats do.
    gen = torch.Generator().manual_seed(n + k)
    dist = torch.rand(rows, n, generator=gen)
    dist[:, ::17] = float("inf")
    dist[:, 5::31] = dist[:, 4::31][:, : dist[:, 5::31].shape[1]]
    dist[:, 3] = -1e-7 * torch.rand(rows, generator=gen)
    dist[:, 6] = -float("nan")
    assert dist[0, 6].view(torch.int32) < 0
    magnitude = dist.abs().numpy()
    idx = smallest_k_(dist, k, block)
    assert idx.shape == (rows, k) and all(len(set(r)) == k for r in idx.tolist())
    chosen = np.sort(np.take_along_axis(magnitude, idx.numpy(), axis=1), axis=1)
    np.testing.assert_array_equal(chosen, np.sort(magnitude, axis=1)[:, :k])
    assert not (idx == 6).any()


def test_selection_block_divides_and_shrinks_the_rows() -> None:
    assert selection_block(256, 32) == 1
    for n, k in [(1024, 32), (2048, 32), (8192, 32), (4096, 1)]:
        block = selection_block(n, k)
        assert block > 1 and n % block == 0 and n // block >= k
        assert n // block + block * k < n  # fewer entries through topk than one pass over the row


@pytest.mark.parametrize("m", [1, 2, 3, 40])
def test_sq_distances_against_float64(m: int) -> None:
    # m <= 2 takes the broadcast passes on CPU, more rows the bmm: both give |q - p|².
    gen = torch.Generator().manual_seed(m)
    q, p = torch.rand(3, m, 3, generator=gen), torch.rand(3, 70, 3, generator=gen)
    out = sq_distances(query_rows(q), point_rows(p).permute(2, 0, 1).contiguous(), out=torch.empty(3, m, 70))
    expected = ((q.double()[:, :, None] - p.double()[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=0)


def test_buckets_with_sparse_queries_and_many_candidates() -> None:
    # Few queries among many points (query buckets of one query, broadcast distances) and k large
    # enough that the candidates go through the two-stage selection: the brute-force neighbours.
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(2, 4000, 3, generator=gen)
    query = torch.rand(2, 30, 3, generator=gen)
    dists, idx = knn(query, points, 40, method="buckets")
    for b in range(2):
        all_d = ((query[b].double()[:, None] - points[b].double()[None]) ** 2).sum(-1).numpy()
        expected = np.sort(all_d, axis=1)[:, :40]
        np.testing.assert_allclose(dists[b].double().numpy(), expected, atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(np.take_along_axis(all_d, idx[b].numpy(), axis=1), expected, atol=1e-6, rtol=1e-5)
