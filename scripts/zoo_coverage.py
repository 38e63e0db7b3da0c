"""Coverage of the timm zoo: for every architecture family, its smallest model (by parameters,
among the family's first --candidates names) is listed into blocks on the meta device (timed),
built, given the first blocks of another init of itself, frozen, and trained one SGD step at
its own input size; the step must leave the frozen blocks' parameters and buffers bit-identical
and move a trainable one. Writes a markdown table (--out) and prints the summary.

    python scripts/zoo_coverage.py --out zoo_coverage.md
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import timm
import torch
from omegaconf import OmegaConf

from benchmark.errors import UserError
from benchmark.models import block_names, build_model
from benchmark.models.net import under
from benchmark.surgery import parameter_groups, prepare_target

GRANULARITIES = ("coarse", "fine")


def zoo_cfg(arch: str, granularity: str):
    return OmegaConf.create({"name": "timm", "arch": arch, "blocks": None, "kwargs": {}, "granularity": granularity})


def smallest(family: str, candidates: int) -> str:
    def size(arch: str) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in timm.create_model(arch).parameters())
    return min(timm.list_models(module=family)[:candidates], key=size)


def listed(arch: str, size: int) -> tuple[str, list[str], float]:
    """The granularity that partitions, its blocks and the listing's wall time (meta device)."""
    for granularity in GRANULARITIES:
        start = time.perf_counter()
        try:
            return granularity, block_names(zoo_cfg(arch, granularity), size), time.perf_counter() - start
        except UserError as error:
            if granularity == GRANULARITIES[-1] or "no coarse block grouping" not in str(error):
                raise
    raise AssertionError("unreachable")


def one_step(arch: str, granularity: str, size: int) -> None:
    """Copy, freeze and train one step; raise when the frozen blocks moved or nothing trained."""
    cfg = zoo_cfg(arch, granularity)
    torch.manual_seed(0)
    source = build_model(cfg, 3, size).state_dict()
    torch.manual_seed(1)
    target = build_model(cfg, 3, size)
    n = min(2, target.num_transferable - 1)
    prepare_target(target, source, n, frozen=True, bn_eval=True)
    frozen = {k: v.clone() for k, v in target.state_dict().items() if under(k, target.prefix_paths(n))}
    trainable = {k: v.detach().clone() for k, v in target.named_parameters() if v.requires_grad}
    optimizer = torch.optim.SGD(parameter_groups(target, 0, 0.1, 0.0), lr=0.1)
    target.train()
    loss = torch.nn.functional.cross_entropy(target(torch.randn(2, 3, size, size)), torch.tensor([0, 1]))
    loss.backward()
    optimizer.step()
    after = target.state_dict()
    if not all(torch.equal(after[k], v) and torch.equal(v, source[k]) for k, v in frozen.items()):
        raise AssertionError("a frozen block moved or differs from its source")
    if all(torch.equal(dict(target.named_parameters())[k], v) for k, v in trainable.items()):
        raise AssertionError("no trainable parameter moved")


def check_family(family: str, candidates: int) -> dict:
    row = {"family": family, "arch": "", "granularity": "", "blocks": 0, "list_s": None, "status": "ok"}
    try:
        row["arch"] = arch = smallest(family, candidates)
        pretrained_cfg = timm.models.get_pretrained_cfg(arch)
        size = pretrained_cfg.input_size[-1] if pretrained_cfg else 224
        row["granularity"], blocks, row["list_s"] = listed(arch, size)
        row["blocks"] = len(blocks)
        one_step(arch, row["granularity"], size)
    except Exception as error:  # noqa: BLE001 (every failure is a row of the table)
        row["status"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return row


def table(rows: list[dict]) -> str:
    lines = ["| family | model | blocks | grouping | listing (s) | partition, build, one step |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        seconds = "" if r["list_s"] is None else f"{r['list_s']:.2f}"
        lines.append(f"| {r['family']} | {r['arch']} | {r['blocks']} | {r['granularity']} | {seconds} | {r['status']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("zoo_coverage.md"))
    parser.add_argument("--candidates", type=int, default=12, help="names per family searched for the smallest")
    parser.add_argument("--families", nargs="*", default=None, help="only these (default: all)")
    args = parser.parse_args()
    timm.list_models()  # imported and indexed before any listing is timed
    rows = []
    for family in args.families or timm.list_modules():
        rows.append(check_family(family, args.candidates))
        print(f"{family}: {rows[-1]['arch']} {rows[-1]['status']}", flush=True)
    ok = [r for r in rows if r["status"] == "ok"]
    slowest = max((r["list_s"] for r in rows if r["list_s"] is not None), default=0.0)
    summary = (f"{len(ok)} of {len(rows)} timm families ({100 * len(ok) / len(rows):.1f}%) partition, build and "
               f"train one step; the slowest block listing took {slowest:.2f} s")
    args.out.write_text(f"{summary}\n\n{table(rows)}\n")
    print(summary)


if __name__ == "__main__":
    main()
