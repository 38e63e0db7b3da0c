"""Write docs/configuration-reference.md from the schema and conf/config.yaml's comments.

    python scripts/config_reference.py            # writes docs/configuration-reference.md
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.config_reference import write_reference  # noqa: E402

if __name__ == "__main__":
    print(write_reference(Path(__file__).resolve().parent.parent / "docs"))
