"""Start a real Label Studio (PyPI label-studio==1.23.2 in its own venv) for tests.

Headless, offline and on 127.0.0.1 (settings from the README section Label Studio in five steps): a fresh data
dir, a fixed legacy API token, no version check, loopback ML backends and webhooks
allowed, local files served from `<workdir>/files`. Our backend runs beside it
with `BackendServer` (tests/live_servers.py). Used by test_label_studio_e2e.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.net_utils import free_port

REPO = Path(__file__).resolve().parents[2]
LS_VENV = Path(os.environ.get("LS_VENV", REPO / ".lsvenv"))
LS_BIN = LS_VENV / "bin" / "label-studio"


class LabelStudio:
    """A Label Studio process; `api(method, path, ...)` calls its REST API with the token."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.email = "e2e@example.com"
        self.password = "e2e-password-" + secrets.token_hex(4)
        self.token = secrets.token_hex(20)
        self.files_root = self.workdir / "files"
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=60)

    def start(self, timeout: float = 300.0) -> "LabelStudio":
        self.files_root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PORT", "USERNAME", "PASSWORD", "HOST", "VIRTUAL_ENV", "PYTHONPATH")}
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.workdir / "ls-data"),
            LABEL_STUDIO_USERNAME=self.email,
            LABEL_STUDIO_PASSWORD=self.password,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LATEST_VERSION_CHECK="false",
            ML_BLOCK_LOCAL_IP="false",
            SSRF_PROTECTION_ENABLED="false",
            LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
            LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(self.files_root),
            SENTRY_DSN="", FRONTEND_SENTRY_DSN="", COLLECT_ANALYTICS="false",
            PATH=f"{LS_VENV / 'bin'}:{env.get('PATH', '')}",
        )
        self.log_path = self.workdir / "label-studio.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--enable-legacy-api-token"],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    # /health answers before the user and token exist; wait for the API too
                    if self.client.get("/api/projects").status_code == 200:
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"Label Studio did not become healthy in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.client.close()
