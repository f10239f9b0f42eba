"""Evaluation maths against hand-computed examples: statistics, voting, episodes, part-segmentation mIoU."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from act3d.engine.config import DataConfig
from act3d.errors import ConfigError
from act3d.models.part_segmentation import PartSegmenter, interpolate_features
from act3d.models.point_transformer import PointEncoder
from act3d.tasks.classify import random_subsets, vote_logits
from act3d.tasks.common import build_augment
from act3d.tasks.fewshot import EpisodeSubset, FewShotConfig, make_episode, run_fewshot
from act3d.tasks.partseg import miou_metrics, part_ious, restricted_argmax, segmentation_metrics
from act3d.tasks.stats import aggregate_rows, format_mean_std, markdown_table, run_seeds, summarize

# ------------------------------------------------------------------------------------------ statistics


def test_summarize_mean_and_both_standard_deviations():
    s = summarize([80.0, 90.0, 100.0])
    assert s["mean"] == 90.0 and s["n"] == 3 and (s["min"], s["max"]) == (80.0, 100.0)
    assert s["std"] == pytest.approx(10.0)  # sqrt((100 + 0 + 100) / 2)
    assert s["std_population"] == pytest.approx(math.sqrt(200 / 3))  # np.std
    assert format_mean_std(s) == "90.00 ± 10.00"
    one = summarize([93.5])
    assert one["std"] == 0.0 and format_mean_std(one) == "93.50"
    with pytest.raises(ValueError):
        summarize([])


def test_aggregate_rows_over_runs_keeps_labels_and_skips_missing_metrics():
    runs = [
        {"final epoch": {"acc": 90.0, "acc_vote": 91.0}, "best epoch (official)": {"acc": 92.0}},
        {"final epoch": {"acc": 86.0}, "best epoch (official)": {"acc": 90.0}},
    ]
    agg = aggregate_rows(runs)
    assert list(agg) == ["final epoch", "best epoch (official)"]
    assert agg["final epoch"]["acc"]["mean"] == 88.0
    assert agg["final epoch"]["acc"]["std"] == pytest.approx(math.sqrt(8.0))
    assert agg["final epoch"]["acc_vote"]["n"] == 1  # only the run that has it
    table = markdown_table(agg)
    assert "| final epoch | 88.00 ± 2.83 | 91.00 |" in table and "| best epoch (official) | 91.00 ± 1.41 | – |" in table


def test_run_seeds_reuses_finished_seeds_and_writes_mean_and_std(tmp_path):
    calls = []

    def run_one(seed, sub, resume):
        calls.append(seed)
        sub.mkdir(parents=True)
        rows = {"final epoch": {"acc": 80.0 + 10 * seed}, "best epoch (official)": {"acc": 85.0 + 10 * seed}}
        (sub / "results.json").write_text(json.dumps({"rows": rows, "init": "random"}))
        return sub

    run_seeds(tmp_path, [0, 1, 2], run_one, "test")
    assert calls == [0, 1, 2]
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["aggregate"]["final epoch"]["acc"]["mean"] == 90.0
    assert payload["aggregate"]["best epoch (official)"]["acc"]["std"] == pytest.approx(10.0)
    md = (tmp_path / "results.md").read_text()
    assert "90.00 ± 10.00" in md and "95.00 ± 10.00" in md and "init: random" in md
    run_seeds(tmp_path, [0, 1, 2], run_one, "test")  # all finished: nothing runs again
    assert calls == [0, 1, 2]


# -------------------------------------------------------------------------------------------- voting


class _Scripted(nn.Module):
    """Returns the next scripted logits on every call, whatever the input."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, points):
        return self.outputs.pop(0)


def test_vote_averages_logits_not_votes():
    # pass 1 strongly says class 0, passes 2 and 3 weakly say class 1: a majority vote would pick 1,
    # the mean of logits [1.0, 0.667] picks 0 (the official protocol).
    model = _Scripted([torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0]])])
    loader = [{"points": torch.rand(1, 10, 3), "label": torch.tensor([0])}]
    logits, labels = vote_logits(model, loader, torch.device("cpu"), 3, 10, None, torch.Generator().manual_seed(0))
    torch.testing.assert_close(logits, torch.tensor([[1.0, 2.0 / 3.0]]))
    assert logits.argmax(1).item() == 0 and labels.tolist() == [0]


def test_vote_passes_draw_different_subsets_of_the_points():
    points = torch.arange(12.0).view(1, 4, 3).expand(2, -1, -1).contiguous()
    g = torch.Generator().manual_seed(0)
    draws = [random_subsets(points, 2, g) for _ in range(6)]
    assert all(d.shape == (2, 2, 3) for d in draws)
    rows = {tuple(d[0, :, 0].tolist()) for d in draws}
    assert len(rows) > 1  # a new draw per pass
    for d in draws:  # each drawn point is one of the cloud's, without repeats
        assert set(d[0, :, 0].tolist()) <= {0.0, 3.0, 6.0, 9.0} and len(set(d[0, :, 0].tolist())) == 2
    assert random_subsets(points, 4, g) is points


def test_train_npoints_draws_a_random_subset_then_augments():
    data = DataConfig(npoints=4, train_npoints=6)
    augment = build_augment(data)
    item = {"points": torch.arange(18.0).view(6, 3), "parts": torch.arange(6), "label": torch.tensor(1)}
    out = augment(item, torch.Generator().manual_seed(0))
    assert out["points"].shape == (4, 3) and torch.equal(out["points"][:, 0] / 3, out["parts"].float())
    with pytest.raises(ConfigError, match="train_npoints"):
        build_augment(DataConfig(npoints=8, train_npoints=6))


# ------------------------------------------------------------------------------------------ few-shot


class _Labels:
    def __init__(self, labels, num_classes):
        self.labels = np.array(labels)
        self.classes = [f"c{k}" for k in range(num_classes)]

    def __getitem__(self, i):
        return {"points": torch.zeros(4, 3), "label": torch.tensor(int(self.labels[i]))}


def test_episodes_are_reproducible_disjoint_and_balanced():
    data = _Labels(np.repeat(np.arange(8), 40), 8)  # 8 classes x 40 items
    ep = make_episode(data, way=5, shot=10, fold=3, seed=0)
    assert ep == make_episode(data, way=5, shot=10, fold=3, seed=0)  # same arguments, same episode
    assert make_episode(data, 5, 10, 4, 0).train != ep.train  # another fold, another episode
    assert len(set(ep.classes)) == 5 and len(ep.train) == 50 and len(ep.test) == 100
    assert not set(ep.train) & set(ep.test)  # drawn from one dataset: never the same item
    for c in ep.classes:
        assert sum(data.labels[j] == c for j in ep.train) == 10
        assert sum(data.labels[j] == c for j in ep.test) == 20
    subset = EpisodeSubset(data, ep.train, ep.classes)
    assert sorted(set(subset.labels.tolist())) == list(range(5)) and subset.classes == [f"c{c}" for c in ep.classes]
    assert int(subset[0]["label"]) == subset.labels[0] and data.labels[ep.train[0]] == ep.classes[subset.labels[0]]


def test_episodes_from_separate_splits_and_their_errors():
    train = _Labels(np.repeat(np.arange(6), 12), 6)
    test = _Labels(np.repeat(np.arange(6), [20, 20, 20, 20, 5, 20]), 6)  # class 4 has too few test items
    ep = make_episode(train, 5, 10, 0, test_dataset=test)
    assert 4 not in ep.classes and len(ep.test) == 100
    assert all(sum(test.labels[j] == c for j in ep.test) == 20 for c in ep.classes)
    assert all(sum(train.labels[j] == c for j in ep.train) == 10 for c in ep.classes)
    with pytest.raises(ConfigError, match="only 5 classes"):
        make_episode(train, 6, 10, 0, test_dataset=test)


def test_fewshot_aggregates_each_folds_final_and_best_epoch(tmp_path):
    config = FewShotConfig.model_validate(
        {
            "data": {"name": "synthetic"},
            "episodes": {"settings": [[5, 10]], "folds": [0, 1, 2]},
            "run": {"output_dir": str(tmp_path), "name": "fs"},
        }
    )
    for fold, (final, best) in enumerate([(80.0, 90.0), (90.0, 100.0), (100.0, 100.0)]):
        fold_dir = tmp_path / "fs" / "5way10shot" / f"fold{fold}"
        fold_dir.mkdir(parents=True)  # finished folds are aggregated, not run again
        payload = {"final_epoch": {"epoch": 150, "acc": final}, "best_epoch": {"epoch": 99, "acc": best}}
        (fold_dir / "results.json").write_text(json.dumps(payload))
    run_dir = run_fewshot(config, show_progress=False)
    results = json.loads((run_dir / "results.json").read_text())
    setting = results["settings"]["5way10shot"]
    assert setting["final_epoch"]["mean"] == 90.0 and setting["final_epoch"]["std"] == pytest.approx(10.0)
    assert setting["best_epoch_per_fold"]["mean"] == pytest.approx(290 / 3)
    assert setting["best_epoch_per_fold"]["std_population"] == pytest.approx(np.std([90, 100, 100]))
    md = (run_dir / "results.md").read_text()
    assert "| 5-way 10-shot | 3 | 90.00 ± 10.00 | 96.67 ± 5.77 |" in md
    assert "best epoch per fold, as the official protocol" in md and "final epoch" in md


# ------------------------------------------------------------------------------ part segmentation


def test_restricted_argmax_ignores_other_categories_parts():
    logits = torch.tensor([[9.0, 1.0, 2.0, 0.0], [9.0, 0.0, 1.0, 5.0]])
    assert restricted_argmax(logits, [1, 2, 3]).tolist() == [2, 3]  # part 0 is best but not allowed
    assert restricted_argmax(logits, [0, 1]).tolist() == [0, 0]


def test_part_iou_counts_a_part_absent_from_both_as_one():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 1, 1, 1])
    # part 0: |{0}| / |{0,1}| = 1/2; part 1: 2/3; part 2 absent from both: 1
    assert part_ious(pred, target, [0, 1, 2]) == pytest.approx([0.5, 2 / 3, 1.0])
    # part 2 predicted but absent from the ground truth: IoU 0
    assert part_ious(torch.tensor([0, 0, 1, 2]), target, [0, 1, 2]) == pytest.approx([1.0, 0.5, 0.0])


def test_instance_and_class_miou_by_hand():
    # category A: shapes with mIoU 1.0 and 0.5; category B: one shape with 0.0
    m = miou_metrics([1.0, 0.5, 0.0], ["A", "A", "B"])
    assert m["inst_miou"] == pytest.approx(50.0)  # (1 + .5 + 0) / 3
    assert m["class_miou"] == pytest.approx(37.5)  # (0.75 + 0) / 2
    assert m["miou/A"] == pytest.approx(75.0) and m["miou/B"] == 0.0


def test_segmentation_metrics_end_to_end():
    part_classes = {"A": [0, 1], "B": [2, 3, 4]}
    logits = [
        torch.tensor([[5.0, 0, 0, 0, 0], [0, 5.0, 0, 0, 0]]),  # A: perfect
        torch.tensor([[9.0, 0, 3.0, 0, 0], [9.0, 0, 0, 3.0, 0]]),  # B: part 0 not allowed → 2, 3
    ]
    targets = [torch.tensor([0, 1]), torch.tensor([2, 2])]
    m = segmentation_metrics(zip(logits, targets, [0, 1], strict=True), ["A", "B"], part_classes)
    # B: part 2 IoU 1/2, part 3 IoU 0, part 4 absent from both 1 → 0.5
    assert m["inst_miou"] == pytest.approx(75.0) and m["class_miou"] == pytest.approx(75.0)
    assert m["acc"] == pytest.approx(75.0)


def test_interpolation_is_inverse_squared_distance_weighted():
    centers = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [0.0, 2, 0], [5.0, 5, 5]]])
    feats = torch.tensor([[[1.0], [2.0], [3.0], [100.0]]])
    points = torch.tensor([[[0.0, 0, 0], [0.5, 0, 0]]])
    out = interpolate_features(points, centers, feats)
    assert out[0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)  # on a centre: its feature
    w = torch.tensor([1 / 0.25, 1 / 0.25, 1 / 4.25])  # squared distances to the 3 nearest centres
    assert out[0, 1, 0].item() == pytest.approx(float((w * torch.tensor([1.0, 2, 3])).sum() / w.sum()), rel=1e-5)


def test_part_segmenter_shapes_and_frozen_unused_parameters():
    encoder = PointEncoder(dim=32, depth=3, num_heads=2, num_groups=8, group_size=8, drop_path=0.0)
    model = PartSegmenter(encoder, num_categories=3, num_parts=7, layers=(1, 2), propagation=(40, 24), head=(16, 8))
    out = model(torch.rand(2, 64, 3), torch.tensor([0, 2]))
    assert out.shape == (2, 64, 7)
    out.sum().backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert {"encoder.cls_token", "encoder.cls_pos"} <= frozen and any(".blocks.2." in n for n in frozen)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.head[0][0].in_features == 24 + 2 * 64 + 64  # propagated + max/mean of 2x32 + category
    with pytest.raises(ConfigError, match="layers"):
        PartSegmenter(encoder, 3, 7, layers=(1, 4))


def test_partseg_augmentation_scales_all_axes_alike():
    data = DataConfig(augment={"scale_translate": True, "scale": (0.8, 1.25), "shift": 0.0, "isotropic_scale": True})
    item = {"points": torch.ones(5, 3), "label": torch.tensor(0)}
    out = build_augment(data)(item, torch.Generator().manual_seed(3))["points"]
    assert torch.allclose(out, out[0, 0].expand(5, 3)) and 0.8 <= out[0, 0] <= 1.25
