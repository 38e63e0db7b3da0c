"""The protocol's vocabulary, defined once: treatments with their behaviour, series, the roles
the analysis compares, run labels, valid points, how each series is drawn (figure style)
and printed (table header), the metrics a network is scored by and the findings' verdicts.

Everything else (the run, the sweeper, ``--help``, the aggregation, the findings, the figure,
the table) derives what it needs from here; no treatment, series or verdict name is written
anywhere else (tests/test_protocol.py reads the code for it). Adding a treatment is its entry in
``TREATMENTS``, its series in ``SERIES``, and, when its target network is built otherwise than
by copying the first n blocks, its builder (``benchmark.networks.TARGET_BUILDERS``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from benchmark.errors import UserError

HALVES = ("A", "B")
RUN_METRICS = ("top1", "top5", "loss", "top1_best")  # what a finished run reports on its held-out images
# Yosinski et al.'s own score of a network: the mean of its HIGHEST best held-out top-1 evaluations
# (``mean_highest`` in the authors' plotting notebook); the analysis reads it off a run's history
MEAN_HIGHEST, HIGHEST = "mean_highest", 10
METRICS = (*RUN_METRICS, MEAN_HIGHEST)  # what the analysis can score a network by (analysis.metric)
ACCURACIES = ("top1", "top5", "top1_best", MEAN_HIGHEST)  # fractions of images right: read in points
EVERY_LAYER = "all"  # n=all in a sweep: every layer 1..L of the chosen model
LAYER_RULE = (f"is not a layer; use an integer n >= 0 (the number of copied layers), or "
              f"n={EVERY_LAYER} in a sweep")


# where a treatment's copied blocks come from
TARGET_BASE = "target"       # the base network of the target half, trained by the sweep
OTHER_BASE = "other"         # the other half's base network, trained by the sweep
EXTERNAL = "external"        # a network given by the user (source.checkpoint / source.weights)
SWEEP_BASES = (TARGET_BASE, OTHER_BASE)


@dataclass(frozen=True)
class Treatment:
    """How a network's first n blocks are made, and what that asks of a sweep.

    ``source``: where the copied blocks come from (``TARGET_BASE``, ``OTHER_BASE``,
    ``EXTERNAL``), or None: nothing is copied (the base network, or the random-frozen
    control whose n blocks stay at their random init). ``letter``: the source's letter in run
    labels (``XnB``) where it does not follow from the halves. ``copies_layers``: a run has
    n >= 1 copied (or random) blocks; without, it is the base network itself, at n = 0.
    ``finetunable``: finetune=true trains its first n blocks too. ``builder``: how its target
    network is built (``benchmark.networks.TARGET_BUILDERS``).
    """

    name: str
    source: str | None
    letter: str | None = None
    copies_layers: bool = True
    finetunable: bool = True
    builder: str = "copy_first_n"

    @property
    def is_base(self) -> bool:
        """Its runs are the base networks themselves (the reference of the curve)."""
        return not self.copies_layers

    @property
    def copies_a_sweep_base(self) -> bool:
        """Its layers come from a base network the sweep itself trains (selffer, transfer)."""
        return self.source in SWEEP_BASES

    @property
    def needs_other_base(self) -> bool:
        """It copies the other half's base, which the sweep's first wave must train too."""
        return self.source == OTHER_BASE


TREATMENTS: dict[str, Treatment] = {t.name: t for t in (
    Treatment("base", None, copies_layers=False, finetunable=False),
    Treatment("selffer", TARGET_BASE),
    Treatment("transfer", OTHER_BASE),
    Treatment("random", None, letter="R", finetunable=False),
    Treatment("external", EXTERNAL, letter="X"),
)}
BASE_TREATMENT = next(t.name for t in TREATMENTS.values() if t.is_base)


@dataclass(frozen=True)
class Series:
    """One curve of the generality figure: a treatment, frozen or fine-tuned.

    ``key`` names it in summary.json, results and W&B; ``legend`` and ``latex`` in the
    figure and the table; ``panel`` puts controls that collapse towards chance in a
    panel of their own; ``offset`` shifts its markers so series at one n do not overlap.
    """

    key: str
    treatment: str
    finetune: bool
    legend: str
    latex: str
    color: str
    marker: str = "o"
    offset: float = 0.0
    face: str | None = None  # marker face colour (default: color)
    panel: str = "main"      # "main" | "control"
    source_base: bool = False  # a base network reported as the source of transfer runs


SERIES: tuple[Series, ...] = (
    Series("baseB", "base", False, "base$B$", "base$B$", "black", face="white"),
    Series("baseA", "base", False, "base$A$ (source)", "base$A$", "#99000d", "s", 0.1,
           face="white", source_base=True),
    Series("BnB", "selffer", False, "selffer BnB", "BnB", "#08306b", offset=-0.15),
    Series("BnB+", "selffer", True, "selffer BnB$^+$", "BnB$^{+}$", "#6baed6", offset=-0.05),
    Series("AnB", "transfer", False, "transfer AnB", "AnB", "#99000d", offset=0.05),
    Series("AnB+", "transfer", True, "transfer AnB$^+$", "AnB$^{+}$", "#fb8072", offset=0.15),
    Series("XnB", "external", False, "external XnB", "XnB", "#006d2c", "s", 0.25),
    Series("XnB+", "external", True, "external XnB$^+$", "XnB$^{+}$", "#74c476", "s", 0.30),
    Series("random", "random", False, "random frozen RnB", "random", "#8c8c8c", "v", 0.25,
           panel="control"),
)
SERIES_BY_KEY = {s.key: s for s in SERIES}


def treatment_named(name: str) -> Treatment:
    """The treatment called ``name``; :class:`UserError` naming the valid ones otherwise."""
    if name not in TREATMENTS:
        raise UserError(f"treatment={name} is unknown; choose one of {', '.join(TREATMENTS)}")
    return TREATMENTS[name]


def series_of(treatment: str, finetune: bool, source_base: bool = False) -> Series:
    """The series a run belongs to (``source_base``: a base network reported as the source
    of another half's runs); ``ValueError`` for a treatment this version does not know."""
    if treatment not in TREATMENTS:
        raise ValueError(f"unknown treatment {treatment!r}, expected one of {', '.join(TREATMENTS)}")
    finetune = finetune and TREATMENTS[treatment].finetunable
    return next(s for s in SERIES if s.treatment == treatment and s.finetune == finetune
                and s.source_base == source_base)


# The roles the analysis compares (curve, derived quantities, findings, sanity checks), by name
BASE = series_of(BASE_TREATMENT, False).key                        # baseB: the reference
SOURCE_BASE = series_of(BASE_TREATMENT, False, source_base=True).key  # baseA: the source of transfer
BASES = (BASE, SOURCE_BASE)
SELFFER = series_of("selffer", False).key           # BnB
SELFFER_TUNED = series_of("selffer", True).key      # BnB+
TRANSFER = series_of("transfer", False).key         # AnB
TRANSFER_TUNED = series_of("transfer", True).key    # AnB+
RANDOM_CONTROL = series_of("random", False).key     # random frozen first n blocks
EXTERNAL_SOURCED = series_of(EXTERNAL, False).key   # XnB: from a network given by the user
EXTERNAL_SOURCED_TUNED = series_of(EXTERNAL, True).key  # XnB+
# the networks a base run reads out on its target half (benchmark/measures/labelled.py): its own
# base (the cheap BnB), the other half's (the cheap AnB), the sweep's external source when it has
# one (the cheap XnB: e.g. a pretrained zoo model) and a freshly initialised network of the same
# model (the cheap random control); and the protocol's series each cheap curve answers for
OWN, OTHER, EXTERNAL_SOURCE, RANDOM_INIT = "own", "other", "external_source", "random_init"
ANSWERS_FOR = {OTHER: (TRANSFER, TRANSFER_TUNED), EXTERNAL_SOURCE: (EXTERNAL_SOURCED, EXTERNAL_SOURCED_TUNED),
               RANDOM_INIT: (RANDOM_CONTROL,)}


# The verdicts of a finding tested on a sweep (benchmark/analysis/verdict.py): the effect shown
# beyond the finding's margin (holds), shown real but inside it (small: the finding's direction,
# smaller than the paper's meaningful size), shown absent or reversed (contradicted), or none of
# these (inconclusive, with the seeds a decision would need); NOT_ENOUGH_RUNS: a test lacks runs
HOLDS, SMALL, CONTRADICTED, INCONCLUSIVE = "holds", "real but small", "contradicted", "inconclusive"
VERDICTS = (HOLDS, SMALL, CONTRADICTED, INCONCLUSIVE)
NOT_ENOUGH_RUNS = "not enough runs"


def other_half(half: str) -> str:
    return "B" if half == "A" else "A"


def source_half(treatment: str, target: str) -> str | None:
    """The half whose base network gives the first n layers (None: no base network does)."""
    source = TREATMENTS[treatment].source
    return {TARGET_BASE: target, OTHER_BASE: other_half(target)}.get(source)


def run_label(treatment: str, n: int, finetune: bool, target: str) -> str:
    """``baseB``, ``BnB3``, ``BnB+3``, ``AnB3``, ``AnB+3``, ``XnB+3`` (external source),
    ``RnB3`` (random-frozen control)."""
    if TREATMENTS[treatment].is_base:
        return f"base{target}"
    first = source_half(treatment, target) or TREATMENTS[treatment].letter
    return f"{first}n{target}{'+' if finetune else ''}{n}"


def combination_problem(treatment: str, n: int, finetune: bool) -> str | None:
    """Why (treatment, n, finetune) is not a run of the protocol, or None if it is."""
    kind = treatment_named(treatment)
    if not kind.copies_layers and (n != 0 or finetune):
        return f"treatment={treatment} copies no layers and has nothing to fine-tune; use n=0 finetune=false"
    if kind.copies_layers and n == 0:
        return f"treatment={treatment} with n=0 copies no layers, which is the base network; use treatment=base"
    if finetune and not kind.finetunable:
        return f"treatment={treatment} keeps its n random layers frozen; use finetune=false"
    return None


def check_point(cfg: DictConfig) -> None:
    """Validate the protocol point of one run (before its model is known); raise
    :class:`UserError` naming the fix."""
    kind = treatment_named(cfg.treatment)
    if cfg.target not in HALVES:
        raise UserError(f"target={cfg.target} is not a class half; use target=A or target=B")
    if cfg.n == EVERY_LAYER:
        raise UserError(f"n={EVERY_LAYER} sweeps every layer and needs a sweep (-m); for one run "
                        "give the layer as an integer, e.g. n=3")
    if not isinstance(cfg.n, int) or isinstance(cfg.n, bool):
        raise not_a_layer(cfg.n)
    if not isinstance(cfg.finetune, bool):
        raise UserError(f"finetune={cfg.finetune} is not a boolean; use finetune=true or finetune=false")
    problem = combination_problem(cfg.treatment, cfg.n, cfg.finetune)
    if problem:
        raise UserError(problem)
    external = kind.source == EXTERNAL
    given = [key for key in ("checkpoint", "weights") if cfg.source[key] is not None]
    if external and len(given) != 1:
        raise UserError("treatment=external copies its layers from a network you give: set exactly "
                        "one of source.checkpoint=PATH or source.weights=NAME (e.g. IMAGENET1K_V1)")
    if given and kind.copies_a_sweep_base:  # base and random runs copy nothing: fine in a sweep
        raise UserError(f"source.{given[0]} is set but treatment={cfg.treatment} copies from a base "
                        "network trained here, not from it; use treatment=external to copy layers "
                        "from that network")


def not_a_layer(n: object) -> UserError:
    return UserError(f"n={n} {LAYER_RULE}")


def check_layer(n: int, blocks: Sequence[str], model: str) -> None:
    """``n`` must name a layer of the model: 0..L, L its number of transferable blocks."""
    if n < 0:
        raise not_a_layer(n)
    if n > len(blocks):
        raise UserError(f"n={n} is outside 0..{len(blocks)} for model={model}, whose "
                        f"{len(blocks)} transferable blocks are {', '.join(blocks)}; use n between "
                        f"1 and {len(blocks)}, or n={EVERY_LAYER} in a sweep")


def layer_name(n: int, blocks: Sequence[str]) -> str | None:
    """The name of layer n (the last copied block), None for n = 0."""
    return blocks[n - 1] if n else None


def every_layer(depth: int) -> list[int]:
    """What ``n=all`` means for a treatment that copies layers: 1..L."""
    return list(range(1, depth + 1))
