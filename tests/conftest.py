"""On CI (CI=true) a test that needs a service (Label Studio, a browser, PostgreSQL) and finds
it missing FAILS instead of skipping, so a green run means those tests really ran.

A skip counts as "service missing" when the test is marked e2e or the skip comes from a
service module (tests/corrections_pg.py, tests/e2e/*). Elsewhere, and off CI, skips stay
skips and the summary lists them (`-rs` in pyproject's addopts).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVICE_MODULES = (HERE / "corrections_pg.py", HERE / "e2e")


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def _from_service_module(longrepr) -> bool:
    if not (isinstance(longrepr, tuple) and len(longrepr) == 3):
        return False
    where = Path(str(longrepr[0])).resolve()
    return any(where == h or h in where.parents for h in SERVICE_MODULES)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("e2e") is None and not _from_service_module(report.longrepr):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"CI=true and a service this test needs is missing (a skip is not allowed on CI): {reason}"
