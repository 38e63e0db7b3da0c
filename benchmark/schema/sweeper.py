"""Schema of the protocol sweeper (conf/hydra/sweeper/protocol.yaml): Hydra's basic sweeper's keys,
which it keeps, with their checks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf

from benchmark.schema.keys import at_least, optional, plugin_key, store


@dataclass
class Protocol(BasicSweeperConf):
    _target_: str = "hydra_plugins.transferbench_sweeper.ProtocolSweeper"
    max_batch_size: Optional[int] = plugin_key(BasicSweeperConf, "max_batch_size", optional(at_least(1)))


store("sweeper", "protocol", Protocol)
