"""cachefs: the HTTP cache in front of the gateway's upstream calls, turned on by
`skitai.enable_cachefs(memmax, diskmax, path)`.

`CacheFS.fetch` stands between a call and the network: it answers a GET or HEAD from a stored
response that is fresh, revalidates a stale one with a conditional request (a 304 refreshes
it), stores what the upstream allows to be stored, and drops the stored target of a successful
unsafe call (POST, PUT, PATCH, DELETE). The rules are `cachepolicy`'s, the tiers `cachestore`'s:
a memory tier of `memmax` bytes per worker process, in front of a disk tier of `diskmax` bytes
under `path` shared by the workers (its file I/O runs in the loop's default executor, and a
call that stores waits for its file to be written, so the next call of any worker finds it). A
disk tier that fails (full, unwritable) is logged and skipped: the call still gets its answer.

The app's own say, per call: `use_cache=False` (or `rm_cache=...`) skips stored responses and
refreshes them with the upstream's answer; `use_cache=<timestamp>` (or cache key names, meaning
their `was.getlu(...)`) treats responses stored before it as absent. The result cache of
`dispatch(cache=seconds)` sits in front of all this and is asked first.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from . import cachepolicy as policy
from .cachepolicy import Decision, Entry, Response
from .cachestore import DiskTier, MemoryTier

log = logging.getLogger("skitai.gateway.cachefs")

Send = Callable[[dict[str, str]], Awaitable[Response]]  # extra request fields -> the answer


class CacheFS:
    def __init__(self, memmax: int, diskmax: int, path: str | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.memory = MemoryTier(memmax) if memmax > 0 else None
        self.disk = DiskTier(path, diskmax) if diskmax > 0 and path else None
        self.clock = clock

    @classmethod
    def from_config(cls, config: Any) -> "CacheFS | None":
        """The worker's cache as `skitai.enable_cachefs` set it, or None when it is off."""
        if config.cachefs_memmax <= 0 and (config.cachefs_diskmax <= 0 or not config.cachefs_path):
            return None
        return cls(config.cachefs_memmax, config.cachefs_diskmax, config.cachefs_path)

    @classmethod
    def for_server(cls, server: Any) -> "CacheFS | None":
        """The worker's cache, one for its corequests and its reverse proxy (one memory budget,
        and a proxied GET is answered from what a `was.get` of the same `@alias/path` stored)."""
        if not hasattr(server, "skitai_gateway_cachefs"):
            server.skitai_gateway_cachefs = cls.from_config(server.config)
        return server.skitai_gateway_cachefs

    async def fetch(self, method: str, url: str, request_headers: Iterable[tuple[str, str]], use_cache: Any,
                    send: Send) -> Response:
        """The answer to `method url`, from the cache or from `send`."""
        request_headers = list(request_headers)
        if policy.passes_through(method, request_headers):
            response = await send({})
            if policy.invalidates(method, response.status):
                for cached_method in policy.CACHEABLE_METHODS:
                    await self._remove(f"{cached_method} {url}")
            return response
        key = f"{method.upper()} {url}"
        entry = None if use_cache is False else await self._get(key)
        if entry is not None and (not policy.matches(entry, request_headers)
                                  or (use_cache is not True and entry.response_time < float(use_cache))):
            entry = None
        conditional: dict[str, str] = {}
        if entry is not None:
            if policy.decide(entry, request_headers, self.clock()) is Decision.FRESH:
                return policy.served(entry, self.clock())
            conditional = policy.conditional_headers(entry)
        request_time = self.clock()
        response = await send(conditional)
        response_time = self.clock()
        if response.status == 304 and entry is not None and conditional:
            entry = policy.refreshed(entry, response, request_time, response_time)
            await self._put(key, entry)
            return policy.served(entry, response_time)
        if policy.storable(method, request_headers, response):
            vary = policy.vary_values(response, request_headers)
            await self._put(key, Entry(response, request_time, response_time, vary))
        elif entry is not None or use_cache is False:  # what is stored is not the upstream's answer any more
            await self._remove(key)
        return response

    # the tiers: memory first, the disk behind it
    async def _get(self, key: str) -> Entry | None:
        entry = self.memory.get(key) if self.memory is not None else None
        if entry is None and self.disk is not None:
            entry = await self._on_disk(self.disk.get, key)
            if entry is not None and self.memory is not None:
                self.memory.put(key, entry)
        return entry

    async def _put(self, key: str, entry: Entry) -> None:
        if self.memory is not None:
            self.memory.put(key, entry)
        if self.disk is not None:
            await self._on_disk(self.disk.put, key, entry)

    async def _remove(self, key: str) -> None:
        if self.memory is not None:
            self.memory.remove(key)
        if self.disk is not None:
            await self._on_disk(self.disk.remove, key)

    async def _on_disk(self, operation: Callable[..., Any], *args: Any) -> Any:
        """A disk tier operation off the loop; a failing file system is a miss, not an error."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, operation, *args)
        except OSError as error:
            log.warning("cachefs: the disk tier under %s failed: %s", self.disk.path, error)
            return None
