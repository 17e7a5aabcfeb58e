"""Running fine-tuning in a background process, one job at a time.

The server never trains inside a request: `start` spawns `fcanet finetune` as a child
process (its own session, so a server restart or a kill of the job leaves the other
alone) and returns at once; `status` reads the job's exit code and its training log.

The job shares the machine with the server, so it runs with few threads (`threads`, also
as OMP/MKL_NUM_THREADS before torch starts) and a lower priority (`nice` added to its
niceness): the kernel gives the server's prediction threads the cores first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any


class FinetuneLauncher:
    """start(request) -> job id; status() -> {"state", "job_id", "step", "steps", ...}."""

    def __init__(self, store_location: str, steps: int = 200, extra_args: list[str] | None = None,
                 jobs_dir: str | None = None, threads: int = 1, nice: int = 10):
        self.store_location = str(store_location)
        self.threads, self.nice = int(threads), int(nice)
        self.steps = int(steps)
        self.extra_args = list(extra_args or [])
        self.jobs_dir = Path(jobs_dir or Path(self.store_location) / "jobs")
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._job: dict[str, Any] | None = None

    def start(self, request: dict | None = None) -> str:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self._job["job_id"]  # one job at a time: a second request joins the running one
            job_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
            out_dir = self.jobs_dir / job_id
            out_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "model.cli", "finetune", "--store", self.store_location,
                   "--steps", str(self.steps), "--out-dir", str(out_dir), "--no-progress",
                   "--threads", str(self.threads), "--nice", str(self.nice), *self.extra_args]
            env = dict(os.environ)
            if self.threads > 0:
                env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
            base = (request or {}).get("checkpoint")
            if base and "--from" not in self.extra_args:
                cmd += ["--from", str(base)]  # continue from the model being served
            log = open(out_dir / "job.log", "wb")
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                          env=env)
            log.close()
            self._job = {"job_id": job_id, "out_dir": str(out_dir), "started": time.time(),
                         "request": request or {}}
            return job_id

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._job is None:
                return {"state": "idle"}
            job = dict(self._job)
            code = self._proc.poll() if self._proc else None
        out_dir = Path(job["out_dir"])
        info: dict[str, Any] = {"job_id": job["job_id"], "steps": self.steps, "step": _last_step(out_dir / "log.jsonl")}
        if code is None:
            info["state"] = "running"
        elif code == 0:
            info["state"] = "succeeded"
            result = out_dir / "finetune.json"
            if result.is_file():
                data = json.loads(result.read_text())
                info.update(version=data["version"], promoted=data["promoted"],
                            noc90_before=data["before"].get("noc90"), noc90_after=data["after"].get("noc90"))
        else:
            info["state"] = "failed"
            info["exit_code"] = code
        return info

    def wait(self, timeout: float | None = None) -> int | None:
        proc = self._proc
        return None if proc is None else proc.wait(timeout)


def _last_step(log_path: Path) -> int:
    if not log_path.is_file():
        return 0
    step = 0
    for line in log_path.read_text().splitlines():
        try:
            step = max(step, int(json.loads(line).get("step", 0)))
        except (ValueError, json.JSONDecodeError):
            continue
    return step
