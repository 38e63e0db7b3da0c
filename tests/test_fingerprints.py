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


@pytest.mark.parametrize("overrides", sorted(RECORDED))
def test_fingerprints_and_base_cache_keys_are_those_of_earlier_versions(overrides):
    cfg = compose_config(*([] if overrides == "(defaults)" else overrides.split()))
    assert {"fingerprint": config_fingerprint(cfg), "base_A": cache_key(base_fields(cfg, "A")),
            "base_B": cache_key(base_fields(cfg, "B"))} == RECORDED[overrides]

