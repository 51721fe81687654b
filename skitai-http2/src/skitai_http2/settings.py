"""h2's `Settings` keeping each setting's values in a list instead of a `collections.deque`.

For each setting h2 holds the value in force and those sent but not yet acknowledged: one or
two values, in a deque of 760 bytes. A connection has two `Settings` (ours and the peer's),
some 13 deques: 10 KiB of the ~24 KiB an idle HTTP/2 connection held, where lists take 1 KiB.
"""
from __future__ import annotations

import h2.settings


class _Values(list):
    """The deque operations h2's `Settings` uses: `append`, `[0]`, `len` and `popleft`."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


class CompactSettings(h2.settings.Settings):
    def __init__(self, client: bool = True, initial_values: dict | None = None) -> None:
        super().__init__(client, initial_values)
        self._settings = {code: _Values(values) for code, values in self._settings.items()}

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)  # a setting not held yet gets a new deque there
        values = self._settings[key]
        if type(values) is not _Values:
            self._settings[key] = _Values(values)
