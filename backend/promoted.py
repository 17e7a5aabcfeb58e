"""Replicas learn of a promoted model from the store and switch to it.

A daemon thread asks the store for `promoted_model()` every `interval` seconds; when the
version differs from the one this process last loaded, it loads that checkpoint (outside
any request) and swaps it into the model. A failed load is logged and retried on the next
change, the current model keeps serving.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class PromotionWatcher:
    def __init__(self, store, model, load: Callable[[str], object], interval: float,
                 current_version: str | None = None):
        self.store, self.model, self.load, self.interval = store, model, load, interval
        self.current_version = current_version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> bool:
        """Load and swap in a newly promoted model; True when it swapped."""
        try:
            promoted = self.store.promoted_model()
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop serving
            log.warning("cannot ask the store for the promoted model: %s", exc)
            return False
        if not promoted or promoted["version"] == self.current_version:
            return False
        path = promoted["path"]
        if not Path(path).is_file():
            log.warning("promoted model %s points at %s, which does not exist here", promoted["version"], path)
            self.current_version = promoted["version"]
            return False
        try:
            predictor = self.load(path)
        except Exception as exc:  # noqa: BLE001
            log.error("cannot load promoted model %s from %s: %s", promoted["version"], path, exc)
            self.current_version = promoted["version"]
            return False
        self.model.swap_predictor(predictor)
        self.current_version = promoted["version"]
        return True

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="promotion-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
