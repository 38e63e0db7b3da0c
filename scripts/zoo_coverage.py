"""Coverage of the timm zoo as users run it: for every architecture family, its smallest model (by
parameters, among all its names) at each image size (32 px, 64 px and the
model's own): listed into blocks on the meta device (timed), built for that size, given the first
blocks of another init of itself, frozen, and trained one SGD step; the step must leave the frozen
blocks' parameters and buffers bit-identical and move a trainable one. A model that refuses a
size must do so with one error line (a UserError), which counts as a failure all the same.

One JSON line per (family, size) goes to --out (resumable: rows already there are skipped), with
the timm version and the date that measured it; --table prints the markdown table and summary of a
finished --out (docs/zoo/coverage.jsonl is the one docs/zoo.md shows; a test checks the page).

    python scripts/zoo_coverage.py --out zoo_coverage.jsonl
    python scripts/zoo_coverage.py --out docs/zoo/coverage.jsonl --table
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import date
from pathlib import Path

import timm
import torch
from omegaconf import OmegaConf

from benchmark.errors import UserError
from benchmark.models import block_names, build_model
from benchmark.models.net import under
from benchmark.models.timm_sizes import native_size
from benchmark.surgery import parameter_groups, prepare_target

GRANULARITIES = ("coarse", "fine")


def zoo_cfg(arch: str, granularity: str):
    return OmegaConf.create({"name": "timm", "arch": arch, "blocks": None, "kwargs": {}, "granularity": granularity})


def smallest(family: str, candidates: int) -> str:
    def size(arch: str) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in timm.create_model(arch).parameters())
    return min(timm.list_models(module=family)[:candidates or None], key=size)


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


SIZES = ("32", "64", "native")
NO_MEMORY = "not measured: more memory than --memory-gb allows"  # neither a pass nor a failure


def check(family: str, arch: str, size_name: str) -> dict:
    """One row: whether ``arch`` lists, builds, copies, freezes and trains at ``size_name``."""
    size = native_size(arch) if size_name == "native" else int(size_name)
    row = {"family": family, "arch": arch, "size": size_name, "px": size, "granularity": "", "blocks": 0,
           "list_s": None, "status": "ok", "timm": timm.__version__, "date": date.today().isoformat()}
    try:
        row["granularity"], blocks, row["list_s"] = listed(arch, size)
        row["blocks"] = len(blocks)
        one_step(arch, row["granularity"], size)
    except UserError as error:
        row["status"] = f"error: {error}"
    except MemoryError:
        row["status"] = NO_MEMORY
    except RuntimeError as error:
        row["status"] = NO_MEMORY if "can't allocate memory" in str(error) else _traceback(error)
    except Exception as error:  # noqa: BLE001 (every failure is a row of the table)
        row["status"] = _traceback(error)
    return row


def _traceback(error: Exception) -> str:
    message = str(error).strip()
    return f"traceback: {type(error).__name__}: {message.splitlines()[0][:200] if message else ''}"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def table(rows: list[dict]) -> str:
    lines = ["| family | model | size (px) | blocks | grouping | listing (s) | partition, build, one step |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["family"], SIZES.index(r["size"]))):
        seconds = "" if r["list_s"] is None else f"{r['list_s']:.2f}"
        status = r["status"].replace("|", "\\|")
        lines.append(f"| {r['family']} | {r['arch']} | {r['px']} | {r['blocks']} | {r['granularity']} | {seconds} "
                     f"| {status} |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """One line: the share of families that pass at each size, of those measured at it (a size not
    measured for every family says for how many it was), with the timm versions and dates of the rows."""
    families = len({r["family"] for r in rows})
    parts = []
    for size in SIZES:
        at = [r for r in rows if r["size"] == size and r["status"] != NO_MEMORY]
        ok = sum(r["status"] == "ok" for r in at)
        unmeasured = sum(r["size"] == size and r["status"] == NO_MEMORY for r in rows)
        measured = len({r["family"] for r in rows if r["size"] == size})
        parts.append(f"{size} px: {ok} of {len(at)} ({100 * ok / max(len(at), 1):.1f}%)"
                     + (f", {unmeasured} not measured (memory)" if unmeasured else "")
                     + (f", measured for {measured} of the {families} families so far" if measured < families else ""))
    tracebacks = sum(r["status"].startswith("traceback") for r in rows)
    return (f"timm {_recorded(rows, 'timm')}, {_recorded(rows, 'date')}: families that partition, build and "
            f"train one step at {'; '.join(parts)}; failures that are not one error line: {tracebacks}")


def _recorded(rows: list[dict], key: str) -> str:
    """The values of ``key`` the rows recorded, in order ("not recorded" for rows written without it)."""
    return ", ".join(sorted({str(r.get(key) or "not recorded") for r in rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("zoo_coverage.jsonl"))
    parser.add_argument("--candidates", type=int, default=0, help="names per family searched for the smallest "
                        "(0: all)")
    parser.add_argument("--families", nargs="*", default=None, help="only these (default: all)")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=SIZES)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the machine is shared)")
    parser.add_argument("--memory-gb", type=float, default=None, help="address-space limit (a shared machine)")
    parser.add_argument("--shard", default="1/1", help="i/k: only every k-th family from the i-th (parallel runs)")
    parser.add_argument("--table", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args()
    if args.table:
        rows = read_rows(args.out)
        print(f"{summary(rows)}\n\n{table(rows)}")
        return
    torch.set_num_threads(args.threads)
    if args.memory_gb:
        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    timm.list_models()  # imported and indexed before any listing is timed
    done = {(r["family"], r["size"]): r["arch"] for r in read_rows(args.out)}
    index, count = (int(part) for part in args.shard.split("/"))
    families = (args.families or timm.list_modules())[index - 1::count]
    for number, family in enumerate(families, start=1):
        arch = next((a for (f, _), a in done.items() if f == family), None)
        for size in args.sizes:
            if (family, size) in done:
                continue
            arch = arch or smallest(family, args.candidates)
            row = check(family, arch, size)
            with args.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"[{number}/{len(families)}] {family} {arch} {size}: {row['status'][:200]}", flush=True)
    print(summary(read_rows(args.out)))


if __name__ == "__main__":
    main()
