"""Downstream commands run end to end on the built-in shapes: part segmentation learns, few-shot and
multi-seed runs write labelled mean ± std tables, voting is reported beside single-pass accuracy."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from act3d.cli import main
from act3d.engine.config import load_config
from act3d.presets import resolve_preset
from act3d.tasks.partseg import PartSegConfig, PartSegTask, miou_metrics, part_ious
from act3d.tasks.runner import train_task
from act3d.tasks.svm import SvmConfig
from helpers import TINY_ENCODER, TINY_SYNTHETIC

pytestmark = pytest.mark.slow


def most_frequent_part_miou(task: PartSegTask) -> float:
    """Instance mIoU of predicting, for every point, its category's most frequent training part."""
    counts: dict[str, Counter] = {}
    for item in task.train_set.dataset:
        counts.setdefault(task.classes[int(item["label"])], Counter()).update(item["parts"].tolist())
    mious, cats = [], []
    for item in task.test_set:
        cat = task.classes[int(item["label"])]
        pred = torch.full_like(item["parts"], counts[cat].most_common(1)[0][0])
        ious = part_ious(pred, item["parts"], task.part_classes[cat])
        mious.append(sum(ious) / len(ious))
        cats.append(cat)
    return miou_metrics(mious, cats)["inst_miou"]


def test_partseg_learns_builtin_parts_beyond_the_most_frequent_part(tmp_path):
    config = load_config(
        PartSegConfig,
        resolve_preset("partseg_cpu"),
        [
            *TINY_ENCODER,
            "data.npoints=256",
            "data.batch_size=16",
            "data.options={num_per_class: 16}",
            "data.augment.scale_translate=false",
            "head.layers=[1,2]",
            "head.propagation=[64,64]",
            "head.head=[64,32]",
            "head.dropout=0.0",
            "optimizer.lr=0.005",
            "scheduler.warmup_epochs=0",
            "scheduler.min_lr=0.005",
            "train.epochs=10",
            "train.eval_every=5",
            "train.bn_recalibration_batches=5",
            f"run.output_dir={tmp_path}",
            "run.name=partseg",
        ],
    )
    run_dir, result = train_task(config, PartSegTask, show_progress=False)
    baseline = most_frequent_part_miou(PartSegTask(config))
    final = result.final_metrics["inst_miou"]
    print(f"part segmentation inst mIoU {final:.2f} vs most-frequent-part baseline {baseline:.2f}")
    assert final > baseline + 10, (baseline, result.history)
    assert 0 < result.final_metrics["class_miou"] <= 100 and "miou/chair" in result.final_metrics
    results = json.loads((run_dir / "results.json").read_text())
    assert results["rows"]["final epoch"]["inst_miou"] == pytest.approx(final)
    assert results["final_epoch"]["epoch"] == 10 and results["best_epoch"]["epoch"] in (5, 10)  # eval every 5
    assert "best_class_miou_any_epoch" in results and "absent part = IoU 1" in results["metrics"]
    assert "| miou/chair |" in (run_dir / "results.md").read_text()


def run_cli(capsys, *args: str) -> str:
    """``act3d ARGS`` in this process (no interpreter start-up); its stdout."""
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_fewshot_command_on_generated_episodes(tmp_path, capsys):
    out = run_cli(
        capsys,
        "fewshot",
        "--config",
        "fewshot_cpu",
        *TINY_ENCODER,
        *TINY_SYNTHETIC,
        "data.options={num_per_class: 12}",
        "episodes.folds=[0,1]",
        "episodes.test_per_class=4",
        "train.epochs=2",
        "train.bn_recalibration_batches=2",
        f"run.output_dir={tmp_path}",
        "run.name=fs",
        "--no-progress",
    )
    assert "| 5-way 10-shot | 2 |" in out
    results = json.loads((tmp_path / "fs" / "results.json").read_text())
    folds = results["settings"]["5way10shot"]["folds"]
    assert set(folds) == {"0", "1"} and folds["0"]["episode_classes"] != folds["1"]["episode_classes"]
    assert "generated from synthetic" in folds["0"]["episode"]
    assert set(results["rows"]) == {
        "5-way 10-shot: final epoch",
        "5-way 10-shot: best epoch per fold, as the official protocol",
    }
    fold_dir = tmp_path / "fs" / "5way10shot" / "fold0"
    assert (fold_dir / "results.json").is_file() and not (fold_dir / "ckpt-last.pth").exists()


def test_classify_with_seeds_and_voting_writes_mean_and_std(tmp_path, capsys):
    args = [
        "classify",
        *TINY_ENCODER,
        *TINY_SYNTHETIC,
        "data.train_npoints=300",
        "data.augment.scale_translate=true",
        "vote.enabled=true",
        "vote.passes=2",
        "vote.repeats=2",
        "vote.keep=best",
        "train.epochs=1",
        "train.bn_recalibration_batches=2",
        f"run.output_dir={tmp_path}",
        "run.name=seeds",
        "--no-progress",
        "--seeds",
        "0",
        "1",
    ]
    out = run_cli(capsys, *args)
    top = json.loads((tmp_path / "seeds" / "results.json").read_text())
    assert top["seeds"] == [0, 1]
    for label in ("final epoch", "best epoch (official)"):
        assert top["aggregate"][label]["acc"]["n"] == 2 and "acc_vote" in top["aggregate"][label]
    assert "max over 2 vote repeats (official --test protocol, optimistic)" in out
    seed0 = json.loads((tmp_path / "seeds" / "seed0" / "results.json").read_text())
    assert seed0["final_epoch"]["acc_vote"] == seed0["final_epoch"]["acc_vote_max"]
    assert "acc_vote" in seed0["best_epoch"] and "acc" in seed0["best_epoch"]
    # resuming a finished multi-seed run changes nothing
    before = (tmp_path / "seeds" / "seed1" / "results.json").read_text()
    run_cli(capsys, "classify", "--resume", str(tmp_path / "seeds"), "--no-progress", "--seeds", "0", "1")
    assert (tmp_path / "seeds" / "seed1" / "results.json").read_text() == before


def svm_args(tmp_path, name: str) -> list[str]:
    """``act3d svm`` of a random-init tiny encoder on the tiny synthetic data, into ``tmp_path/name``."""
    data = [item for item in TINY_SYNTHETIC if item.startswith("data.")]
    return ["svm", "init=random", *TINY_ENCODER, *data, f"run.output_dir={tmp_path}", f"run.name={name}"]


def test_svm_with_seeds_runs_each_seed_in_its_folder_and_aggregates(tmp_path, capsys):
    args = [*svm_args(tmp_path, "svm"), "--seeds", "3", "4"]
    out = run_cli(capsys, *args)
    top = json.loads((tmp_path / "svm" / "results.json").read_text())
    assert top["seeds"] == [3, 4] and top["aggregate"]["linear SVM"]["acc"]["n"] == 2
    for seed in (3, 4):
        recorded = load_config(SvmConfig, tmp_path / "svm" / f"seed{seed}" / "config.yaml", [])
        assert recorded.seed == seed and recorded.init == "random"
        seed_results = json.loads((tmp_path / "svm" / f"seed{seed}" / "results.json").read_text())
        assert seed_results["init"] == "random init (no pretraining)"
    assert "svm: svm" in out and "mean ± std over seeds [3, 4]" in out


def test_svm_resume_keeps_a_finished_run_and_reruns_only_missing_seeds(tmp_path, capsys):
    args = [*svm_args(tmp_path, "svm"), "--seeds", "3", "4"]
    run_cli(capsys, *args)
    run_dir = tmp_path / "svm"
    kept = (run_dir / "seed3" / "results.json").read_text()
    (run_dir / "seed4" / "results.json").unlink()  # as if killed during seed 4
    out = run_cli(capsys, "svm", "--resume", str(run_dir), "--seeds", "3", "4")
    assert (run_dir / "seed3" / "results.json").read_text() == kept, "a finished seed ran again"
    assert (run_dir / "seed4" / "results.json").is_file() and "mean ± std over seeds [3, 4]" in out
    run_cli(capsys, *svm_args(tmp_path, "one"))
    before = (tmp_path / "one" / "results.json").stat().st_mtime_ns
    out = run_cli(capsys, "svm", "--resume", str(tmp_path / "one"))
    assert (tmp_path / "one" / "results.json").stat().st_mtime_ns == before and "linear SVM" in out


def test_fewshot_with_seeds_resumes_a_seed_that_stopped_before_its_summary(tmp_path, capsys):
    args = [
        "fewshot",
        "--config",
        "fewshot_cpu",
        *TINY_ENCODER,
        *TINY_SYNTHETIC,
        "data.options={num_per_class: 12}",
        "episodes.folds=[0]",
        "episodes.test_per_class=4",
        "train.epochs=1",
        "train.bn_recalibration_batches=2",
        f"run.output_dir={tmp_path}",
        "run.name=fss",
        "--no-progress",
        "--seeds",
        "0",
        "1",
    ]
    run_cli(capsys, *args)
    run_dir = tmp_path / "fss"
    seed0, fold = run_dir / "seed0" / "results.json", run_dir / "seed1" / "5way10shot" / "fold0" / "metrics.jsonl"
    written = seed0.stat().st_mtime_ns, fold.stat().st_mtime_ns
    (run_dir / "seed1" / "results.json").unlink()  # seed 1 was killed after its fold, before its summary
    out = run_cli(capsys, "fewshot", "--resume", str(run_dir), "--no-progress", "--seeds", "0", "1")
    assert (seed0.stat().st_mtime_ns, fold.stat().st_mtime_ns) == written  # neither the seed nor the fold ran again
    assert (run_dir / "seed1" / "results.json").is_file()
    top = json.loads((run_dir / "results.json").read_text())
    assert top["seeds"] == [0, 1] and top["aggregate"]["5-way 10-shot: final epoch"]["acc"]["n"] == 2
    assert "each seed: mean over folds" in out
