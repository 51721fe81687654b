"""The result cache of one worker process: `dispatch(cache=seconds)` stores, a later corequest
with the same key is answered from here without running.

Bounded by `skitai.set_max_rcache(n)` (least recently used entries go first). Entries remember
when they were stored, so `use_cache=<timestamp>` (typically `was.getlu(...)`, the last time a
model changed in any worker) can tell a stale entry from a fresh one.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from .result import Result


class ResultCache:
    def __init__(self, max_entries: int = 300) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Result, float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, use_cache: Any = True) -> Result | None:
        """The cached result for `key`, or None.

        `use_cache` is True (any fresh entry), False (never), or a timestamp: an entry stored
        before it is stale and dropped.
        """
        if use_cache is False or use_cache is None:
            return None
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            result, stored_at, expires_at = entry
            stale = use_cache is not True and float(use_cache) >= stored_at
            if stale or now >= expires_at:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return result.copy(cached=True)

    def put(self, key: Hashable, result: Result, seconds: float, issued_at: float) -> None:
        """Keep `result` for `seconds`. It counts as stored when its operation was issued
        (`issued_at`, a `time.time()`), so a model change made while it ran makes it stale."""
        if self.max_entries <= 0 or seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (result, issued_at, time.time() + seconds)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
