"""torch.compile (train.compile=true) trains the same network as eager mode. Slow: compiles."""
import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    results = {}
    for compiled in ("false", "true"):
        run_dir = tmp_path / f"compile-{compiled}"
        proc = run_cli("experiment=smoke", "treatment=selffer", "n=2", "finetune=true",
                       f"train.compile={compiled}", "train.eval_every=1", f"hydra.run.dir={run_dir}",
                       cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[compiled] = json.loads((run_dir / "result.json").read_text())
    eager, compiled = results["false"]["history"], results["true"]["history"]
    assert [h["epoch"] for h in compiled] == [h["epoch"] for h in eager]
    for a, b in zip(eager, compiled):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3)
