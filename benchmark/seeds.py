"""Seeds derived from a run's seed and a tag, the same in every process and on every machine:
the networks a run trains (benchmark/networks.py) and the images its measures read
(benchmark/measures/) draw from them, so neither imports the other."""
from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any tuple (baseA and baseB of one seed differ)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
