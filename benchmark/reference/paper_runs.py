"""The paper's own networks as run records: the positive control of the analysis.

``validation_history.csv.gz`` (shared/reference/yosinski2014/, its README) holds every validation
evaluation of Yosinski et al.'s 148 networks, extracted from the authors' Caffe logs (columns
``network, iteration, top1, loss``). :func:`import_paper_runs` turns each network of the protocol
into a :class:`~benchmark.store.record.RunRecord` of the ``yosinski2014`` experiment, written by
the result store into one sweep directory per class split, which the ordinary aggregation reads
(``python -m benchmark.analysis DIR --metric mean_highest``).

The authors' result folders name the networks:

- ``half{s}A`` / ``half{s}B``: base networks of the random split of seed s (split=random);
- ``transfer{s}{X}{s}{Y}_1_{n}``: the first n layers of the base on half X, frozen, trained on half
  Y (target Y, source X: X = Y a selffer, X != Y a transfer); ``transfer-ft...``: fine-tuned;
- ``halfnatmanA`` / ``halfnatmanB``, ``transfernatman{AB,BA}_1_{n}``: the natural / man-made
  split (split=natural_manmade, seed 0: one split, so both directions pair with its own bases);
- ``netbase`` and ``nolearn_1_{n}``: the 1000-class network and the first n layers random and
  frozen on all 1000 classes (split=all, target B): the random-weights control, a task of its own;
- ``reduced-{k}``: 1000-class networks on k images per class, not a point of the protocol: left out.

An evaluation's ``epoch`` is its iteration in epochs of the ``caffe`` recipe (conf/train/caffe.yaml:
the paper's 450,000 iterations are its 180 epochs, 2,500 iterations each), so the sanity checks'
``tail_epochs`` mean epochs of training; each history entry keeps its ``iteration`` too.

The whole file is read and checked before anything is written; a record already in the output
directory is never overwritten (the same record again is skipped: re-importing is idempotent).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import benchmark
from benchmark.config import compose_config
from benchmark.data import split_classes
from benchmark.data.classlists import ilsvrc_wnids, imagenet_families
from benchmark.errors import UserError
from benchmark.blocks import model_blocks
from benchmark.models import model_label
from benchmark.protocol import (BASE_TREATMENT, RANDOM_CONTROL, SELFFER, SERIES_BY_KEY, TRANSFER, layer_name,
                                run_label, source_half)
from benchmark.reference import load_reference
from benchmark.schema.split import RANDOM_SPLIT
from benchmark.store.record import OK, RunRecord
from benchmark.store.results import RESULT_FILE, write_result

PAPER = "yosinski2014"          # the reference (benchmark/reference/yosinski2014.json)
EXPERIMENT = "yosinski2014"     # conf/experiment/: the dataset, model, recipe and sweep name
NATURAL_MANMADE, WHOLE = "natural_manmade", "all"  # conf/split/ of the dissimilar and 1000-class nets
COLUMNS = ("network", "iteration", "top1", "loss")
DEFAULT_HISTORY = (Path(benchmark.__file__).resolve().parent.parent.parent
                   / "shared" / "reference" / PAPER / "validation_history.csv.gz")
SELFFER_TREATMENT, TRANSFER_TREATMENT, RANDOM_TREATMENT = (
    SERIES_BY_KEY[key].treatment for key in (SELFFER, TRANSFER, RANDOM_CONTROL))


@cache
def paper_reference() -> dict:
    """The paper's reference (benchmark/reference/yosinski2014.json), read once."""
    return load_reference(PAPER)


class HistoryError(UserError):
    """The validation history cannot be imported; the message names the row and the fix."""


@dataclass(frozen=True)
class PaperNetwork:
    """One of the authors' networks as a point of the protocol."""

    name: str
    split: str               # the split's name in conf/split/
    seed: int                # the run's seed: the random split's seed (0 for the fixed splits)
    treatment: str
    n: int
    finetune: bool
    target: str
    source_base: str | None  # the network whose first n layers it copied
    own_base: str | None     # the base network of its target half, which it is compared with

    @property
    def bases(self) -> list[str]:
        """The networks it needs in the same import."""
        return [b for b in (self.source_base, self.own_base) if b is not None]


def paper_network(name: str) -> PaperNetwork | None:
    """The protocol point of the network ``name``; None for one left out (``reduced-*``);
    ValueError for a name none of the authors' folders has."""
    if m := re.fullmatch(r"half(\d)([AB])", name):
        return PaperNetwork(name, RANDOM_SPLIT, int(m[1]), BASE_TREATMENT, 0, False, m[2], None, None)
    if m := re.fullmatch(r"transfer(-ft)?(\d)([AB])\2([AB])_1_(\d+)", name):
        finetune, seed, source, target, n = bool(m[1]), m[2], m[3], m[4], int(m[5])
        treatment = SELFFER_TREATMENT if source == target else TRANSFER_TREATMENT
        return PaperNetwork(name, RANDOM_SPLIT, int(seed), treatment, n, finetune, target,
                            f"half{seed}{source}", f"half{seed}{target}")
    if m := re.fullmatch(r"halfnatman([AB])", name):
        return PaperNetwork(name, NATURAL_MANMADE, 0, BASE_TREATMENT, 0, False, m[1], None, None)
    if m := re.fullmatch(r"transfernatman(AB|BA)_1_(\d+)", name):
        source, target = m[1]
        return PaperNetwork(name, NATURAL_MANMADE, 0, TRANSFER_TREATMENT, int(m[2]), False, target,
                            f"halfnatman{source}", f"halfnatman{target}")
    if name == "netbase":
        return PaperNetwork(name, WHOLE, 0, BASE_TREATMENT, 0, False, "B", None, None)
    if m := re.fullmatch(r"nolearn_1_(\d+)", name):
        return PaperNetwork(name, WHOLE, 0, RANDOM_TREATMENT, int(m[1]), False, "B", None, "netbase")
    if re.fullmatch(r"reduced-\d+", name):
        return None
    raise ValueError(f"network {name!r} is none of the paper's (half{{s}}A/B, transfer[-ft]{{s}}X{{s}}Y_1_{{n}}, "
                     "halfnatmanA/B, transfernatmanAB/BA_1_{n}, netbase, nolearn_1_{n}, reduced-{k})")


@dataclass
class History:
    """The networks of a validation-history file, checked: their evaluations by iteration."""

    path: Path
    sha256: str                                              # of the file as stored
    networks: dict[str, PaperNetwork]
    evaluations: dict[str, dict[int, tuple[float, float]]]  # network -> iteration -> (top1, loss)
    first_line: dict[str, int]                               # network -> its first row's line
    left_out: list[str]
    rows: int


def read_history(path: Path) -> History:
    """Read and check every row of ``path``; :class:`HistoryError` naming the first bad row."""
    stored, data = _file_bytes(path)
    history = History(path, hashlib.sha256(stored).hexdigest(), {}, {}, {}, [], 0)
    for line, row in _rows(path, data):
        name = row["network"]
        if name not in history.first_line:
            history.first_line[name] = line
            _classify(history, name, line)
        if name in history.networks:
            iteration, top1, loss = _values(path, line, row)
            evaluations = history.evaluations.setdefault(name, {})
            if iteration in evaluations:
                raise HistoryError(f"{path}: line {line} (network {name}): iteration {iteration} "
                                   "appears twice; keep one row per network and iteration")
            evaluations[iteration] = (top1, loss)
        history.rows += 1
    if not history.rows:
        raise HistoryError(f"{path} holds no evaluations; pass the paper's validation_history.csv.gz")
    return history


def _file_bytes(path: Path) -> tuple[bytes, bytes]:
    """The file as stored (its checksum is the records') and decompressed."""
    try:
        stored = path.read_bytes()
        return stored, gzip.decompress(stored)
    except (OSError, EOFError, zlib.error) as exc:  # missing, unreadable, not gzip, truncated
        raise HistoryError(f"cannot read {path} as a gzip file ({exc}); pass the paper's "
                           f"validation_history.csv.gz with --history PATH") from None


def _rows(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of the CSV, after checking its header."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path} is not UTF-8 text ({exc}); pass the paper's "
                           "validation_history.csv.gz") from None
    reader = csv.reader(lines)
    header = next(reader, [])
    if tuple(header) != COLUMNS:
        raise HistoryError(f"{path}: line 1: the header is {','.join(header)!r}, expected "
                           f"{','.join(COLUMNS)!r}; pass the paper's validation_history.csv.gz")
    for line, fields in enumerate(reader, start=2):
        if len(fields) != len(COLUMNS):
            name = fields[0] if fields else ""
            raise HistoryError(f"{path}: line {line} (network {name}): {len(fields)} fields, expected "
                               f"{len(COLUMNS)} ({','.join(COLUMNS)})")
        yield line, dict(zip(COLUMNS, fields))


def _classify(history: History, name: str, line: int) -> None:
    try:
        network = paper_network(name)
    except ValueError as exc:
        raise HistoryError(f"{history.path}: line {line} (network {name}): {exc}; fix or drop its rows") from None
    if network is None:
        history.left_out.append(name)
    else:
        history.networks[name] = network


def _values(path: Path, line: int, row: dict[str, str]) -> tuple[int, float, float]:
    """The row's iteration, top-1 and loss; :class:`HistoryError` for a value that is not one."""
    where = f"{path}: line {line} (network {row['network']})"
    iteration = _number(row["iteration"])
    if iteration is None or iteration != int(iteration) or iteration < 1:
        raise HistoryError(f"{where}: iteration {row['iteration']!r} is not a positive whole number")
    top1, loss = _number(row["top1"]), _number(row["loss"])
    if top1 is None or not 0.0 <= top1 <= 1.0:
        raise HistoryError(f"{where}: top1 {row['top1']!r} is not a number in [0, 1]")
    if loss is None or loss < 0:
        raise HistoryError(f"{where}: loss {row['loss']!r} is not a non-negative number")
    return int(iteration), top1, loss


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_complete(history: History, partial: bool) -> None:
    """Every copying network's bases are in the file; without ``partial``, so is every network of
    the paper (its count of networks and evaluations: the reference's ``validation_history``)."""
    for name, network in history.networks.items():
        absent = [base for base in network.bases if base not in history.networks]
        if absent:
            bases = f"base network {absent[0]} is" if len(absent) == 1 else f"base networks {' and '.join(absent)} are"
            raise HistoryError(f"{history.path}: line {history.first_line[name]} (network {name}): its {bases} "
                               f"not in the file; add their rows, or drop {name}'s")
    if partial:
        return
    expected = paper_reference()["validation_history"]
    count, rows = len(history.networks) + len(history.left_out), history.rows
    if (count, rows) != (expected["networks"], expected["evaluations"]):
        raise HistoryError(f"{history.path} holds {count} networks and {rows} evaluations, the paper's file "
                           f"{expected['networks']} and {expected['evaluations']}; import the complete "
                           "file, or pass --partial to import these networks alone")


@dataclass
class Experiment:
    """One split of the ``yosinski2014`` experiment as the tool composes it (conf/)."""

    cfg: DictConfig
    halves: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)  # by seed

    @classmethod
    def of(cls, split: str) -> "Experiment":
        return cls(compose_config(f"experiment={EXPERIMENT}", f"split={split}"))

    @cached_property
    def blocks(self) -> list[str]:
        return model_blocks(self.cfg)

    def classes(self, seed: int) -> tuple[list[str], list[str]]:
        """The wnids of halves A and B as the tool splits them for ``seed``."""
        if seed not in self.halves:
            self.cfg.seed = seed  # the split's seed is the run's (conf/split/*.yaml: seed: ${seed})
            wnids = ilsvrc_wnids()
            split = split_classes(self.cfg.split, wnids, imagenet_families(wnids, self.cfg.dataset.name))
            self.halves[seed] = [wnids[c] for c in split.A], [wnids[c] for c in split.B]
        return self.halves[seed]

    def config(self, seed: int) -> dict:
        """The resolved config of the experiment's run of ``seed``: the paper's protocol and recipe
        as conf/experiment/yosinski2014.yaml writes them (what methods.md describes)."""
        self.cfg.seed = seed
        return OmegaConf.to_container(self.cfg, resolve=True)

    @cached_property
    def iterations_per_epoch(self) -> float:
        """Iterations of the paper's solver per epoch of the tool's recipe."""
        return paper_reference()["validation_history"]["iterations"] / self.cfg.train.epochs


def paper_record(history: History, name: str, experiment: Experiment) -> RunRecord:
    """The run record of the network ``name``, marked as imported from ``history``."""
    network, evaluations = history.networks[name], sorted(history.evaluations[name].items())
    cfg, blocks = experiment.cfg, experiment.blocks
    if network.treatment != BASE_TREATMENT and not 1 <= network.n <= len(blocks):
        raise HistoryError(f"{history.path}: line {history.first_line[name]} (network {name}): layer "
                           f"{network.n} is not one of {model_label(cfg.model)}'s layers 1..{len(blocks)}; "
                           "drop its rows")
    classes_a, classes_b = experiment.classes(network.seed)
    point = {"treatment": network.treatment, "n": network.n, "finetune": network.finetune,
             "target": network.target, "seed": network.seed}
    per_epoch = experiment.iterations_per_epoch
    imported = {"file": history.path.name, "sha256": history.sha256, "network": name,
                "origin": paper_reference()["source"],
                "epoch": f"iteration / {per_epoch:g} (the paper's solver in epochs of train={cfg.train.name})"}
    last = evaluations[-1][1]
    return RunRecord(
        label=run_label(network.treatment, network.n, network.finetune, network.target), status=OK,
        source=source_half(network.treatment, network.target), block=layer_name(network.n, blocks),
        blocks=blocks, dataset=cfg.dataset.name, model=model_label(cfg.model), split=cfg.split.name,
        train_per_class=cfg.data.train_per_class, target_fraction=cfg.data.target_fraction,
        classes_A=classes_a, classes_B=classes_b,
        metrics={"top1": last[0], "loss": last[1], "top1_best": max(top1 for _, (top1, _) in evaluations)},
        history=[{"epoch": iteration / per_epoch, "iteration": iteration, "val_top1": top1,
                  "val_loss": loss} for iteration, (top1, loss) in evaluations],
        source_network=f"{PAPER}:{network.source_base}" if network.source_base else None,
        config={**experiment.config(network.seed), **point, "imported": imported},
        versions={"importer": f"transferbench {benchmark.__version__}"}, git_commit=None, **point)


@dataclass(frozen=True)
class Imported:
    """What :func:`import_paper_runs` did: the sweep directories, records written and kept."""

    history: History
    sweeps: list[Path]
    written: int
    already: int


def import_paper_runs(out_dir: Path, history_path: Path = DEFAULT_HISTORY, partial: bool = False) -> Imported:
    """Import the validation history at ``history_path`` into ``out_dir``/<sweep name>/<network>/.

    Everything is checked before the first file is written; :class:`HistoryError` names the
    problem. A result.json already there holding the same record is kept (idempotent); holding
    another one is an error, and it is never overwritten.
    """
    history = read_history(history_path)
    check_complete(history, partial)
    experiments = {split: Experiment.of(split) for split in sorted({n.split for n in history.networks.values()})}
    planned = {out_dir / experiments[network.split].cfg.sweep_name / name:
               paper_record(history, name, experiments[network.split])
               for name, network in history.networks.items()}
    new = {run_dir: record for run_dir, record in planned.items() if not _already_there(run_dir, record)}
    for run_dir, record in new.items():
        try:
            write_result(run_dir, record)
        except OSError as exc:
            raise HistoryError(f"cannot write {run_dir / RESULT_FILE} ({exc}); import into a directory you can "
                               "write to (the records written so far are whole, and importing again skips them)"
                               ) from None
    sweeps = sorted({run_dir.parent for run_dir in planned})
    return Imported(history, sweeps, len(new), len(planned) - len(new))


def _already_there(run_dir: Path, record: RunRecord) -> bool:
    """Whether ``run_dir`` holds this very record; :class:`HistoryError` if it holds another."""
    path = run_dir / RESULT_FILE
    if not path.exists():
        return False
    try:
        there = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        there = None
    if there != json.loads(json.dumps(record.to_json(), default=str)):
        raise HistoryError(f"{path} already holds another record than the one imported from "
                           f"{record.config['imported']['network']}; it is kept: import into another "
                           "directory (or move that one away)")
    return True
