"""The run record: what one run says about itself, typed and versioned.

The run fills it, the result store writes and reads it (result.json is its JSON form) and the
analysis reads it; nothing else spells its fields. Every result.json an earlier version wrote
still reads: :func:`RunRecord.from_json` upgrades it to the current version.

Versions: 1, written before records were typed, carries no ``version`` field; 2 adds it. The
fields are the same in both; a record's per-block measures (benchmark/measures/) stand in its
JSON form under their own keys (CKA's under ``similarity``, as version 1 wrote it), and every
key that is not a field of the record is read as a measure's entry.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.protocol import TREATMENTS

RECORD_VERSION = 2
REQUIRED = ("label", "treatment", "n", "target", "seed", "status")
OK, FAILED = "ok", "failed"  # a run's status
NOT_WRITTEN = ("path", "measures")
# the fields that must agree for two runs to be compared: dataset, class split, model and the
# amount of target data
EXPERIMENT_FIELDS = ("dataset", "split", "model", "train_per_class", "target_fraction")  # ``path``: where the aggregation found it; measures: spliced in


@dataclass
class BaseUse:
    """A base network a run used: its half, how long it trained, whether this run trained it."""

    half: str
    train_s: float
    trained_now: bool


@dataclass
class Cost:
    """What a run cost (benchmark/analysis/cost.py adds it up over a sweep)."""

    bases: list[BaseUse] = field(default_factory=list)
    feature_cache: bool = False                 # trained on the frozen prefix's cached outputs
    train_s: float | None = None                # a copying run: its own training
    frozen_step_fraction: float | None = None   # its FLOP share of a frozen end-to-end step

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Cost":
        return cls(**{**data, "bases": [BaseUse(**b) for b in data.get("bases", [])]})


@dataclass
class SourceBase:
    """The other half's base network a first-wave base run trained, as that run reports it
    (evaluated on its own half's held-out images)."""

    label: str
    target: str
    metrics: dict[str, float]
    history: list[dict]
    network_file: str


@dataclass
class RunRecord:
    """One run: its point of the protocol, its experiment, its outcome and provenance."""

    # the point of the protocol (benchmark/protocol.py)
    label: str
    treatment: str
    n: int
    target: str
    seed: int
    status: str                         # OK or FAILED
    finetune: bool = False
    source: str | None = None           # the half whose base gave the first n blocks
    block: str | None = None            # the name of block n (None at n = 0)
    blocks: list[str] | None = None     # the model's transferable blocks
    fingerprint: str | None = None      # of the config that determines it (store/fingerprint.py)
    # the experiment
    dataset: str | None = None
    model: str | None = None
    split: str | None = None
    train_per_class: int | None = None
    target_fraction: float | None = None
    classes_A: list[str] | None = None
    classes_B: list[str] | None = None
    preprocessing: dict | None = None   # mean, std (and a pretrained source's input size, resize, crop)
    images: dict | None = None          # the target half's image counts (train, val) and size in px
    # the outcome
    reason: str | None = None           # why it failed
    metrics: dict[str, float] | None = None  # protocol.METRICS on the target half's held-out images
    history: list[dict] = field(default_factory=list)  # one record per epoch
    cost: Cost | None = None
    source_network: str | None = None   # a copying run: its source's file or weights
    network_file: str | None = None     # a base run: its trained network (a verified file)
    source_bases: list[SourceBase] = field(default_factory=list)  # a first-wave base run: the other half's
    source_for: str | None = None       # a source base's own record: the target half it is the source for
    wall_s: float | None = None
    device: str | None = None
    # provenance
    config: dict[str, Any] | None = None  # the full resolved config
    versions: dict[str, str] | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None         # the checkout had uncommitted changes to tracked files
    machine: dict | None = None           # cpu, cores, gpus, system (store/provenance.py)
    version: int = RECORD_VERSION
    # the per-block measures' entries, by record key (None: not measured)
    measures: dict[str, dict | None] = field(default_factory=dict)
    path: str | None = None             # where the aggregation found it, relative to the sweep dir

    @property
    def ok(self) -> bool:
        return self.status == OK

    def experiment(self) -> tuple:
        """What must agree for two runs to be compared (``EXPERIMENT_FIELDS``)."""
        return tuple(getattr(self, name) for name in EXPERIMENT_FIELDS)

    def metric(self, name: str) -> Any:
        return (self.metrics or {}).get(name)

    def to_json(self) -> dict[str, Any]:
        """The record as result.json holds it."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in NOT_WRITTEN}
        data["cost"] = None if self.cost is None else dataclasses.asdict(self.cost)
        data["source_bases"] = [dataclasses.asdict(b) for b in self.source_bases]
        return {**data, **self.measures}

    @classmethod
    def from_json(cls, data: Any) -> "RunRecord":
        """A record from its JSON form, of this version or an earlier one; ValueError saying what
        is wrong (an unknown treatment is such a problem: it is reported, never pooled into
        another series)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        if data["treatment"] not in TREATMENTS:
            raise ValueError(f"unknown treatment {data['treatment']!r}, expected one of "
                             f"{', '.join(TREATMENTS)} (written by another version of transferbench?)")
        for key in ("n", "seed"):
            if not isinstance(data[key], int) or isinstance(data[key], bool):
                raise ValueError(f"{key} must be an integer, got {data[key]!r}")
        version = data.get("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise ValueError(f"record version {version!r} is newer than this transferbench reads "
                             f"({RECORD_VERSION}); upgrade transferbench to read it")
        names = {f.name for f in dataclasses.fields(cls)} - set(NOT_WRITTEN)
        known = {key: value for key, value in data.items() if key in names}
        measures = {key: value for key, value in data.items() if key not in names}
        cost = Cost.from_json(known["cost"]) if known.get("cost") else None
        bases = [SourceBase(**b) for b in known.get("source_bases") or []]
        return cls(**{**known, "version": RECORD_VERSION, "cost": cost, "source_bases": bases},
                   measures=measures)

    def but(self, **changes: Any) -> "RunRecord":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

