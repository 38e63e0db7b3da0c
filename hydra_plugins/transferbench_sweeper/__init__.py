"""Hydra sweeper for the Yosinski protocol (registered as ``hydra/sweeper=protocol``).

The grid is the cartesian product of the paper's axes (treatment x n x finetune x
target x seed ...), like Hydra's basic sweeper, with three changes:

* ``n=all`` means every layer of the model each job builds: n = 1..L of that model
  (L from its block list); an explicit n above a model's L is one error naming the
  model, L and its blocks; base runs copy no layer and run once, at n = 0, whatever
  the n axis holds (``n=1,3,5`` keeps its base runs, the reference of the curve);
* combinations that are not runs of the protocol (``treatment=selffer n=0``,
  ``treatment=random finetune=true``) are dropped instead of failing, and so are the runs a
  layer list of the sweeper's config keeps at its layers only (:data:`LAYER_LISTS`: fine-tuned
  runs, which train every layer and are the costliest points of the curve; the random-init
  control, which finding 6 reads above its first layers only);
* the jobs run in two waves (:func:`waves`): the base runs and the runs that copy no
  base network of the sweep (random, external) first, so the base networks are trained
  and cached before the jobs that copy from them start (no job waits on a lock while a
  base network trains elsewhere) and the other jobs of the first wave keep parallel
  launchers busy meanwhile; when the grid has transfer runs, the base jobs also train
  the other half's base network (``warm_sources=true``), the source those runs copy from;
  in each wave the longest trainings start first.

An exception that escapes the launcher ends the sweep in one ``error:`` line
(benchmark/sweep/launcher_errors.py).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from benchmark.blocks import model_blocks
from benchmark.errors import UserError, exit_with
from benchmark.protocol import (EVERY_LAYER, RANDOM_CONTROL, check_layer, combination_problem, every_layer,
                                not_a_layer, series_of, treatment_named)
from benchmark.sweep.launcher_errors import GuardedLauncher, guarded
from benchmark.sweep.progress import write_plan

log = logging.getLogger(__name__)

POINT_KEYS = ("treatment", "n", "finetune", "target", "seed")  # they never change a model's blocks
WARM_SOURCES = "warm_sources=true"  # a base job that also trains the other half's base network


def _values(job: List[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in job)


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _with_n(job: List[str], n: int) -> List[str]:
    return [item for item in job if not item.startswith("n=")] + [f"n={n}"]


Point = tuple[str, int, bool]  # treatment, n, finetune
ModelBlocks = Callable[[List[str]], tuple[str, list[str]]]  # a job -> its model's name and blocks


def _point(job: List[str], defaults: DictConfig) -> Point:
    values = _values(job)
    treatment = values.get("treatment", str(defaults.treatment))
    n = values.get("n", str(defaults.n))
    finetune = str(values.get("finetune", defaults.finetune)).lower() == "true"
    return treatment, int(n), finetune


def _layers(job: List[str], defaults: DictConfig, model_blocks_of: ModelBlocks) -> List[List[str]]:
    """``job`` with ``n=all`` expanded to the layers of its model; an explicit n checked;
    a base run at n=0."""
    values = _values(job)
    n = values.get("n", str(defaults.n))
    treatment = values.get("treatment", str(defaults.treatment))
    if treatment_named(treatment).is_base:
        return [_with_n(job, 0)]
    model, blocks = model_blocks_of(job)
    if n == EVERY_LAYER:
        return [_with_n(job, layer) for layer in every_layer(len(blocks))]
    if not _is_integer(n):
        raise not_a_layer(n)
    check_layer(int(n), blocks, model)
    return [job]


def expanded_jobs(grid: List[List[str]], defaults: DictConfig, model_blocks_of: ModelBlocks
                  ) -> List[List[str]]:
    """The grid's jobs with ``n=all`` expanded to every layer of each job's model
    (``model_blocks_of``), explicit layers checked, and one base run (n = 0), not one per n;
    ``defaults``: the config, for the axes a job does not set. :class:`UserError` on a bad n."""
    expanded = [tuple(job) for grid_job in grid for job in _layers(grid_job, defaults, model_blocks_of)]
    return [list(job) for job in dict.fromkeys(expanded)]


def blocks_by_model(compose: Callable[[List[str]], DictConfig]) -> ModelBlocks:
    """``model_blocks_of`` for :func:`expanded_jobs`: a job's model name and block names, from the
    config ``compose`` makes of the job's settings without its protocol point (which never changes
    a model), composed once per model setting."""
    cache: dict[tuple[str, ...], tuple[str, list[str]]] = {}

    def of(job: List[str]) -> tuple[str, list[str]]:
        key = tuple(item for item in job if item.split("=", 1)[0] not in POINT_KEYS)
        if key not in cache:
            cfg = compose(list(key))
            cache[key] = (str(cfg.model.name), model_blocks(cfg))
        return cache[key]
    return of


def protocol_points(jobs: List[List[str]], defaults: DictConfig) -> List[tuple[List[str], Point]]:
    """The jobs that are runs of the protocol, each with its point (treatment, n, finetune)."""
    points = [(job, _point(job, defaults)) for job in jobs]
    return [(job, point) for job, point in points if combination_problem(*point) is None]


# the sweeper's keys that keep some of the grid's runs at the layers they list only (null: every
# layer), each with the points it restricts: fine-tuned runs (BnB+, AnB+), the random-init control
LAYER_LISTS: dict[str, Callable[[Point], bool]] = {
    "finetuned_layers": lambda point: point[2],
    "random_layers": lambda point: series_of(point[0], point[2]).key == RANDOM_CONTROL,
}


def only_at(points: List[tuple[List[str], Point]], layer_lists: Mapping[str, Optional[Sequence[int]]],
            model_blocks_of: ModelBlocks) -> List[tuple[List[str], Point]]:
    """The points without the runs a layer list of :data:`LAYER_LISTS` (by key; None: every layer)
    leaves out. :class:`UserError` where a listed layer is not one of its runs' model."""
    kept = points
    for key, layers in layer_lists.items():
        if layers is None:
            continue
        restricts = LAYER_LISTS[key]
        for job in (job for job, point in kept if restricts(point)):
            model, blocks = model_blocks_of(job)
            outside = [n for n in layers if n > len(blocks)]
            if outside:
                raise UserError(f"hydra.sweeper.{key} names layer {outside[0]}, but model={model} has "
                                f"{len(blocks)} transferable blocks ({', '.join(blocks)}); use layers "
                                f"between 1 and {len(blocks)}, or null for every layer")
        kept = [(job, point) for job, point in kept if not restricts(point) or point[1] in layers]
    return kept


def composition_cover(batch: Sequence[Sequence[str]]) -> List[List[str]]:
    """The jobs of ``batch`` that compose every setting (the overrides other than the protocol
    point) and, within each setting, every value of each point key at least once. A point key is a
    typed value, not a config group: whether its value composes does not depend on the other point
    keys' values, so these jobs compose exactly when every job of the batch does."""
    covered, cover = set(), []
    for job in batch:
        setting = tuple(item for item in job if item.split("=", 1)[0] not in POINT_KEYS)
        needs = {(setting, item) for item in job if item.split("=", 1)[0] in POINT_KEYS} | {(setting, "")}
        if not needs <= covered:
            covered |= needs
            cover.append(list(job))
    return cover


def _longest_first(job: tuple[List[str], Point]) -> tuple[bool, int]:
    """Fine-tuned runs train every layer; frozen ones train less the more layers they copy."""
    _, (_, n, finetune) = job
    return not finetune, n


def waves(jobs: List[tuple[List[str], Point]]) -> List[List[List[str]]]:
    """The jobs (overrides, point) in the order they run: a first wave of the base runs (with
    ``warm_sources=true`` when a treatment of the grid copies the other half's base) followed by
    the runs that copy no base network of the sweep, and a second wave of the runs that do.
    Within a wave the longest trainings start first, so parallel workers finish together.
    Empty waves are left out."""
    kinds = [(job, treatment_named(treatment)) for job, (treatment, _, _) in sorted(jobs, key=_longest_first)]
    warm = any(kind.needs_other_base for _, kind in kinds)
    base = [job + [WARM_SOURCES] if warm else job for job, kind in kinds if kind.is_base]
    free = [job for job, kind in kinds if not kind.is_base and not kind.copies_a_sweep_base]
    copying = [job for job, kind in kinds if kind.copies_a_sweep_base]
    return [wave for wave in (base + free, copying) if wave]


class ProtocolSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None,
                 finetuned_layers: Optional[Sequence[int]] = None,
                 random_layers: Optional[Sequence[int]] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        given = {"finetuned_layers": finetuned_layers, "random_layers": random_layers}
        self.layer_lists = {key: None if layers is None else list(layers) for key, layers in given.items()}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
              ) -> None:
        """Hydra's, with the launcher's exceptions (when it is made and when it launches) ending the
        sweep in one line (benchmark/sweep/launcher_errors.py)."""
        guarded(lambda: super(ProtocolSweeper, self).setup(
            hydra_context=hydra_context, task_function=task_function, config=config), config)
        self.launcher = GuardedLauncher(self.launcher, config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Hydra's check, before a batch starts, that its jobs compose (the launcher composes each
        again as it starts it), on the batch's :func:`composition_cover`: a composition per job
        took more of a small-network sweep than its training."""
        super().validate_batch_is_legal(composition_cover(batch))

    def split_arguments(self, overrides: List[Override], max_batch_size: Optional[int]
                        ) -> List[List[List[str]]]:
        grid = BasicSweeper.split_arguments(overrides, None)[0]
        try:
            blocks = blocks_by_model(lambda job: self.hydra_context.config_loader.load_sweep_config(
                self.config, job))
            jobs = expanded_jobs(grid, self.config, blocks)
            points = protocol_points(jobs, self.config)
            valid = only_at(points, self.layer_lists, blocks)
        except UserError as error:  # one line, before any job starts
            exit_with(error)
        if len(jobs) > len(points):
            log.info("dropped %d grid points that are not runs of the protocol", len(jobs) - len(points))
        if len(points) > len(valid):
            log.info("dropped %d runs at layers outside %s", len(points) - len(valid),
                     ", ".join(f"{key}={layers}" for key, layers in self.layer_lists.items() if layers))
        write_plan(Path(self.config.hydra.sweep.dir), len(valid))
        size = max_batch_size or 0
        in_waves = waves(valid)
        return [wave[i:i + size] for wave in in_waves for i in range(0, len(wave), size)] \
            if size > 0 else in_waves
