"""h2's `Settings` keeping each setting's values in a list instead of a `collections.deque`,
and answering the settings read for every new stream without going through `Mapping.get`.

For each setting h2 holds the value in force and those sent but not yet acknowledged: one or
two values, in a deque of 760 bytes. A connection has two `Settings` (ours and the peer's),
some 13 deques: 10 KiB of the ~24 KiB an idle HTTP/2 connection held, where lists take 1 KiB.

Each request stream reads `initial_window_size` of both sides and our `max_concurrent_streams`;
h2's properties go through `__getitem__` (and `Mapping.get` for the latter): two to three Python
calls per read, some 2% of an h2c hello's loop. Here each is one lookup, with h2's answers (a
setting sent but not yet acknowledged is not in force: `max_concurrent_streams` then falls back
to h2's default as `get` does; `tests/test_compact_settings.py` compares them with h2's).
"""
from __future__ import annotations

import h2.settings
from h2.settings import SettingCodes

_INITIAL_WINDOW_SIZE = SettingCodes.INITIAL_WINDOW_SIZE
_MAX_CONCURRENT_STREAMS = SettingCodes.MAX_CONCURRENT_STREAMS
_UNLIMITED_STREAMS = 2**32 + 1   # h2's answer when no limit is in force


class _Values(list):
    """The deque operations h2's `Settings` uses: `append`, `[0]`, `len` and `popleft`."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


def _initial_window_size(settings: "CompactSettings") -> int:
    value = settings._settings[_INITIAL_WINDOW_SIZE][0]   # held from the start (h2's default)
    if value is None:
        raise KeyError(_INITIAL_WINDOW_SIZE)
    return value


def _max_concurrent_streams(settings: "CompactSettings") -> int:
    values = settings._settings.get(_MAX_CONCURRENT_STREAMS)
    value = None if values is None else values[0]
    return _UNLIMITED_STREAMS if value is None else value


class CompactSettings(h2.settings.Settings):
    def __init__(self, client: bool = True, initial_values: dict | None = None) -> None:
        super().__init__(client, initial_values)
        self._settings = {code: _Values(values) for code, values in self._settings.items()}

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)  # a setting not held yet gets a new deque there
        values = self._settings[key]
        if type(values) is not _Values:
            self._settings[key] = _Values(values)

    initial_window_size = property(_initial_window_size, h2.settings.Settings.initial_window_size.fset)
    max_concurrent_streams = property(_max_concurrent_streams,
                                      h2.settings.Settings.max_concurrent_streams.fset)
