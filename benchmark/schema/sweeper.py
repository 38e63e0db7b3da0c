"""Schema of the protocol sweeper (conf/hydra/sweeper/protocol.yaml): Hydra's basic sweeper's keys,
which it keeps, with their checks (the grid's values are checked as the sweeper expands it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf

from omegaconf import OmegaConf

from benchmark.schema.keys import Check, at_least, key, optional, plugin_key, store


def _grid() -> Check:
    return Check(lambda v, _: v is None or OmegaConf.is_dict(v), "is not a grid of KEY: V1,V2 pairs",
                 "{seed:'0,1'}", 7)


def _layers() -> Check:
    return Check(lambda v, _: v is None or (len(v) > 0 and all(n >= 1 for n in v)),
                 "must be null (every layer) or a list of layers 1..L", [2, 4, 6], [0])


@dataclass
class Protocol(BasicSweeperConf):
    _target_: str = "hydra_plugins.transferbench_sweeper.ProtocolSweeper"
    max_batch_size: Optional[int] = plugin_key(BasicSweeperConf, "max_batch_size", optional(at_least(1)))
    # the grid, untyped as Hydra's own YAML leaves it: OmegaConf cannot merge a mapping given on the
    # command line into a typed one that is null, and keys cannot be added to a typed one that is not
    params: Any = key(_grid(), default=None)
    # fine-tuned runs (BnB+, AnB+) only at these layers n; null: at every layer of the grid
    finetuned_layers: Optional[list[int]] = key(_layers(), default=None)
    # the random-init control (RnB) only at these layers n; null: at every layer of the grid
    random_layers: Optional[list[int]] = key(_layers(), default=None)


store("sweeper", "protocol", Protocol)
