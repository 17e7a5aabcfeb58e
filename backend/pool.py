"""A bounded worker pool for predictions.

At most `workers` predictions run at once and at most `queue` more wait; a request past that
is refused at once with `Overloaded` (HTTP 503 + Retry-After) instead of piling up threads,
memory and latency for everyone. The predictor is thread-safe, so the workers share it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Overloaded(Exception):
    """Every worker is busy and the queue is full; `retry_after_s` is a whole number of seconds."""

    def __init__(self, retry_after_s: int, workers: int, queue: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"the server is busy: {workers} predictions running and {queue} waiting "
                         f"(FCANET_PREDICT_WORKERS / FCANET_PREDICT_QUEUE); retry in {retry_after_s} s")


class PredictionPool:
    def __init__(self, workers: int, queue: int):
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be 1 or more and queue 0 or more, got {workers}, {queue}")
        self.workers, self.queue = workers, queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fcanet-predict")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._running = 0
        self._mean_s = 1.0  # running mean of job durations, for Retry-After

    @property
    def in_flight(self) -> int:
        """Jobs running or waiting."""
        with self._lock:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """Jobs accepted but not yet started."""
        with self._lock:
            return self._in_flight - self._running

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> Future:
        """Queue `fn(*args, **kwargs)` or raise Overloaded when workers and queue are full."""
        with self._lock:
            if self._in_flight >= self.workers + self.queue:
                raise Overloaded(self._retry_after(), self.workers, self.queue)
            self._in_flight += 1

        def job():
            start = time.perf_counter()
            with self._lock:
                self._running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._running -= 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - start)

        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release(None)
            raise
        # Runs on completion and on cancellation (a client that left before its job started).
        future.add_done_callback(self._release)
        return future

    async def run(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Await `fn(*args, **kwargs)` on the pool (from the event loop)."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run `fn` on the pool and wait for it (from a thread that is not a pool worker)."""
        return self.submit(fn, *args, **kwargs).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _release(self, _future) -> None:
        with self._lock:
            self._in_flight -= 1

    def _retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead drained at the mean job time."""
        return max(1, math.ceil(self._mean_s * self._in_flight / self.workers))
