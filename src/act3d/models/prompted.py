"""VPT prompt tuning: of the frozen pretrained teacher on 3D tokens (docs/method.md, stage I), and of the
student for parameter-efficient fine-tuning (:class:`DeepPromptedStack`, ``classify mode=prompt``).

The position embedding (an MLP of the patch centres) is re-added before every block. ``deep`` prompts
replace the prompt slots (tokens and positions) before blocks 2..L with per-layer learned prompts
(VPT-Deep); ``shallow`` prompts are only inserted at the input; ``none`` uses no prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from timm.layers import trunc_normal_
from torch import nn

from act3d.models.teachers import FrozenTeacher
from act3d.models.tokenizer import position_mlp
from act3d.models.transformer import TransformerStack

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


class DeepPromptedStack(nn.Module):
    """VPT-Deep prompt tuning of the student: the blocks of a :class:`TransformerStack`, each run with
    its own ``num_prompts`` learned tokens inserted after the first token (CLS) and dropped after the
    block. Same ``forward(x, pos)`` and ``forward_intermediates`` as the stack; its blocks keep their
    parameter names (``blocks.N...``), so checkpoints of the plain encoder still load.

    Args:
        stack: the encoder's stack, whose blocks are reused (not copied).
        num_prompts: P prompt tokens per block.
        prompt_dropout: dropout on the prompt tokens.
    """

    def __init__(self, stack: TransformerStack, num_prompts: int, prompt_dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = stack.blocks
        width = stack.blocks[0].norm1.normalized_shape[0]
        self.prompts = nn.Parameter(torch.zeros(len(stack.blocks), num_prompts, width))
        self.prompt_dropout = nn.Dropout(prompt_dropout)
        trunc_normal_(self.prompts, std=0.02)

    def _block(self, i: int, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos (B, T, D) → (B, T, D): block ``i`` on [x₀ ; prompts ; x₁..] (prompts carry no position)."""
        p = self.prompt_dropout(self.prompts[i].expand(x.shape[0], -1, -1))
        x = x + pos
        y = self.blocks[i](torch.cat([x[:, :1], p, x[:, 1:]], dim=1))
        return torch.cat([y[:, :1], y[:, 1 + p.shape[1] :]], dim=1)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos (B, T, D) → (B, T, D)."""
        for i in range(len(self.blocks)):
            x = self._block(i, x, pos)
        return x

    def forward_intermediates(self, x: torch.Tensor, pos: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """Outputs (B, T, D) of the 1-based blocks ``indices``, ascending (as :class:`TransformerStack`)."""
        taken = []
        for i in range(max(indices)):
            x = self._block(i, x, pos)
            if i + 1 in indices:
                taken.append(x)
        return taken
