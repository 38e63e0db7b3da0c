"""User-facing errors: one line that names the problem and the fix, never a traceback."""
from __future__ import annotations

import sys


class UserError(Exception):
    """A mistake the user can fix (bad config value, missing data, ...).

    The message is printed as a single ``error: ...`` line; it must name the
    problem and how to fix it.
    """


class RunDiverged(Exception):
    """The training loss became NaN or infinite; the run is recorded as failed."""


def exit_with(error: UserError, code: int = 2) -> None:
    """Print ``error`` as one line on stderr and leave with a non-zero exit code."""
    message = " ".join(str(error).split())
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
