"""One run of the protocol end to end: check the point, skip it if finished, build and train
its network (benchmark/networks.py), evaluate, and write its result (benchmark/store/).

A diverging run is recorded as ``failed`` with its reason; a finished result is never rewritten.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.errors import RunDiverged
from benchmark.measures import (BASE_VS_BASE, VS_SOURCE, enabled_measures, take_measures,
                                unmeasured)
from benchmark.measures.labelled import ReadoutMeasure, read_out
from benchmark.blocks import model_blocks
from benchmark.models import TransferNet, model_label
from benchmark.networks import (BaseNetwork, Workspace, base_network, cached_base_network,
                                external_source_network, source_network, target_network)
from benchmark.preflight import check_config
from benchmark.protocol import (BASE_TREATMENT, EXTERNAL_SOURCE, OTHER, OWN, check_layer, layer_name, other_half,
                                run_label, source_half, treatment_named)
from benchmark.store.base_cache import CachedBase
from benchmark.store.checkpoints import Checkpoint
from benchmark.store.fingerprint import config_fingerprint
from benchmark.store.provenance import provenance
from benchmark.store.record import FAILED, OK, BaseUse, Cost, RunRecord, SourceBase
from benchmark.store.lock import LockTiming, held
from benchmark.store.results import (CHECKPOINT_FILE, RESULT_FILE, RUN_LOCK_FILE, finished_result,
                                     write_result)
from benchmark.tracking import Tracker, run_id
from benchmark.train import best_top1, evaluate

log = logging.getLogger(__name__)


def execute(cfg: DictConfig, out_dir: Path, group: str | None = None) -> dict:
    """Run one configuration end to end and write ``out_dir/result.json`` (or return the
    record a previous attempt finished there). Returns the record in its JSON form, which is
    what Hydra's launchers carry back to the sweep.

    The run is trained under its lock (benchmark/store/lock.py): a second process on the same
    sweep directory waits while the first trains it, then finds its result; one that finds the
    lock of a process that died takes it over and resumes from its checkpoint."""
    check_config(cfg)
    blocks = model_blocks(cfg)
    check_layer(cfg.n, blocks, cfg.model.name)
    fingerprint = config_fingerprint(cfg)
    done = _finished(out_dir, fingerprint)
    if done is not None:
        return done
    label = run_label(cfg.treatment, cfg.n, cfg.finetune, cfg.target)
    with held(out_dir / RUN_LOCK_FILE, LockTiming(**cfg.lock), f"run {label} seed {cfg.seed} ({out_dir})"
              ) as handed_over:
        return _finished(out_dir, fingerprint, handed_over) or _run(cfg, out_dir, group, fingerprint, blocks)


def _finished(out_dir: Path, fingerprint: str, failed_too: bool = False) -> dict | None:
    """The record a run of this configuration finished in ``out_dir``, if one did (``failed_too``:
    a failed one too, which the process this one waited for has just written)."""
    done = finished_result(out_dir, fingerprint, failed_too)
    if done is None:
        return None
    log.info("%s seed %s already finished (%s, %s); skipping", done.label, done.seed, done.status,
             out_dir / RESULT_FILE)
    return done.to_json()


def _run(cfg: DictConfig, out_dir: Path, group: str | None, fingerprint: str, blocks: list[str]) -> dict:
    """Train, evaluate and record the run (its lock held)."""
    start = time.time()
    ws = Workspace.from_config(cfg)
    label = run_label(cfg.treatment, cfg.n, cfg.finetune, cfg.target)
    tracker = Tracker(cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity, out_dir,
                      f"{label}/seed{cfg.seed}", group, cfg.treatment,
                      OmegaConf.to_container(cfg, resolve=True), cfg.wandb.init_timeout,
                      run_id(str(out_dir.absolute().parent), fingerprint))
    record = _describe(cfg, ws, label, fingerprint, blocks)
    checkpoint = Checkpoint(out_dir / CHECKPOINT_FILE, fingerprint)
    try:
        record = record.but(**_train(ws, label, tracker, checkpoint))
    except RunDiverged as error:
        log.error("%s failed: %s", label, error)
        record = record.but(status=FAILED, reason=str(error), cost=Cost())
    record = record.but(wall_s=round(time.time() - start, 3), device=str(ws.device),
                        config=OmegaConf.to_container(cfg, resolve=True), **provenance())
    tracker.summary({**(record.metrics or {}), "status": record.status})
    tracker.finish(failed=not record.ok)
    path = write_result(out_dir, record)
    checkpoint.remove()
    log.info("%s seed %d: %s %s -> %s", label, cfg.seed, record.status,
             _format_metrics(record.metrics), path)
    return record.to_json()


def _describe(cfg: DictConfig, ws: Workspace, label: str, fingerprint: str, blocks: list[str]
              ) -> RunRecord:
    """What a record says about its run before it is trained (status ok until it fails)."""
    names = ws.dataset.class_names
    task = ws.task(cfg.target)
    return RunRecord(
        label=label, fingerprint=fingerprint, treatment=cfg.treatment, n=cfg.n,
        block=layer_name(cfg.n, blocks), blocks=blocks, finetune=cfg.finetune,
        source=source_half(cfg.treatment, cfg.target), target=cfg.target, seed=cfg.seed, status=OK,
        dataset=cfg.dataset.name, model=model_label(cfg.model), split=cfg.split.name,
        preprocessing=ws.preprocessing.to_json(),
        images={"train": len(task.train), "val": len(task.val), "size": ws.dataset.image_size},
        train_per_class=cfg.data.train_per_class, target_fraction=cfg.data.target_fraction,
        classes_A=[names[c] for c in ws.split.A], classes_B=[names[c] for c in ws.split.B])


def _train(ws: Workspace, label: str, tracker: Tracker, checkpoint: Checkpoint) -> dict[str, Any]:
    """The record's fields that training the run's network fills: metrics, history, cost, its
    source and the measures' entries."""
    cfg = ws.cfg
    on_epoch = lambda record: tracker.log(record, step=record["epoch"])  # noqa: E731
    if treatment_named(cfg.treatment).is_base:
        return _base_run(ws, on_epoch)
    target = target_network(ws, label, on_epoch, checkpoint)
    cost = Cost([_base_use(base) for base in target.source.bases], target.fitted.feature_cache,
                target.train_s, target.fitted.frozen_step_fraction)
    source = source_network(ws, target.source) if enabled_measures(cfg.analysis) else None
    # a base network of the sweep is its cached file: the same for every run of the seed
    source_key = _file_key(target.source.bases[0].path, cfg.target) if target.source.bases else None
    measured = _measured(ws, VS_SOURCE, target.model, source, source_key) if source is not None \
        else unmeasured()
    return {"metrics": target.fitted.result.metrics(), "history": target.fitted.result.history,
            "cost": cost, "source_network": target.source.origin, "measures": measured}


def _base_run(ws: Workspace, on_epoch) -> dict[str, Any]:
    cfg = ws.cfg
    # the first wave of a sweep also trains the half that transfer runs copy from, and
    # reports it (evaluated on its own half's held-out images) as a run of its own
    warmed = [base_network(ws, other_half(cfg.target))] if cfg.warm_sources else []
    base = base_network(ws, cfg.target)
    for record in base.cached.meta["history"]:
        on_epoch(record)
    own = _base_report(ws, base, cfg.target)
    return {"metrics": own.metrics, "history": own.history, "network_file": own.network_file,
            "cost": Cost([_base_use(b.cached) for b in (*warmed, base)]),
            "measures": _base_measures(ws, base, warmed),
            "source_bases": [_base_report(ws, source, other_half(cfg.target)) for source in warmed]}


def _measured(ws: Workspace, comparison: str, x: TransferNet, y: TransferNet,
              y_key: Hashable | None = None) -> dict[str, dict | None]:
    """The enabled measures' entries for ``comparison`` of ``x`` and ``y`` (``y_key``: names
    ``y`` on the target half, whose outputs the measures then keep for the next run)."""
    return take_measures(enabled_measures(ws.cfg.analysis), ws.task(ws.cfg.target).val, ws.cfg.seed,
                         ws.normalize, x, y, comparison, ws.device, y_key)


def _file_key(path: Path, *more: str) -> tuple:
    """A network saved at ``path`` (its path and modification time), and what else it is used with."""
    return (str(path), path.stat().st_mtime_ns, *more)


def _base_measures(ws: Workspace, base: BaseNetwork, warmed: list[BaseNetwork]) -> dict[str, dict | None]:
    """baseB vs baseA, and each base's blocks read out on the target half, when the other half's
    base is in memory or cached (never trained for it); without it, only the own base's readouts."""
    measures = enabled_measures(ws.cfg.analysis)
    other = _other_base(ws, warmed) if measures and ws.split.A and ws.split.B else None
    entries = unmeasured() if other is None else _measured(ws, BASE_VS_BASE, base.model, other.model)
    external = external_source_network(ws) if any(isinstance(m, ReadoutMeasure) for m, _ in measures) else None
    networks = {OWN: base.model, **({} if other is None else {OTHER: other.model}),
                **({} if external is None else {EXTERNAL_SOURCE: external})}
    entries.update(read_out(measures, ws.task(ws.cfg.target), ws.cfg.seed, ws.normalize, ws.device, networks,
                            ws.new_model))
    return entries


def _other_base(ws: Workspace, warmed: list[BaseNetwork]) -> BaseNetwork | None:
    half = other_half(ws.cfg.target)
    other = warmed[0] if warmed else cached_base_network(ws, half)
    if other is None:
        log.info("base%s is not trained yet: the base-vs-base measures are taken by a base run "
                 "that finds it (e.g. a sweep's first wave)", half)
    return other


def _base_report(ws: Workspace, base: BaseNetwork, half: str) -> SourceBase:
    """Label, metrics (on ``half``'s held-out images), history and file of a trained base network."""
    history = base.cached.meta["history"]
    metrics = evaluate(base.model, ws.task(half).val, ws.normalize, ws.device,
                       ws.cfg.train.eval_batch_size)
    return SourceBase(run_label(BASE_TREATMENT, 0, False, half), half,
                      {**metrics, "top1_best": best_top1(history)}, history, str(base.cached.path))


def _base_use(cached: CachedBase) -> BaseUse:
    return BaseUse(cached.meta["fields"]["half"], cached.meta["train_s"], cached.trained_now)


def _format_metrics(metrics: dict | None) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items()) if metrics else ""
