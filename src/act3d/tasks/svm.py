"""Linear SVM on frozen ``[CLS ; max-pool]`` features: the cheapest read-out of a representation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn
from torch.utils.data import DataLoader, Dataset

from act3d.engine.config import DataConfig, RunConfig, Strict
from act3d.engine.distributed import resolve_device
from act3d.engine.run import make_run_dir, record_run, seed_everything
from act3d.errors import ConfigError
from act3d.models.point_transformer import EncoderConfig
from act3d.tasks.common import build_split, initial_encoder, predict_logits
from act3d.tasks.results import write_results
from act3d.tasks.stats import rows_table


def extract_features(
    encoder: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features (N, F) and labels (N,) of a dataset, with the encoder in eval mode."""
    was_training = encoder.training
    encoder.eval()
    feats, labels = predict_logits(encoder, DataLoader(dataset, batch_size=batch_size, shuffle=False), device)
    encoder.train(was_training)
    return feats.numpy(), labels.numpy()


def linear_svm_accuracy(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], c: float = 0.01, seed: int = 0
) -> float:
    """Fit a linear SVM on standardised train features; test accuracy in %."""
    scaler = StandardScaler().fit(train[0])
    svm = LinearSVC(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(train[0]), train[1])
    return 100.0 * float(np.mean(svm.predict(scaler.transform(test[0])) == test[1]))


class SvmConfig(Strict):
    """``act3d svm``: linear-SVM accuracy of a frozen encoder's ``[CLS ; max-pool]`` features.

    ``init``: an encoder checkpoint (ours, a stage-II run, or an official one) or ``random`` (an
    untrained encoder of ``model``'s sizes: the baseline a pretrained encoder must beat). ``model``:
    sizes; ``null`` takes them from the checkpoint (the paper's for official ones). Both splits are
    read without augmentation, FPS to ``data.npoints``.
    """

    task: Literal["svm"] = "svm"
    init: str | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: EncoderConfig | None = None
    c: float = Field(0.01, gt=0)
    seed: int = 0
    run: RunConfig = Field(default_factory=RunConfig)


def run_svm(config: SvmConfig, preset: str | Path | None = None, device: str = "auto") -> Path:
    """Extract features of both splits, fit the SVM, write ``results.json`` / ``results.md``."""
    if not config.init:
        raise ConfigError("svm needs an encoder: init=CHECKPOINT, or init=random for the baseline")
    run_dir = make_run_dir(config.run.output_dir, config.run.name, preset)
    record_run(run_dir, config, config.seed)
    seed_everything(config.seed)
    dev = resolve_device(device)
    encoder, source = initial_encoder(config.init, config.model)
    encoder.to(dev)
    data = config.data
    batch = data.eval_batch_size or data.batch_size
    tic = time.perf_counter()
    train = extract_features(encoder, build_split(data, data.train_split), dev, batch)
    test = extract_features(encoder, build_split(data, data.test_split), dev, batch)
    acc = linear_svm_accuracy(train, test, c=config.c, seed=config.seed)
    rows = {"linear SVM": {"acc": acc}}
    payload = {
        "init": source,
        "features": f"[CLS ; max-pool] ({train[0].shape[1]}-d), encoder in eval mode, standardised",
        "svm": f"sklearn LinearSVC, C={config.c}",
        "train_items": len(train[1]),
        "test_items": len(test[1]),
        "seconds": time.perf_counter() - tic,
        "rows": rows,
    }
    notes = [f"{k}: {v}" for k, v in payload.items() if k not in ("rows", "seconds")]
    write_results(run_dir, "svm", payload, rows_table(rows, 2) + "\n\n" + "\n".join(f"- {n}" for n in notes))
    return run_dir
