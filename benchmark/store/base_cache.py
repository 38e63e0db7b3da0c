"""Content-addressed cache of trained base networks.

A base network is keyed by a hash of exactly the config fields that determine it
(dataset, split, half, model, training recipe, seed: benchmark/store/fingerprint.py). A lock
file (benchmark/store/lock.py) makes parallel jobs that need the same base wait for it instead of
training it twice, and lets one take it over from a job that died while training it; the
checkpoint is written atomically and verified by its SHA-256 before use, so a
half-written or corrupt file is retrained, never loaded.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.store.atomic import (atomic_write_json, bytes_to_tensors, read_verified,
                                    tensors_to_bytes, write_verified)
from benchmark.store.fingerprint import cache_key
from benchmark.store.lock import LockTiming, held

log = logging.getLogger(__name__)


@dataclass
class CachedBase:
    state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    trained_now: bool
    path: Path  # the verified weights file (usable as another run's source.checkpoint)


class BaseCache:
    def __init__(self, root: Path, timing: LockTiming) -> None:
        self.root = root
        self.timing = timing

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        folder = self.root / key
        # not KEY.lock: caches written before hold empty KEY.lock files of the flock it replaced,
        # which would read as a holder that never wrote its name
        return folder / "model.pt", folder / "meta.json", self.root / f"{key}.base.lock"

    def _load(self, key: str) -> CachedBase | None:
        model_path, meta_path, _ = self._paths(key)
        if not (model_path.exists() and meta_path.exists()):
            return None
        try:
            state = bytes_to_tensors(read_verified(model_path))
            return CachedBase(state, json.loads(meta_path.read_text()), False, model_path)
        except Exception as error:  # any damage means: retrain
            log.warning("cached base network %s is corrupt (%s); not using it (the next run that "
                        "needs it trains it again)", model_path, error)
            return None

    def get(self, fields: dict[str, Any]) -> CachedBase | None:
        """The cached base for ``fields`` if it is there and intact; never trains one."""
        return self._load(cache_key(fields))

    def get_or_train(self, fields: dict[str, Any],
                     train_fn: Callable[[Path], tuple[dict[str, torch.Tensor], dict[str, Any]]]
                     ) -> CachedBase:
        """Return the cached base for ``fields``, training it under the lock if absent.

        ``train_fn`` gets the path of its per-epoch checkpoint, inside the entry's folder,
        so an interrupted base training resumes instead of starting over.
        """
        key = cache_key(fields)
        model_path, meta_path, lock_path = self._paths(key)
        self.root.mkdir(parents=True, exist_ok=True)
        with held(lock_path, self.timing, f"base network {key}"):
            cached = self._load(key)
            if cached is not None:
                log.info("using cached base network %s", model_path.parent)
                return cached
            checkpoint = model_path.parent / "checkpoint.pt"
            state, info = train_fn(checkpoint)
            meta = {**info, "fields": fields, "key": key}
            write_verified(model_path, tensors_to_bytes(state))
            atomic_write_json(meta_path, meta)
            checkpoint.unlink(missing_ok=True)
            return CachedBase(state, meta, True, model_path)
