"""Fault injection for tests/reliability/test_faults.py, test-only: put this folder on PYTHONPATH.

Python imports ``sitecustomize`` at start-up; this one does nothing unless one of these is set:

* ``ACT3D_TEST_RECORD_DIR``: after every checkpoint the trainer writes, also save its ``model``
  under ``<dir>/<epoch>-<step_in_epoch>.pt`` (the reference run's weights at every save).
* ``ACT3D_TEST_ENOSPC_AT=N``: the N-th ``torch.save`` writes half of its bytes, then raises
  ``OSError(ENOSPC)`` (the disk filling up while a checkpoint is written).
* ``ACT3D_TEST_ENOSPC_BEST=1``: copying ``ckpt-last.pth`` to the best checkpoint writes half, then
  raises ``OSError(ENOSPC)``.
* ``ACT3D_TEST_KILL_RANK=R`` and ``ACT3D_TEST_KILL_AT_STEP=N``: the process of rank R (``$RANK``)
  SIGKILLs itself inside training step N (after the update, before anything is saved).

Hooks are installed when ``act3d.engine.trainer`` is imported, so the launcher of a distributed
run (which never imports it) is untouched and start-up costs nothing.
"""

from __future__ import annotations

import errno
import importlib.abc
import importlib.util
import os
import signal
import sys

_ENV = ("ACT3D_TEST_RECORD_DIR", "ACT3D_TEST_ENOSPC_AT", "ACT3D_TEST_ENOSPC_BEST", "ACT3D_TEST_KILL_RANK")


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _patch(trainer) -> None:
    import shutil

    import torch

    record = os.environ.get("ACT3D_TEST_RECORD_DIR")
    if record:
        original_save = trainer.save_checkpoint

        def save_and_record(state, path):
            original_save(state, path)
            name = f"{state['epoch']}-{state['step_in_epoch']}.pt"
            torch.save({"model": state["model"], "global_step": state["global_step"]}, os.path.join(record, name))

        trainer.save_checkpoint = save_and_record

    enospc_at = int(os.environ.get("ACT3D_TEST_ENOSPC_AT", "0"))
    if enospc_at:
        original_torch_save = torch.save
        calls = [0]

        def torch_save(obj, f, *args, **kwargs):
            calls[0] += 1
            if calls[0] != enospc_at or not hasattr(f, "write"):
                return original_torch_save(obj, f, *args, **kwargs)
            import io

            buffer = io.BytesIO()
            original_torch_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            raise _disk_full()

        torch.save = torch_save

    if os.environ.get("ACT3D_TEST_ENOSPC_BEST"):
        original_copyfile = shutil.copyfile

        def copyfile(src, dst, *args, **kwargs):
            if not str(dst).endswith(".ckpt-best.pth.tmp"):
                return original_copyfile(src, dst, *args, **kwargs)
            with open(src, "rb") as source, open(dst, "wb") as target:
                data = source.read()
                target.write(data[: len(data) // 2])
            raise _disk_full()

        shutil.copyfile = copyfile

    kill_rank = os.environ.get("ACT3D_TEST_KILL_RANK")
    if kill_rank is not None and os.environ.get("RANK") == kill_rank:
        kill_step = int(os.environ["ACT3D_TEST_KILL_AT_STEP"])
        original_step = trainer.Trainer._step

        def step(self, task, wrapped, model, optimizer, scaler, batch, state):
            logs = original_step(self, task, wrapped, model, optimizer, scaler, batch, state)
            if state.global_step + 1 == kill_step:
                sys.stderr.write(f"[fault shim] rank {kill_rank}: SIGKILL inside step {kill_step}\n")
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return logs

        trainer.Trainer._step = step


class _PatchTrainerOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "act3d.engine.trainer":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if any(os.environ.get(key) for key in _ENV):
    sys.meta_path.insert(0, _PatchTrainerOnImport())
