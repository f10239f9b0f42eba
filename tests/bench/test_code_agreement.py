"""``bench/code_agreement.py``: one stage I agrees with itself, and not with another one."""

from __future__ import annotations

import torch
from tests.tasks.test_codes import our_checkpoint

from code_agreement import agreement, patch_codes


def test_a_stage_one_cuts_patches_as_itself_and_unlike_another(tmp_path):
    our_checkpoint(tmp_path / "a.pth")
    other = torch.load(tmp_path / "a.pth", weights_only=True)
    torch.manual_seed(1)
    other["model"] = {k: torch.randn_like(v) if "dgcnn_1" in k else v for k, v in other["model"].items()}
    torch.save(other, tmp_path / "b.pth")
    a, b = patch_codes(str(tmp_path / "a.pth"), []), patch_codes(str(tmp_path / "b.pth"), [])
    same = agreement(a, a)
    assert same["first vs second, argmax codes"] == 1.0
    assert abs(same["first vs second shuffled across patches"]) < 0.1
    assert agreement(a, b)["first vs second, argmax codes"] < 0.9
