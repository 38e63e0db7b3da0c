"""Where the Hydra config lives and how it is composed: one place for the app, the
preflight checks, scripts/bench.py and the tests."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from benchmark.protocol import run_label

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
CONFIG_NAME = "config"

# run directories are named by their label (conf/config.yaml: hydra.run.dir, hydra.sweep.subdir)
OmegaConf.register_new_resolver("tb.label", run_label, replace=True)


def compose_config(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """The config a run gets from these command-line overrides (``hydra_config``: with the
    ``hydra`` node, as the app sees it)."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=hydra_config)
