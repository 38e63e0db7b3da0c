"""Per-epoch training checkpoints: a killed or preempted run resumes where it stopped.

A checkpoint holds everything the next epoch depends on (weights, BatchNorm
buffers, optimizer momentum, scheduler, data-order generator, torch's global RNG
used by dropout, the history so far), so a resumed run is bit-identical to an
uninterrupted one on CPU. It is written atomically behind a checksum: a damaged
checkpoint is reported and training starts over, it is never loaded.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from benchmark.store.atomic import bytes_to_tensors, read_verified, tensors_to_bytes, write_verified

log = logging.getLogger(__name__)


class Checkpoint:
    """``path``: where to keep it (None: no checkpoints); ``owner``: a fingerprint of the
    training it belongs to, so a checkpoint of another configuration is never resumed."""

    def __init__(self, path: Path | None, owner: str = "") -> None:
        self.path = path
        self.owner = owner

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
             generator: torch.Generator, history: list[dict]) -> None:
        if self.path is None:
            return
        state = {"owner": self.owner, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": history}
        write_verified(self.path, tensors_to_bytes(state))

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                generator: torch.Generator) -> list[dict]:
        """Load the last checkpoint into the objects given; returns the history so far
        (empty when there is nothing usable to resume from)."""
        if self.path is None or not self.path.exists():
            return []
        try:
            state = bytes_to_tensors(read_verified(self.path))
            if state["owner"] != self.owner:
                raise ValueError("it belongs to another configuration")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
        except Exception as error:  # any damage means: start this training over
            log.warning("checkpoint %s is unusable (%s); training from the start", self.path, error)
            return []
        log.info("resuming from %s after epoch %d", self.path, len(state["history"]))
        return list(state["history"])

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
