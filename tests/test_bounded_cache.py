"""The one cache utility: least recently used out first, bounded by count, bytes and idle time."""

import threading

import pytest

from model import BoundedCache


def test_least_recently_used_goes_first_past_the_count():
    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_total_size_is_bounded_and_an_oversized_value_is_not_kept():
    cache = BoundedCache(10, max_bytes=10, size_of=len)
    cache.put("a", "xxxx")
    cache.put("b", "yyyy")
    cache.put("c", "zzzz")              # 12 bytes: a goes
    assert cache.get("a") is None and cache.total_bytes == 8
    cache.put("big", "w" * 11)
    assert cache.get("big") is None and cache.total_bytes == 8
    cache.put("b", "y")                 # replacing counts the new size only
    assert cache.total_bytes == 5


def test_entries_expire_after_idle_time_and_use_renews_them():
    now = [0.0]
    cache = BoundedCache(10, ttl_s=5, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    now[0] = 4
    assert cache.get("a") == 1
    now[0] = 8                          # b idle for 8 s, a for 4 s
    assert cache.get("b") is None and cache.get("a") == 1
    assert cache.pop("a") == 1 and cache.get("a") is None


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        BoundedCache(-1)
    with pytest.raises(ValueError):
        BoundedCache(3, max_bytes=10)


def test_concurrent_puts_keep_the_bounds():
    cache = BoundedCache(50, max_bytes=400, size_of=lambda v: 10)

    def writer(offset):
        for i in range(500):
            cache.put((offset, i), i)
            cache.get((offset, i - 3))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) <= 40 and cache.total_bytes == 10 * len(cache)
