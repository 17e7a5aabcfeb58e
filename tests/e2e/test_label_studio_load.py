"""The load harness behind the README's Label Studio figures runs end to end: a real Label Studio,
the real `fcanet serve`, several labelers at once, every click answered with a brush; then
annotations submitted in Label Studio become corrections, the backend fine-tunes on them while a
labeler keeps clicking, and the new model is served with no failed request."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.label_studio_server import LS_BIN, LS_VENV

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_two_labelers_at_once_through_label_studio(tmp_path):
    if not LS_BIN.exists():
        pytest.skip(f"Label Studio is not installed at {LS_BIN} (scripts/install_label_studio.sh)")
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "scripts/bench_label_studio_load.py", "--labelers", "1,2", "--clicks", "2",
                          "--think-s", "0", "--finetune-steps", "2", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=900, env={**os.environ, "LS_VENV": str(LS_VENV)})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [r["labelers"] for r in report["rows"]] == [1, 2]
    assert [r["requests"] for r in report["rows"]] == [2, 4]
    assert all(r["failed_requests"] == 0 for r in report["rows"]), report["rows"]
    assert all(0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"] for r in report["rows"])
    assert "| 2 | 4 |" in (out / "report.md").read_text()
    # What the backend counted as unrefined is what the labelers were told, through Label Studio.
    assert all(r["answered_unrefined"] == r["unrefined_answers"] >= 0 for r in report["rows"]), report["rows"]
    f = report["finetune"]
    assert f["corrections_stored"] == f["annotations_submitted"] == 3  # through Label Studio's webhooks
    assert f["job"]["state"] == "succeeded" and f["served_after"] == f["job"]["version"] != f["served_before"]
    assert f["failed_requests"] == 0 and f["during"]["requests"] >= 1
