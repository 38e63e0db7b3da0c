"""The network shape the protocol works on: named transferable blocks + a head.

Layer n of the paper is the n-th block; the head (fc8 in the paper: whatever turns the last
block's output into logits) is never transferred. Two kinds exist:

- :class:`ChainNet`: this project's own architectures, whose blocks run one after the other
  (``blocks`` then ``head``), so a frozen prefix's outputs can be cached;
- :class:`benchmark.models.zoo.ZooNet`: any model from a zoo, run by its own ``forward``, whose
  blocks are groups of its modules (its state-dict keys are the zoo's, under ``net.``).

Freezing lives here because a frozen prefix must stay frozen in *behaviour*: ``train()``
re-applies eval mode to it every time it is called.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

# Called with (block index from 0, the block's output) as each block finishes.
BlockVisitor = Callable[[int, torch.Tensor], None]


def under(key: str, paths: Iterable[str]) -> bool:
    """Whether the parameter, buffer or module name ``key`` is one of ``paths`` or inside one."""
    return any(key == path or key.startswith(path + ".") for path in paths)


class TransferNet(nn.Module):
    """Named transferable blocks and a head. Subclasses say which names (``block_paths``) and
    modules (``block_modules``) each block owns, and how its outputs are seen."""

    runs_as_chain = False  # whether forward_prefix / forward_suffix exist (the feature cache)

    def __init__(self) -> None:
        super().__init__()
        self.frozen_blocks = 0
        self.frozen_in_eval = True

    @property
    def block_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_transferable(self) -> int:
        return len(self.block_names)

    def block_paths(self, name: str) -> tuple[str, ...]:
        """The state-dict names the block owns: every key equal to one of them or under it."""
        raise NotImplementedError

    def block_modules(self, name: str) -> list[nn.Module]:
        """The modules whose train/eval mode is the block's (parameterless ones included)."""
        raise NotImplementedError

    def visit_block_outputs(self, x: torch.Tensor, visit: BlockVisitor) -> None:
        """Run ``x`` through the network, handing each block's output to ``visit`` as it comes."""
        raise NotImplementedError

    def prefix_paths(self, n: int) -> tuple[str, ...]:
        return tuple(path for name in self.block_names[:n] for path in self.block_paths(name))

    def prefix_modules(self, n: int) -> list[nn.Module]:
        return [module for name in self.block_names[:n] for module in self.block_modules(name)]

    def freeze_prefix(self, n: int, eval_mode: bool = True) -> None:
        """Stop the first ``n`` blocks from learning (and, with ``eval_mode``, from
        updating BatchNorm statistics or dropping units)."""
        self.frozen_blocks = n
        self.frozen_in_eval = eval_mode
        frozen = self.prefix_paths(n)
        for key, param in self.named_parameters():
            param.requires_grad_(not under(key, frozen))
        self.train(self.training)

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        if self.frozen_in_eval:
            for module in self.prefix_modules(self.frozen_blocks):
                module.eval()
        return self


class ChainNet(TransferNet):
    """Blocks that run one after the other, then the head: ``head(blocks[L-1](...blocks[0](x)))``."""

    runs_as_chain = True

    def __init__(self, blocks: dict[str, nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)
        self.head = head

    @property
    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    def block_paths(self, name: str) -> tuple[str, ...]:
        return (f"blocks.{name}",)

    def block_modules(self, name: str) -> list[nn.Module]:
        return [self.blocks[name]]

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

    def visit_block_outputs(self, x: torch.Tensor, visit: BlockVisitor) -> None:
        for index, block in enumerate(self.blocks.values()):
            x = block(x)
            visit(index, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.frozen_blocks
        if n:
            # No graph through the frozen prefix: no backward cost, no activations kept.
            with torch.no_grad():
                x = self.forward_prefix(x, n)
        return self.forward_suffix(x, n)
