"""On CI a missing service fails the run; elsewhere it is a skip that the summary lists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run_label_studio_test(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LS_VENV"] = str(REPO / "no-such-label-studio-venv")  # the service is missing
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/e2e/test_label_studio_e2e.py"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_missing_label_studio_fails_the_run_on_ci():
    run = _run_label_studio_test("true")
    assert run.returncode != 0, run.stdout
    assert "a skip is not allowed on CI" in run.stdout and "Label Studio is not installed" in run.stdout
    assert " skipped" not in run.stdout.splitlines()[-1]


def test_missing_label_studio_is_a_listed_skip_off_ci():
    run = _run_label_studio_test(None)
    assert run.returncode == 0, run.stdout
    assert "SKIPPED [1]" in run.stdout and "Label Studio is not installed" in run.stdout
