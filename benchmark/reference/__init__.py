"""Published numbers to compare a sweep with, one JSON file per reference (data only: the
schema checks `analysis.reference` against these names, the figures draw them)."""
from __future__ import annotations

import json
from pathlib import Path

_DIR = Path(__file__).parent


def available() -> list[str]:
    """Names accepted by :func:`load_reference`."""
    return sorted(path.stem for path in _DIR.glob("*.json"))


def load_reference(name: str) -> dict:
    """The reference ``name`` (e.g. "yosinski2014"); ValueError naming the choices if unknown."""
    if name not in available():
        raise ValueError(f"unknown reference {name!r}; choose one of: {', '.join(available())}")
    return json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))
