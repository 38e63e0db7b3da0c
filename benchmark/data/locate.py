"""Where a dataset lives under ``data.root``, and the one-line error when it is not there."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmark.errors import UserError

log = logging.getLogger(__name__)


def candidates(root: str | Path, subdirs: Sequence[str | None]) -> list[Path]:
    """``root/subdir`` for each named subdir, then ``root`` itself."""
    root = Path(root).absolute()
    return [root / s for s in subdirs if s] + [root]


def first_with(folders: Sequence[Path], *markers: str) -> Path | None:
    """The first folder that holds every marker file or folder."""
    return next((f for f in folders if all((f / m).exists() for m in markers)), None)


def missing(dataset: str, expected: str, looked_in: Sequence[Path], downloadable: bool = False
            ) -> UserError:
    """The missing-data error: what was expected, where we looked, how to fix it."""
    fix = "put the files there or set data.root=DIR to the folder that holds them"
    if downloadable:
        fix += ", or set dataset.download=true to download them"
    places = " or ".join(str(p) for p in dict.fromkeys(looked_in))
    return UserError(f"dataset={dataset}: data not found; expected {expected} in {places}; {fix}")


def download(dataset: str, root: Path, fetch: Callable[[], object]) -> None:
    """Run ``fetch`` (a torchvision download into ``root``), any failure as one UserError."""
    log.info("downloading %s into %s", dataset, root)
    try:
        fetch()
    except Exception as error:  # network, checksum or disk: the user's fix is the same
        raise UserError(f"dataset={dataset}: download into {root} failed ({error}); check the "
                        "network, or download the files by hand and set data.root=DIR") from None
