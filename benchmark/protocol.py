"""The paper's vocabulary: treatments, source halves, run labels, valid combinations."""
from __future__ import annotations

from omegaconf import DictConfig

from benchmark.errors import UserError

TREATMENTS = ("base", "selffer", "transfer", "random")
HALVES = ("A", "B")
NUM_LAYERS = 7  # transferable layers (conv1..conv5, fc6, fc7); fc8 is always re-initialised


def other_half(half: str) -> str:
    return "B" if half == "A" else "A"


def source_half(treatment: str, target: str) -> str | None:
    """Which base network the first n layers come from (None: nothing is copied)."""
    return {"selffer": target, "transfer": other_half(target)}.get(treatment)


def run_label(treatment: str, n: int, finetune: bool, target: str) -> str:
    """``baseB``, ``BnB3``, ``BnB+3``, ``AnB3``, ``AnB+3``, ``RnB3`` (random-frozen control)."""
    if treatment == "base":
        return f"base{target}"
    first = source_half(treatment, target) or "R"
    return f"{first}n{target}{'+' if finetune else ''}{n}"


def combination_problem(treatment: str, n: int, finetune: bool) -> str | None:
    """Why (treatment, n, finetune) is not a run of the protocol, or None if it is."""
    if treatment == "base" and (n != 0 or finetune):
        return "treatment=base copies no layers and has nothing to fine-tune; use n=0 finetune=false"
    if treatment != "base" and n == 0:
        return f"treatment={treatment} with n=0 copies no layers, which is the base network; use treatment=base"
    if treatment == "random" and finetune:
        return "treatment=random keeps its n random layers frozen; use finetune=false"
    return None


def check_run(cfg: DictConfig) -> None:
    """Validate the top-level keys of one run; raise :class:`UserError` naming the fix."""
    if cfg.treatment not in TREATMENTS:
        raise UserError(f"treatment={cfg.treatment} is unknown; choose one of {', '.join(TREATMENTS)}")
    if cfg.target not in HALVES:
        raise UserError(f"target={cfg.target} is not a class half; use target=A or target=B")
    if not isinstance(cfg.n, int) or isinstance(cfg.n, bool) or not 0 <= cfg.n <= NUM_LAYERS:
        raise UserError(f"n={cfg.n} is outside 0..{NUM_LAYERS} (the transferable layers "
                        f"conv1..fc7); use an integer n between 0 and {NUM_LAYERS}")
    if not isinstance(cfg.finetune, bool):
        raise UserError(f"finetune={cfg.finetune} is not a boolean; use finetune=true or finetune=false")
    problem = combination_problem(cfg.treatment, cfg.n, cfg.finetune)
    if problem:
        raise UserError(problem)
    if cfg.freeze.bn not in ("eval", "train"):
        raise UserError(f"freeze.bn={cfg.freeze.bn} is unknown; use freeze.bn=eval or freeze.bn=train")
    if cfg.wandb.mode not in ("auto", "online", "offline", "disabled"):
        raise UserError(f"wandb.mode={cfg.wandb.mode} is unknown; use auto, online, offline or disabled")
    _check_train(cfg.train)


def _check_train(train: DictConfig) -> None:
    checks = [
        (train.epochs >= 1, f"train.epochs={train.epochs} must be at least 1"),
        (train.batch_size >= 1, f"train.batch_size={train.batch_size} must be at least 1"),
        (train.lr > 0, f"train.lr={train.lr} must be positive"),
        (0 <= train.momentum < 1, f"train.momentum={train.momentum} must be in [0, 1)"),
        (train.weight_decay >= 0, f"train.weight_decay={train.weight_decay} must be >= 0"),
        (train.schedule in ("step", "cosine", "constant"),
         f"train.schedule={train.schedule} is unknown; use step, cosine or constant"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"{message}; fix it on the command line, e.g. train.lr=0.01")
