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


def _run(args: list[str], ci: str | None, env_changes: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FCANET_TEST_POSTGRES_URL")}
    env.update(env_changes)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _hide_postgres(tmp_path) -> dict[str, str]:
    """A plugin that makes tests/corrections_pg.py find no PostgreSQL binaries (as on a machine
    without the package), so its start_server() skips as it would there."""
    (tmp_path / "hide_postgres.py").write_text("import corrections_pg\ncorrections_pg._binaries = lambda: None\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "tests")])}


def test_missing_postgresql_fails_the_run_on_ci(tmp_path):
    args = ["-p", "hide_postgres", "tests/test_corrections_concurrency.py", "-k", "postgresql"]
    run = _run(args, "true", _hide_postgres(tmp_path))
    assert run.returncode != 0, run.stdout
    assert "a skip is not allowed on CI" in run.stdout and "PostgreSQL binaries" in run.stdout, run.stdout
    assert " skipped" not in run.stdout.splitlines()[-1]
    off_ci = _run(args, None, _hide_postgres(tmp_path))
    assert off_ci.returncode == 0 and "SKIPPED [1]" in off_ci.stdout and "PostgreSQL binaries" in off_ci.stdout, \
        off_ci.stdout


def test_missing_browser_fails_the_run_on_ci():
    # Only the interpreter's folder on PATH: no chromium, no chromedriver.
    path = {"PATH": str(Path(sys.executable).parent)}
    run = _run(["tests/e2e/test_demo_auth_browser.py"], "true", path)
    assert run.returncode != 0, run.stdout
    assert "a skip is not allowed on CI" in run.stdout and "chromium" in run.stdout, run.stdout
    off_ci = _run(["tests/e2e/test_demo_auth_browser.py"], None, path)
    assert off_ci.returncode == 0 and "SKIPPED [1]" in off_ci.stdout and "chromium" in off_ci.stdout, off_ci.stdout
