"""methods.md: a sweep's methods, written out from its records and its findings so that a paper
can paste them, with the commands that reproduce it and BibTeX for the paper and the tool.

Every value comes from what the runs recorded (their resolved config, class halves, image
counts, versions, commit, machine) or from the aggregation itself (the metric, the findings'
settings and each finding's test as the aggregation ran it), never from defaults: a sweep made
with another recipe, or aggregated with other thresholds, says so.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from omegaconf import OmegaConf

from benchmark.analysis.findings import FindingsSettings, findings_settings
from benchmark.analysis.recipe import values_of, varying_keys
from benchmark.config import CONFIG_DIR, CONFIG_NAME
from benchmark.analysis.export import write_text
from benchmark.protocol import HIGHEST, MEAN_HIGHEST, VERDICTS
from benchmark.store.record import RunRecord

REPOSITORY = "https://github.com/transferbench/transferbench"  # as CITATION.cff's repository-code
PAPER_BIBTEX = """@inproceedings{yosinski2014transferable,
  title     = {How transferable are features in deep neural networks?},
  author    = {Yosinski, Jason and Clune, Jeff and Bengio, Yoshua and Lipson, Hod},
  booktitle = {Advances in Neural Information Processing Systems 27},
  pages     = {3320--3328},
  year      = {2014},
  eprint    = {1411.1792},
  archivePrefix = {arXiv}
}"""
METRIC_WORDS = {
    "top1": "top-1 accuracy on the target half's held-out images after the last epoch",
    "top5": "top-5 accuracy on the target half's held-out images after the last epoch",
    "loss": "cross-entropy loss on the target half's held-out images after the last epoch",
    "top1_best": "the best top-1 accuracy on the target half's held-out images over the evaluated epochs",
    MEAN_HIGHEST: f"the mean of the {HIGHEST} highest top-1 accuracies on the target half's held-out "
                  "images over the evaluated epochs (the paper's own rule)",
}
DEFAULT_METRIC = "top1"


def tool_bibtex(version: str, year: int) -> str:
    return (f"@software{{transferbench,\n  title   = {{transferbench: a layer-by-layer transferability "
            f"benchmark}},\n  author  = {{{{The transferbench developers}}}},\n  version = {{{version}}},\n"
            f"  year    = {{{year}}},\n  url     = {{{REPOSITORY}}}\n}}")


def write_methods(records: Sequence[RunRecord], summary: dict, settings: FindingsSettings,
                  sweep: Path, reference: str | None = None) -> Path:
    """Write ``sweep/methods.md`` (see :func:`methods_text`)."""
    return write_text(sweep / "methods.md", methods_text(records, summary, settings, sweep, reference))


def methods_text(records: Sequence[RunRecord], summary: dict, settings: FindingsSettings,
                 sweep: Path, reference: str | None = None) -> str:
    """The methods of the sweep in ``sweep``: its ``records`` as aggregated into ``summary`` with
    the findings ``settings`` (those that differ from conf/config.yaml's become ``--set`` options
    of the re-aggregation command) and the published ``reference`` drawn beside its curve."""
    runs = [r for r in records if r.ok]
    if not runs:
        return "# Methods\n\nNo run finished: nothing to describe.\n"
    paragraph = " ".join([
        _protocol(runs), _data(runs), _model(runs), _recipe(runs), _grid(runs), _metric(summary),
        _statistics(summary, settings), _sanity(summary), _software(runs), _hardware(runs, summary)])
    return "\n".join([
        "# Methods", "",
        "Written by the aggregation from the runs' records and the findings it tested; paste, then edit.",
        "", paragraph, "",
        "## The findings' tests", "",
        *_findings_list(summary), "",
        "## Reproduce", "",
        "```bash", *_commands(sweep, runs, summary, settings, reference), "```", "",
        *_varying(runs),
        "## Cite", "",
        "```bibtex", PAPER_BIBTEX, "", tool_bibtex(_one(runs, lambda r: (r.versions or {}).get(
            "transferbench", "unknown")), datetime.date.today().year), "```", ""])


# ---------------------------------------------------------------- the paragraph's sentences

def _protocol(runs: list[RunRecord]) -> str:
    return ("We measured the transferability of features layer by layer with the protocol of "
            "Yosinski et al. (2014), run with transferbench "
            f"{_one(runs, lambda r: (r.versions or {}).get('transferbench', 'unknown'))}.")


def _data(runs: list[RunRecord]) -> str:
    first = runs[0]
    split = (first.config or {}).get("split", {})
    halves = _one(runs, lambda r: f"{len(r.classes_A or [])} and {len(r.classes_B or [])}")
    detail = ", ".join(f"{k}={v}" for k, v in split.items() if k not in ("name", "seed"))
    text = (f"The classes of the {first.dataset} dataset were split into two disjoint halves A and B of "
            f"{halves} classes ({first.split} split{'; ' + detail if detail else ''}; the split's seed "
            "is the run's seed)")
    images = _images(runs)
    return text + (f"; {images}." if images else ".")


def _images(runs: list[RunRecord]) -> str:
    counted = [r for r in runs if r.images and not r.source_for]  # a source base's row copies its run's
    if not counted:
        return "image counts not recorded (runs made before transferbench recorded them)"
    per_class = sorted({(r.images["train"] / len(_half(r)), r.images["val"] / len(_half(r)),
                         r.images["size"]) for r in counted if _half(r)})
    size = _preprocessed_size(runs)
    parts = [f"{_number(train)} training and {_number(val)} held-out images per class at "
             f"{size or px} x {size or px} px" for train, val, px in per_class]
    limit = [f"data.{k}={getattr(runs[0], k)}" for k in ("train_per_class", "target_fraction")
             if getattr(runs[0], k) is not None]
    return "; ".join(parts) + (f" in the target half ({', '.join(limit)})" if limit else "")


def _preprocessed_size(runs: list[RunRecord]) -> int | None:
    """The input size a pretrained source's preprocessing gives every run, if it gives one."""
    sizes = {(r.preprocessing or {}).get("input_size") for r in runs} - {None}
    return max(sizes) if sizes else None


def _half(record: RunRecord) -> list[str]:
    return (record.classes_B if record.target == "B" else record.classes_A) or []


def _model(runs: list[RunRecord]) -> str:
    model = (runs[0].config or {}).get("model", {})
    settings = ", ".join(f"{k}={_value(runs, 'model.' + k)}" for k in model if k != "name")
    blocks = runs[0].blocks or []
    return (f"The model was {_one(runs, lambda r: r.model)}{f' ({settings})' if settings else ''}, cut into L = {len(blocks)} "
            f"transferable blocks ({', '.join(blocks)}) and a head that is never transferred.")


def _recipe(runs: list[RunRecord]) -> str:
    """The training recipe; a value that differs between runs is given as each one (a / b)."""
    if not all(r.config and {"train", "freeze"} <= set(r.config) for r in runs):
        return "The training recipe is not recorded: some runs hold no training config."
    t = lambda key: _value(runs, f"train.{key}")  # noqa: E731
    train = OmegaConf.create(runs[0].config["train"])
    optimiser = (f"SGD (momentum {t('momentum')}{', Nesterov' if train.nesterov else ''}, weight decay "
                 f"{t('weight_decay')})" if train.optimizer == "sgd" else
                 f"AdamW (beta1 {t('momentum')}, weight decay {t('weight_decay')})")
    schedule = {"step": f"a step schedule (x{t('gamma')} every {t('step_size')} epochs)",
                "cosine": "a cosine schedule", "constant": "a constant learning rate"}[train.schedule]
    warmup = f" after {t('warmup_epochs')} epochs of linear warm-up" if train.warmup_epochs else ""
    augment = [f"random crops after padding by {t('augment.crop_padding')} px" if train.augment.crop_padding
               else "", "random horizontal mirroring" if train.augment.flip else ""]
    augment_text = " and ".join(a for a in augment if a) or "no augmentation"
    frozen = {"eval": "in eval mode", "train": "updating"}
    return (f"Every network was trained from scratch above its copied blocks for {t('epochs')} epochs with "
            f"{optimiser}, batch size {t('batch_size')}, learning rate {t('lr')} with {schedule}{warmup}, "
            f"and {augment_text}; held-out images were evaluated every {t('eval_every')} epoch(s) and "
            "after the last. Copied blocks were either frozen (no gradient; BatchNorm statistics and "
            f"dropout {frozen[runs[0].config['freeze']['bn']]}) or fine-tuned at "
            f"{_value(runs, 'finetune_lr_scale')} times the learning rate (the + treatments).")


def _grid(runs: list[RunRecord]) -> str:
    counts = Counter(re.sub(r"\d+$", "", r.label) for r in runs)
    layers = sorted({r.n for r in runs if r.n})
    seeds = sorted({r.seed for r in runs})
    targets = sorted({r.target for r in runs if not r.source_for})
    treatments = ", ".join(f"{label} ({count} networks)" for label, count in sorted(counts.items()))
    return (f"We trained {len(runs)} networks: {treatments}, at n = {_ranges(layers)} copied blocks, "
            f"with target half {' and '.join(targets)} and seeds {_ranges(seeds)} ({len(seeds)} seeds; "
            "a seed sets the class split, the initialisations and the data order).")


def _metric(summary: dict) -> str:
    metric = summary.get("metric", DEFAULT_METRIC)
    return f"Each network was scored by {METRIC_WORDS.get(metric, metric)}."


def _statistics(summary: dict, settings: FindingsSettings) -> str:
    findings = summary["findings"]
    if findings.get("skipped"):
        return f"The paper's findings were not tested: {findings['skipped']}."
    return (f"The paper's six findings were tested on runs paired by seed and target half, the two "
            f"directions of a class split averaged, so that the unit of replication is the split "
            f"({findings['units']} splits), with one-sided t-tests on the per-split differences in "
            f"percentage points, each at alpha = {settings.alpha} (the tests and their layers are listed "
            "below; a claim about every layer needs each layer's test to reject, a claim about some layer "
            "is Holm-corrected across layers). Each finding's true effect is placed in one of the regions "
            f"{', '.join(VERDICTS[:-1])} (beyond its margin, inside it, under {settings.negligible} x the "
            "margin or reversed) or left inconclusive; no two regions can be shown on the same data. "
            f"Settings: {_settings_text(settings)}. Means carry 95% confidence intervals (Student t); the "
            "number of seeds was fixed before the verdicts were read (no sequential design).")


def _settings_text(settings: FindingsSettings) -> str:
    return ", ".join(f"{f.name} = {getattr(settings, f.name)}" for f in dataclasses.fields(settings))


def _sanity(summary: dict) -> str:
    sanity = summary.get("sanity") or {}
    warnings = sanity.get("warnings") or []
    fired = "; ".join(warnings) if warnings else "neither check fired"
    return (f"Data regime: {sanity.get('regime', 'not checked')}. Sanity checks (base networks still "
            f"improving at the end of training; BnB at the lowest n above baseB; BnB+ above baseB at some n; "
            f"a check that fires makes the findings it touches provisional): {fired}.")


def _software(runs: list[RunRecord]) -> str:
    versions = _one(runs, lambda r: ", ".join(f"{k} {v}" for k, v in (r.versions or {}).items()))
    commits = sorted({f"{r.git_commit or 'unknown'}{_dirty(r)}" for r in runs})
    return f"Software: {versions}; transferbench commit {', '.join(commits)}."


def _dirty(record: RunRecord) -> str:
    return {True: " with uncommitted changes", False: " (clean)", None: ""}[record.git_dirty]


def _hardware(runs: list[RunRecord], summary: dict) -> str:
    machines = sorted({_machine_text(r) for r in runs})
    total = summary.get("cost", {}).get("total_s") or summary.get("wall_s_total") or 0.0
    return (f"Hardware: {'; '.join(machines)}. The runs' wall times add up to "
            f"{datetime.timedelta(seconds=round(total))} (h:mm:ss).")


def _machine_text(record: RunRecord) -> str:
    machine = record.machine or {}
    if not machine:
        return f"device {record.device or 'unknown'} (machine not recorded)"
    gpus = f", GPUs {', '.join(machine['gpus'])}" if machine.get("gpus") else ""
    return f"{machine.get('cpu')} ({machine.get('cores')} cores{gpus}; runs on {record.device})"


# ---------------------------------------------------------------- the lists after it

def _findings_list(summary: dict) -> list[str]:
    return [f"{f['id']}. {f['statement']}: {f['test']} (n = {_ranges(f.get('layers') or [])})."
            for f in summary["findings"]["findings"]]


def _commands(sweep: Path, runs: list[RunRecord], summary: dict, settings: FindingsSettings,
              reference: str | None) -> list[str]:
    commits = sorted({r.git_commit for r in runs if r.git_commit})
    lines = [f"git checkout {commits[0]}" if len(commits) == 1 else
             f"# runs made at several commits: {', '.join(commits) or 'unknown'}",
             "pip install -e .", f"# the sweep{_sweep_note(runs)}",
             _sweep_command(sweep), "# its reports (re-aggregation, no training)"]
    analysis = ["python -m benchmark.analysis", str(sweep)]
    metric = summary.get("metric", DEFAULT_METRIC)
    analysis += [f"--metric {metric}"] if metric != DEFAULT_METRIC else []
    analysis += [f"--reference {reference}"] if reference else []
    shipped = shipped_findings()
    analysis += [_quoted(f"--set=analysis.findings.{f.name}={_written(getattr(settings, f.name))}")
                 for f in dataclasses.fields(settings) if getattr(settings, f.name) != getattr(shipped, f.name)]
    return lines + [" ".join(analysis)]


def shipped_findings() -> FindingsSettings:
    """``analysis.findings`` as conf/config.yaml ships it (read as YAML: this also runs inside a
    Hydra callback, where composing another config is not possible)."""
    shipped = OmegaConf.load(Path(CONFIG_DIR) / f"{CONFIG_NAME}.yaml").analysis.findings
    return findings_settings(OmegaConf.to_container(shipped))


def _written(value: object) -> str:
    """A value as the command line writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    return "[" + ",".join(map(_written, value)) + "]" if isinstance(value, list) else str(value)


def _sweep_note(runs: list[RunRecord]) -> str:
    seeds = sorted({r.seed for r in runs})
    return f" (its runs hold seeds {_ranges(seeds)}: the command below is the last one run into it)"


def _sweep_command(sweep: Path) -> str:
    return recorded_command(sweep) or \
        "# (no multirun.yaml in the sweep directory: the sweep command was not recorded)"


def recorded_command(sweep: Path) -> str | None:
    """The sweep's command line as Hydra recorded it in ``multirun.yaml`` (the last one run into the
    directory), or None where there is none."""
    recorded = sweep / "multirun.yaml"
    if not recorded.is_file():
        return None
    overrides = OmegaConf.load(recorded).hydra.overrides
    hydra = [o for o in overrides.hydra if not o.startswith("hydra.mode=")]
    return " ".join(["python -m benchmark -m", *map(_quoted, [*overrides.task, *hydra])])


def _quoted(override: str) -> str:
    return f"'{override}'" if re.search(r"[\[\]{}()$*? ]", override) else override


def _varying(runs: list[RunRecord]) -> list[str]:
    keys = varying_keys(runs)
    if not keys:
        return []
    return ["Settings that differ between the runs (results.csv has a column for each): "
            + "; ".join(f"`{k}`: {', '.join(map(str, values_of(runs, k)))}" for k in keys) + ".", ""]


# ---------------------------------------------------------------- small helpers

def _value(runs: list[RunRecord], key: str) -> str:
    """The config value ``key`` (dotted) of the runs, or each distinct one (joined by ' / ')."""
    return " / ".join(_written(v) for v in values_of(runs, key))


def _one(runs: list[RunRecord], value) -> str:
    """The value every run shares, or each distinct one (joined by ' / ')."""
    return " / ".join(dict.fromkeys(str(value(r)) for r in runs))


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _ranges(values: Sequence[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    spans: list[list[int]] = []
    for value in sorted(set(values)):
        if spans and value == spans[-1][-1] + 1:
            spans[-1].append(value)
        else:
            spans.append([value])
    return ", ".join(f"{s[0]}-{s[-1]}" if len(s) > 1 else f"{s[0]}" for s in spans) or "none"
