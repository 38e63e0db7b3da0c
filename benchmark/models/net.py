"""The network shape every architecture shares: named transferable blocks + a head.

Layer n of the paper is ``blocks[n-1]``; the head (fc8 in the paper: any module that
turns the last block's output into logits) is never transferred.
Freezing lives here because a frozen prefix must stay frozen in *behaviour*:
``train()`` re-applies eval mode to it every time it is called.
"""
from __future__ import annotations

import torch
from torch import nn


class TransferNet(nn.Module):
    def __init__(self, blocks: dict[str, nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)
        self.head = head
        self.frozen_blocks = 0
        self.frozen_in_eval = True

    @property
    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    @property
    def num_transferable(self) -> int:
        return len(self.blocks)

    def freeze_prefix(self, n: int, eval_mode: bool = True) -> None:
        """Stop the first ``n`` blocks from learning (and, with ``eval_mode``, from
        updating BatchNorm statistics or dropping units)."""
        self.frozen_blocks = n
        self.frozen_in_eval = eval_mode
        for i, block in enumerate(self.blocks.values()):
            block.requires_grad_(i >= n)
        self.train(self.training)

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        if self.frozen_in_eval:
            for block in self.prefix(self.frozen_blocks):
                block.eval()
        return self

    def prefix(self, n: int) -> list[nn.Module]:
        return list(self.blocks.values())[:n]

    def suffix(self, n: int) -> list[nn.Module]:
        return list(self.blocks.values())[n:]

    def forward_prefix(self, x: torch.Tensor, n: int) -> torch.Tensor:
        for block in self.prefix(n):
            x = block(x)
        return x

    def forward_suffix(self, x: torch.Tensor, n: int) -> torch.Tensor:
        for block in self.suffix(n):
            x = block(x)
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.frozen_blocks
        if n:
            # No graph through the frozen prefix: no backward cost, no activations kept.
            with torch.no_grad():
                x = self.forward_prefix(x, n)
        return self.forward_suffix(x, n)
