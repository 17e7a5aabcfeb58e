"""The fine-tuning hook: what the backend does with Label Studio's START_TRAINING.

The backend never trains inside a request (Label Studio times webhooks out after one
second). A `TrainingLauncher` takes the request and returns at once; the default one only
records it in the store, where the fine-tuning machinery (or an operator running
`fcanet finetune`) picks it up. A launcher that really starts jobs (e.g.
`model.finetune.launcher.FinetuneLauncher`) is passed as `delegate`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class TrainingLauncher(Protocol):
    """start(request) -> job id, returns at once; status() -> a JSON-ready dict for /health."""

    def start(self, request: dict[str, Any]) -> str: ...

    def status(self) -> dict[str, Any]: ...


class RecordingLauncher:
    """Records every request in the store, then hands it to `delegate` when there is one."""

    def __init__(self, store, delegate: TrainingLauncher | None = None):
        self.store = store
        self.delegate = delegate
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None

    def start(self, request: dict[str, Any]) -> str:
        request_id = self.store.add_training_request(request.get("project"), request)
        job_id = request_id
        if self.delegate is not None:
            job_id = self.delegate.start({**request, "request_id": request_id})
            self.store.set_training_request_status(request_id, f"started:{job_id}")
        with self._lock:
            self._last = {"request_id": request_id, "job_id": job_id, "project": request.get("project")}
        return job_id

    def status(self) -> dict[str, Any]:
        if self.delegate is not None:
            return {"launcher": type(self.delegate).__name__, **self.delegate.status()}
        with self._lock:
            last = dict(self._last) if self._last else None
        return {"launcher": "record-only", "state": "requested" if last else "idle", "last_request": last}
