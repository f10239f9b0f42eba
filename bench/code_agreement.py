"""Do two stage Is cut the patches into the same codes? Adjusted mutual information of their codes.

    python bench/code_agreement.py runs/compare/stage1-DINOv2/ckpt-best.pth runs/compare/stage1-control/ckpt-best.pth

Both checkpoints read the same patches (the first checkpoint's recorded test split, ``--data`` fields
replacing it) in eval mode; each patch gets each stage I's argmax code. Printed: the adjusted mutual
information (AMI: 0 for unrelated partitions, 1 for the same partition up to renaming) of the two
code assignments, and as references the AMI of each with the other shuffled across patches (≈ 0)
and with itself under a second Gumbel draw (how stable one stage I's own sampled codes are).
A teacher whose knowledge shapes the codes should cut the patches differently from the control
teacher (docs/results.md, "Do the two teachers cut patches alike?").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import adjusted_mutual_info_score

from act3d.engine.config import load_config
from act3d.models.autoencoder import code_indices
from act3d.tasks.codes import CodesConfig, read_stage1
from act3d.tasks.common import build_split, eval_loader


@torch.no_grad()
def patch_codes(path: str, data: list[str]) -> dict[str, np.ndarray]:
    """The argmax code and two sampled codes of every test patch, (clouds · G,) each, for one stage I."""
    stage1, config = read_stage1(load_config(CodesConfig, None, [*data, f"checkpoint={path}"]))
    model = stage1.autoencoder.eval()
    torch.manual_seed(0)
    codes: dict[str, list[torch.Tensor]] = {"argmax": [], "sample": [], "sample again": []}
    for batch in eval_loader(build_split(config, config.test_split), config):
        logits, _ = model.code_logits(*model.grouper(batch["points"]))
        for name in codes:
            codes[name].append(code_indices(logits, "argmax" if name == "argmax" else "sample").flatten())
    return {name: torch.cat(parts).numpy() for name, parts in codes.items()}


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """The AMI rows of the table, from two :func:`patch_codes` results over the same patches."""
    shuffled = np.random.default_rng(0).permutation(b["argmax"])
    return {
        "first vs second, argmax codes": adjusted_mutual_info_score(a["argmax"], b["argmax"]),
        "first vs second shuffled across patches": adjusted_mutual_info_score(a["argmax"], shuffled),
        "first: two Gumbel draws": adjusted_mutual_info_score(a["sample"], a["sample again"]),
        "second: two Gumbel draws": adjusted_mutual_info_score(b["sample"], b["sample again"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", help="a stage-I checkpoint")
    parser.add_argument("second", help="another stage-I checkpoint with the same patches")
    parser.add_argument("--data", nargs="*", default=[], metavar="data.KEY=VALUE", help="data fields to replace")
    args = parser.parse_args()
    a, b = patch_codes(args.first, args.data), patch_codes(args.second, args.data)
    print(f"{len(a['argmax'])} patches; distinct argmax codes: {len(set(a['argmax']))} / {len(set(b['argmax']))}")
    print("| codes compared | AMI |\n|---|---|")
    print("\n".join(f"| {name} | {value:.3f} |" for name, value in agreement(a, b).items()))


if __name__ == "__main__":
    main()
