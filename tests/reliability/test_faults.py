"""Faults during training, each in real ``act3d`` subprocesses: SIGKILL anywhere, a full disk, a dead DDP rank.

The promise under test: whatever happens, ``ckpt-last.pth`` is a complete checkpoint equal to the
uninterrupted run's at the same point, and ``act3d classify --resume RUN_DIR`` ends with the same
weights as the run that was never interrupted. Faults are injected from outside (SIGKILL) or by the
test-only shim in ``tests/reliability/shim/sitecustomize.py`` (a disk that fills up, a rank that
dies); production code has no fault hooks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from act3d.engine.checkpoint import load_checkpoint
from act3d.engine.logger import read_metrics
from helpers import REPO, TINY_ENCODER, TINY_SYNTHETIC

SHIM = Path(__file__).resolve().parent / "shim"
STEPS_PER_EPOCH = 8  # 66 synthetic training shapes, batches of 8 (drop_last)
EPOCHS = 4
BASE = [
    *TINY_ENCODER,
    *TINY_SYNTHETIC,
    f"train.epochs={EPOCHS}",
    "scheduler.warmup_epochs=1",
    "head_dropout=0.0",
    "train.checkpoint_every_steps=1",
]
SEED = int(os.environ.get("ACT3D_FAULT_SEED", "0"))


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    if any(k.startswith("ACT3D_TEST_") for k in extra):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), os.environ.get("PYTHONPATH")]))
    return env


def _classify(*args: str) -> list[str]:
    return [sys.executable, "-m", "act3d.cli", "classify", *args, "--no-progress"]


def _run(cmd: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _same_weights(a: dict, b: dict, what: str, parameters_only: bool = False) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        if parameters_only and ("running_" in key or "num_batches_tracked" in key):
            continue
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{what}: {key}")


def _metrics(run_dir: Path) -> list[dict]:
    return read_metrics(run_dir / "metrics.jsonl")  # a line torn by a kill is skipped


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The uninterrupted run, and the weights it checkpointed at every save (``<epoch>-<step_in_epoch>.pt``)."""
    root = tmp_path_factory.mktemp("reference")
    record = root / "record"
    record.mkdir()
    _ok(_run(_classify(*BASE, f"run.output_dir={root}", "run.name=straight"), _env(ACT3D_TEST_RECORD_DIR=str(record))))
    return root / "straight", record


def _check_against_reference(run_dir: Path, record: Path) -> dict:
    """ckpt-last.pth loads and equals the reference run's checkpoint at the same point; returns it."""
    state = load_checkpoint(run_dir / "ckpt-last.pth")
    expected = torch.load(record / f"{state['epoch']}-{state['step_in_epoch']}.pt", weights_only=True)
    assert state["global_step"] == expected["global_step"]
    _same_weights(state["model"], expected["model"], f"checkpoint at global step {state['global_step']}")
    return state


def _same_final_weights(run_dir: Path, straight: Path) -> None:
    final = load_checkpoint(run_dir / "ckpt-last.pth")
    assert final["epoch"] == EPOCHS
    _same_weights(final["model"], load_checkpoint(straight / "ckpt-last.pth")["model"], "final weights")


def _wait(proc: subprocess.Popen, condition, timeout: float = 180, poll: float = 0.002) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            return True
        time.sleep(poll)
    raise AssertionError("the run made no progress")


def _writing(run_dir: Path, since: float) -> bool:
    """A checkpoint is being written: its temporary file exists and was created by the current process."""
    try:
        return (run_dir / ".ckpt-last.pth.tmp").stat().st_mtime >= since
    except FileNotFoundError:
        return False


def _phase(run_dir: Path, since: float) -> str:
    """Where a kill landed, from what the run left behind."""
    if _writing(run_dir, since):
        return "checkpoint write"
    records = _metrics(run_dir)
    last = records[-1] if records else {}
    if last.get("step", 1) % STEPS_PER_EPOCH == 0 and "train/loss" in last:
        return "evaluation"
    return "training step"


def _logged_step(run_dir: Path) -> int:
    return max((r["step"] for r in _metrics(run_dir)), default=0)


@pytest.mark.slow
def test_sigkill_at_ten_points_resumes_to_the_uninterrupted_weights(reference, tmp_path):
    """Ten SIGKILLs of one run (inside steps, while a checkpoint is written, during evaluation), each
    followed by ``--resume``: every kill leaves the reference's checkpoint, the end the reference's weights."""
    straight, record = reference
    run_dir = tmp_path / "killed"
    rng = random.Random(SEED)
    # per epoch: kills mid-training and one during the end-of-epoch evaluation
    plan = ["step", "write", "step", "eval", "write", "step", "eval", "write", "step", "eval"]  # 4 epochs: room left
    hits, saved = [], 0
    for k, mode in enumerate(plan):
        fresh = _classify(*BASE, f"run.output_dir={tmp_path}", "run.name=killed")
        cmd = fresh if k == 0 else _classify("--resume", str(run_dir))
        since = time.time()  # a .tmp older than this is stale, left by an earlier kill
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # progress first: step saved+2 logged means the checkpoint of step saved+1 is on disk
            assert _wait(proc, lambda saved=saved: _logged_step(run_dir) >= saved + 2), "the run ended before the kill"
            if mode == "step":
                time.sleep(rng.uniform(0.0, 0.3))
            elif mode == "write":
                _wait(proc, lambda since=since: _writing(run_dir, since), timeout=30, poll=0.0005)
            else:

                def evaluating() -> bool:
                    last = _metrics(run_dir)[-1]
                    return last["step"] % STEPS_PER_EPOCH == 0 and "train/loss" in last

                _wait(proc, evaluating, timeout=120)
                time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            _, stderr = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"kill {k + 1} came too late: the run ended\n{stderr[-2000:]}"
        phase = _phase(run_dir, since)
        state = _check_against_reference(run_dir, record)
        assert saved < state["global_step"], "a resumed run's checkpoint went back in time"
        saved = state["global_step"]
        hits.append((mode, phase, saved))
        assert state["epoch"] < EPOCHS
    _ok(_run(_classify("--resume", str(run_dir)), _env()))
    _same_final_weights(run_dir, straight)
    results = json.loads((run_dir / "results.json").read_text())
    assert results == json.loads((straight / "results.json").read_text())
    phases = {phase for _, phase, _ in hits}
    print("kills (planned, landed, checkpoint global step):", hits)
    assert phases == {"training step", "checkpoint write", "evaluation"}, hits


@pytest.mark.slow
@pytest.mark.parametrize("where", ["last", "best"])
def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(reference, tmp_path, where):
    straight, record = reference
    run_dir = tmp_path / "full"
    fault = {"ACT3D_TEST_ENOSPC_AT": "5"} if where == "last" else {"ACT3D_TEST_ENOSPC_BEST": "1"}
    proc = _run(_classify(*BASE, f"run.output_dir={tmp_path}", "run.name=full"), _env(**fault))
    name = "ckpt-last.pth" if where == "last" else "ckpt-best.pth"
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"act3d: error: {run_dir / name}: could not write checkpoint ([Errno 28] No space left on device); " in (
        proc.stderr
    )
    assert "the previous one is intact" in proc.stderr and "Traceback" not in proc.stderr
    state = _check_against_reference(run_dir, record)
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    if where == "best":  # the end-of-epoch save worked, its copy to ckpt-best.pth did not
        assert (state["epoch"], state["step_in_epoch"]) == (1, 0)
        assert not (run_dir / "ckpt-best.pth").exists()
        return
    assert state["global_step"] == 4  # the 5th save failed half-written: the 4th is what is on disk
    _ok(_run(_classify("--resume", str(run_dir)), _env()))
    _same_final_weights(run_dir, straight)


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "act3d.cli", "classify", *args, "--device", "cpu", "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_dead_rank_fails_the_launch_clearly_and_the_run_resumes(tmp_path):
    args = [*BASE, "train.epochs=2", f"run.output_dir={tmp_path}"]
    _ok(_run(_torchrun(*args, "run.name=straight"), _env()))
    kill = {"ACT3D_TEST_KILL_RANK": "1", "ACT3D_TEST_KILL_AT_STEP": "6"}
    proc = _run(_torchrun(*args, "run.name=dead"), _env(**kill))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "rank 1: SIGKILL inside step 6" in out
    assert "rank: 1" in out and "exitcode: -9" in out and "Signal 9 (SIGKILL)" in out, out[-3000:]
    state = load_checkpoint(tmp_path / "dead" / "ckpt-last.pth")
    assert state["global_step"] == 5  # the last step both ranks finished
    _ok(_run(_torchrun("--resume", str(tmp_path / "dead")), _env()))
    _same_weights(
        load_checkpoint(tmp_path / "dead" / "ckpt-last.pth")["model"],
        load_checkpoint(tmp_path / "straight" / "ckpt-last.pth")["model"],
        "final",
    )
