"""Finished work is never redone: the fingerprint and both base-cache keys of every composed
config (defaults, each option of each group, each preset, at three protocol points) equal
those the code wrote before the schema took over the fingerprint policy (tests/data/
fingerprints.json, written by that code). A change that moves one of them makes every
finished run and cached base network of that config invisible to the next sweep."""
import json
from pathlib import Path

import pytest

from benchmark.config import compose_config
from benchmark.store.fingerprint import base_fields, cache_key, config_fingerprint

RECORDED = json.loads((Path(__file__).parent / "data" / "fingerprints.json").read_text())
POINTS = ("treatment", "n", "finetune", "target")  # set on the composed config: none interpolates


def _variants() -> dict[str, list[str]]:
    """The recorded configs by their group overrides (the protocol point left out)."""
    variants: dict[str, list[str]] = {}
    for overrides in RECORDED:
        words = [] if overrides == "(defaults)" else overrides.split()
        group = [w for w in words if w.split("=")[0] not in POINTS]
        variants.setdefault(" ".join(group), []).append(overrides)
    return variants


@pytest.mark.parametrize("group, recorded", sorted(_variants().items()))
def test_fingerprints_and_base_cache_keys_are_those_of_earlier_versions(group, recorded):
    composed = compose_config(*group.split())
    for overrides in recorded:
        cfg = composed.copy()
        for word in ([] if overrides == "(defaults)" else overrides.split()):
            key, value = word.split("=")
            if key in POINTS:
                cfg[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
        assert {"fingerprint": config_fingerprint(cfg), "base_A": cache_key(base_fields(cfg, "A")),
                "base_B": cache_key(base_fields(cfg, "B"))} == RECORDED[overrides], overrides
