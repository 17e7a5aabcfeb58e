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


def _in_service_module(path) -> bool:
    try:
        where = Path(str(path)).resolve()
    except (OSError, ValueError):
        return False
    return any(where == h or h in where.parents for h in SERVICE_MODULES)


def _from_service_module(longrepr, call) -> bool:
    """Whether a skip was raised in a service module. The skip's reported location is not enough:
    pytest reports a skip raised inside a fixture (e.g. the PostgreSQL server fixture calling
    corrections_pg.start_server) at the test's own location, so the raising frames are looked at."""
    excinfo = getattr(call, "excinfo", None)
    if excinfo is not None and any(_in_service_module(entry.path) for entry in excinfo.traceback):
        return True
    return isinstance(longrepr, tuple) and len(longrepr) == 3 and _in_service_module(longrepr[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("e2e") is None and not _from_service_module(report.longrepr, call):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"CI=true and a service this test needs is missing (a skip is not allowed on CI): {reason}"
