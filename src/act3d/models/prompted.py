"""A frozen pretrained transformer applied to 3D tokens with VPT prompt tuning (docs/method.md, stage I).

The position embedding (an MLP of the patch centres) is re-added before every block. ``deep`` prompts
replace the prompt slots (tokens and positions) before blocks 2..L with per-layer learned prompts
(VPT-Deep); ``shallow`` prompts are only inserted at the input; ``none`` uses no prompts.
"""

from __future__ import annotations

from typing import Literal

import torch
from timm.layers import trunc_normal_
from torch import nn

from act3d.models.teachers import FrozenTeacher
from act3d.models.tokenizer import position_mlp

PromptMode = Literal["deep", "shallow", "none"]


class PromptedTeacher(nn.Module):
    """Tokens (B, G, D) and centres (B, G, 3) through the frozen teacher's blocks and final norm.

    Args:
        teacher: frozen blocks + norm (width D).
        num_prompts: P prompt tokens (64 in the paper).
        mode: ``deep`` (VPT-Deep, the paper), ``shallow`` or ``none``.
        prompt_dropout: dropout on prompt tokens (0.1).
    """

    def __init__(
        self,
        teacher: FrozenTeacher,
        num_prompts: int = 64,
        mode: PromptMode = "deep",
        prompt_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.teacher = teacher
        self.mode = mode
        width = teacher.width
        depth = len(teacher.blocks)
        self.num_prompts = 0 if mode == "none" else num_prompts
        self.pos_embed = position_mlp(width)
        self.prompt_dropout = nn.Dropout(prompt_dropout)
        self.prompt_tokens = nn.Parameter(torch.zeros(1, self.num_prompts, width))
        self.prompt_pos = nn.Parameter(torch.zeros(1, self.num_prompts, width))
        deep = depth - 1 if mode == "deep" else 0
        self.deep_prompt_tokens = nn.Parameter(torch.zeros(deep, self.num_prompts, width))
        self.deep_prompt_pos = nn.Parameter(torch.zeros(deep, self.num_prompts, width))
        for param in (self.prompt_tokens, self.prompt_pos, self.deep_prompt_tokens, self.deep_prompt_pos):
            trunc_normal_(param, std=0.02)

    def forward(self, tokens: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """tokens (B, G, D), centres (B, G, 3) → normed token outputs (B, G, D) (prompts dropped)."""
        b = tokens.shape[0]
        p = self.num_prompts
        token_pos = self.pos_embed(centers)
        x = torch.cat([self.prompt_dropout(self.prompt_tokens.expand(b, -1, -1)), tokens], dim=1)
        pos = torch.cat([self.prompt_pos.expand(b, -1, -1), token_pos], dim=1)
        for i, block in enumerate(self.teacher.blocks):
            if 0 < i <= self.deep_prompt_tokens.shape[0]:
                deep = self.prompt_dropout(self.deep_prompt_tokens[i - 1].expand(b, -1, -1))
                x = torch.cat([deep, x[:, p:]], dim=1)
                pos = torch.cat([self.deep_prompt_pos[i - 1].expand(b, -1, -1), token_pos], dim=1)
            x = block(x + pos)
        return self.teacher.norm(x)[:, p:]
