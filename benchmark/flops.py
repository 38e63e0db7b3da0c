"""FLOP counts per transferable block, for cost estimates (torch's own FLOP counter)."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.models import ChainNet


@torch.no_grad()
def block_forward_flops(model: ChainNet, image_size: int) -> list[int]:
    """Forward FLOPs of one image through each block and, last, the head."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
    flops = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel is not counted
    try:
        for block in [*model.blocks.values(), model.head]:
            with FlopCounterMode(display=False) as counter:
                x = block(x)
            flops.append(counter.get_total_flops())
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    model.train(was_training)
    return flops


def frozen_step_fraction(flops: list[int], n: int) -> float:
    """Cost of a training step with the first n blocks frozen (their forward only; the rest
    forward + backward, about 3x forward) relative to a step that trains everything."""
    return (sum(flops[:n]) + 3 * sum(flops[n:])) / (3 * sum(flops))
