"""The whole chain (the README's demo, at toy size) produces its table, results and pictures."""

from __future__ import annotations

import json
import math

import pytest

from act3d.cli import main

TOY = [
    "data.npoints=128",
    "data.batch_size=8",
    "data.options={num_per_class: 3}",
    "stage1.teacher.num_blocks=1",
    "stage1.teacher.prompts=2",
    "stage1.model.num_groups=8",
    "stage1.model.group_size=8",
    "stage1.model.codebook_size=32",
    "stage1.train.epochs=1",
    "stage1.train.max_steps_per_epoch=2",
    "stage2.model.dim=32",
    "stage2.model.depth=1",
    "stage2.model.num_heads=2",
    "stage2.decoder_heads=2",
    "stage2.model.num_groups=8",
    "stage2.model.group_size=8",
    "stage2.train.epochs=1",
    "stage2.train.max_steps_per_epoch=2",
    "finetune.model.dim=32",
    "finetune.model.depth=1",
    "finetune.model.num_heads=2",
    "finetune.model.num_groups=8",
    "finetune.model.group_size=8",
    "finetune.train.epochs=1",
    "finetune.train.max_steps_per_epoch=2",
]


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path, capsys):
    assert main(["demo", "--no-progress", f"run.output_dir={tmp_path}", "run.name=demo", *TOY]) == 0
    printed = capsys.readouterr().out
    run_dir = tmp_path / "demo"
    assert f"run folder: {run_dir}" in printed
    assert "| stage I: test CD-L1" in printed and "linear SVM accuracy %, ACT-pretrained" in printed
    results = json.loads((run_dir / "results.json").read_text())
    labels = [row["metric"] for row in results["results"]]
    assert len(labels) == 11 and labels[-1].startswith("fine-tune")
    values = {row["metric"]: row["final_epoch"] for row in results["results"]}
    assert 0 <= values["stage I: information per code, nats (↑)"] <= math.log(32) + 1e-6
    assert values["stage II: floor, a second target draw"] >= 0
    assert "stage I: codes carry" in printed, "the verdict on the codes is part of the printed table"
    assert results["notes"][0].startswith("stage I: codes carry")
    for picture in (
        "stage1/reconstructions.png",
        "stage1/code_swap.png",
        "masked_predictions.png",
        "stage1/curves.png",
        "stage2/curves.png",
        "finetune/curves.png",
    ):
        assert (run_dir / picture).stat().st_size > 1000, picture
    assert (run_dir / "stage2" / "encoder.pth").is_file()
    stage1 = json.loads((run_dir / "stage1" / "results.json").read_text())
    assert "first 1 of 12 blocks" in stage1["teacher"]


@pytest.mark.slow
def test_a_resumed_pipeline_keeps_its_finished_stages_and_reruns_the_missing_one(tmp_path, capsys):
    import shutil

    assert (
        main(
            ["pipeline", "--config", "pipeline_cpu", "--no-progress", f"run.output_dir={tmp_path}", "run.name=p", *TOY]
        )
        == 0
    )
    run_dir = tmp_path / "p"
    first = json.loads((run_dir / "results.json").read_text())
    trained = {s: (run_dir / s / "metrics.jsonl").read_text() for s in ("stage1", "stage2")}
    shutil.rmtree(run_dir / "finetune")  # as if killed before fine-tuning
    assert main(["demo", "--no-progress", "--resume", str(run_dir)]) == 0
    again = json.loads((run_dir / "results.json").read_text())
    for stage, log in trained.items():
        assert (run_dir / stage / "metrics.jsonl").read_text() == log, f"{stage} was trained again"
    assert (run_dir / "finetune" / "results.json").is_file()
    assert again["rows"] == first["rows"]  # every stage seeded: the rerun fine-tune gives the same figures
    assert again["notes"][0] == first["notes"][0]


@pytest.mark.slow
def test_pipeline_seeds_run_the_whole_chain_per_seed_and_summarise(tmp_path, capsys):
    import yaml

    argv = ["pipeline", "--config", "pipeline_cpu", "--no-progress", f"run.output_dir={tmp_path}", "run.name=s"]
    assert main([*argv, *TOY, "--seeds", "3", "4"]) == 0
    run_dir = tmp_path / "s"
    for seed in (3, 4):
        for stage in ("stage1", "stage2", "finetune"):
            recorded = yaml.safe_load((run_dir / f"seed{seed}" / stage / "config.yaml").read_text())
            assert recorded["train"]["seed"] == seed, (seed, stage)
    summary = json.loads((run_dir / "results.json").read_text())
    assert summary["kind"] == "seeds" and summary["seeds"] == [3, 4]
    svm = summary["aggregate"]["linear SVM accuracy %, ACT-pretrained (↑)"]
    assert svm["final_epoch"]["n"] == 2 and "best_epoch" not in svm, "a row without a best epoch stays without one"
    assert "mean ± std over seeds [3, 4]" in capsys.readouterr().out
