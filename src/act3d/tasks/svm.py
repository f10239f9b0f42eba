"""Linear SVM on frozen ``[CLS ; max-pool]`` features: the cheapest read-out of a representation."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn
from torch.utils.data import DataLoader, Dataset


@torch.no_grad()
def extract_features(
    encoder: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features (N, F) and labels (N,) of a dataset, with the encoder in eval mode."""
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        feats.append(encoder(batch["points"].to(device)).float().cpu())
        labels.append(batch["label"])
    encoder.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def linear_svm_accuracy(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], c: float = 0.01, seed: int = 0
) -> float:
    """Fit a linear SVM on standardised train features; test accuracy in %."""
    scaler = StandardScaler().fit(train[0])
    svm = LinearSVC(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(train[0]), train[1])
    return 100.0 * float(np.mean(svm.predict(scaler.transform(test[0])) == test[1]))
