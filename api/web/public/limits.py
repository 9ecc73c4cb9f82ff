"""Rate limit of the public pages per client address: token buckets in a bounded LRU table."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

BURST_SECONDS = 10.0


class AddressLimiter:
    """``rate_per_minute`` requests per address, ``BURST_SECONDS`` worth of burst; at most ``max_keys``
    addresses remembered (the least recently seen are forgotten first, i.e. start with a full bucket)."""

    def __init__(self, rate_per_minute: int, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.per_second = rate_per_minute / 60.0
        self.capacity = max(1.0, math.ceil(self.per_second * BURST_SECONDS))
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0 when allowed, else the seconds until the next request would be."""
        now = self._clock()
        with self._lock:
            level, last = self._buckets.pop(key, (self.capacity, now))
            level = min(self.capacity, level + (now - last) * self.per_second)
            allowed = level >= 1.0
            self._buckets[key] = (level - 1.0 if allowed else level, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return 0.0 if allowed else (1.0 - level) / self.per_second
