"""One small, thread-safe cache for everything the product keeps per image or per object.

Least recently used entries go first once the cache holds more than `max_items` entries or,
when `size_of` is given, more than `max_bytes` in all; with `ttl_s`, an entry unused for that
long is gone too. Used for the predictor's per-image state, the guided filter's image terms,
the backend's downloaded images and its click memory, so that every bound is stated and
enforced the same way.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """get/put/pop by key; bounded by count, optionally by total size and by time since last use."""

    def __init__(self, max_items: int, *, max_bytes: int | None = None, size_of: Callable[[V], int] | None = None,
                 ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        if max_items < 0:
            raise ValueError(f"max_items must be 0 or more, got {max_items}")
        if (max_bytes is None) != (size_of is None):
            raise ValueError("max_bytes and size_of go together")
        self.max_items, self.max_bytes, self.ttl_s = max_items, max_bytes, ttl_s
        self._size_of, self._clock = size_of, clock
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value, now the most recently used; None when absent or expired."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            now = self._clock()
            if self.ttl_s is not None and now - entry[0] > self.ttl_s:
                self._remove(key)
                return None
            self._items[key] = (now, entry[1])
            self._items.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        """Store value (replacing any under key), then evict the least recently used past the bounds.
        A value larger than max_bytes on its own is not kept."""
        with self._lock:
            self._remove(key)
            size = self._size_of(value) if self._size_of is not None else 0
            if self.max_items == 0 or (self.max_bytes is not None and size > self.max_bytes):
                return
            self._items[key] = (self._clock(), value)
            self._bytes += size
            while len(self._items) > self.max_items or (self.max_bytes is not None and self._bytes > self.max_bytes):
                self._remove(next(iter(self._items)))

    def pop(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._items.get(key)
            self._remove(key)
            return entry[1] if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _remove(self, key: Hashable) -> None:
        entry = self._items.pop(key, None)
        if entry is not None and self._size_of is not None:
            self._bytes -= self._size_of(entry[1])
