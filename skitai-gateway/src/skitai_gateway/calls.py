"""`was.get`, `was.post` ...: one `HttpMethod` driver per HTTP method.

    was.get(url, data=None, headers=None, auth=None, timeout=10, max_size=64 MiB, ...)
    was.get.lb("@alias/path", ...)     # a member by weight, failing over to the next
    was.get.map("@alias/path", ...)    # every member: a Tasks of their Results

`url` is absolute (`http://...`, `https://...`) or `@alias/path` for a PROTO_HTTP or
PROTO_HTTPS alias. The call starts at once on the worker's event loop and answers a Task
(see `skitai.corequest`); `timeout` bounds both the request and the Task's default wait.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
from multidict import CIMultiDict

import skitai
from skitai.corequest import STA_NETERR, STA_REQFAIL, STA_TIMEOUT, Driver, Result, Task, Tasks
from skitai.corequest.task import DEFAULT_TIMEOUT
from skitai.transactions import current_transaction

from .codec import BadUpstreamResponse, encode_body, request_headers, upload_parts
from .names import PROTO_H2, PROTO_H2C
from .upstreams import MAX_RESPONSE_SIZE, Call, Upstreams

if TYPE_CHECKING:
    from skitai.backends import Alias
    from skitai.corequest.was import Was

# methods whose `data` is a query string rather than a body
QUERY_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "DELETE"))


class HttpMethod(Driver):
    encode = staticmethod(encode_body)  # data -> the request body, given the call's headers
    kinds = (skitai.PROTO_HTTP, skitai.PROTO_HTTPS, PROTO_H2, PROTO_H2C)  # the aliases it calls

    def __init__(self, was: "Was", method: str, upstreams: Upstreams) -> None:
        super().__init__(was)
        self.method = method
        self.upstreams = upstreams

    def __repr__(self) -> str:
        return f"<was.{self.method.lower()}>"

    def __call__(self, url: str, data: Any = None, headers: Any = None, auth: Any = None,
                 timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, use_cache: Any = True,
                 rm_cache: Any = None, filter: Any = None, meta: dict | None = None) -> Task:
        """One call; to an alias, a member picked by weight (no fail-over: see `lb`)."""
        return self._start(url, data, headers, auth, timeout, max_size, use_cache, rm_cache, filter, meta,
                           failover=False)

    def lb(self, url: str, data: Any = None, headers: Any = None, auth: Any = None,
           timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, use_cache: Any = True,
           rm_cache: Any = None, filter: Any = None, meta: dict | None = None) -> Task:
        """Load-balanced: a member of the alias by weight among those up; on a connect failure or
        a 502/503 answer the member is marked down and the next one is tried."""
        return self._start(url, data, headers, auth, timeout, max_size, use_cache, rm_cache, filter, meta,
                           failover=True)

    def map(self, url: str, data: Any = None, headers: Any = None, auth: Any = None,
            timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, use_cache: Any = True,
            rm_cache: Any = None, filter: Any = None, meta: dict | None = None) -> Tasks:
        """The same call to every member of the alias at once: a `Tasks` whose members are the
        members' calls in the alias's order (`meta["members"]` names them). A `url` that is not
        `@alias/path`, or an alias not declared, raises at once (ValueError, KeyError)."""
        alias, path = self._alias(url)
        call, key = self._call(path, data, headers, auth, timeout, max_size, self._cache_rule(use_cache, rm_cache),
                               trace=False)
        tasks = [self._start_task(functools.partial(self.upstreams.member, traced_copy(call), alias, member),
                                  (self.method, alias.name, str(member), path, *key), use_cache, rm_cache, timeout,
                                  filter)
                 for member in alias.members]
        members = [member.address for member in alias.members]
        return Tasks(tasks, timeout=timeout, meta={**(meta or {}), "members": members})

    # building a call
    def _start(self, url: str, data: Any, headers: Any, auth: Any, timeout: float, max_size: int,
               use_cache: Any, rm_cache: Any, filter: Any, meta: dict | None, failover: bool) -> Task:
        try:
            cache_rule = self._cache_rule(use_cache, rm_cache)
            if url.startswith("@"):
                alias, path = self._alias(url)
                call, key = self._call(path, data, headers, auth, timeout, max_size, cache_rule)
                factory = functools.partial(self.upstreams.balanced, call, alias, failover)
                key = (self.method, alias.name, path, *key)
            else:
                if not url.lower().startswith(("http://", "https://")):
                    raise ValueError(f"{url!r}: give an absolute http(s):// URL or '@alias/path'")
                call, key = self._call(url, data, headers, auth, timeout, max_size, cache_rule)
                factory = functools.partial(self.upstreams.direct, call)
                key = (self.method, url, *key)
        except Exception as error:  # a call that cannot be made: its Task holds the error
            return Task(None, result=self.map_error(error), timeout=timeout, meta=meta)
        return self._start_task(factory, key, use_cache, rm_cache, timeout, filter, meta)

    def _start_task(self, factory: Callable[[], Awaitable[Result]], key: tuple, use_cache: Any, rm_cache: Any,
                    timeout: float, filter: Any, meta: dict | None = None) -> Task:
        return self.start(factory, _hashable(key), use_cache=use_cache, rm_cache=rm_cache, timeout=timeout,
                          filter=filter, meta=meta)

    def _alias(self, url: str) -> tuple["Alias", str]:
        if not url.startswith("@"):
            raise ValueError(f"{url!r}: map() calls the members of an alias: '@name/path'")
        name, slash, path = url.partition("/")
        alias = self.was.server.kernel.aliases.get(name)
        if alias.kind not in self.kinds:
            raise ValueError(f"{alias.name} is a {alias.kind} alias: {self!r} calls {', '.join(self.kinds)} ones")
        return alias, slash + path

    def _cache_rule(self, use_cache: Any, rm_cache: Any) -> Any:
        """What cachefs may serve the call (see `cachefs`): True, False (`use_cache=False` or
        `rm_cache`: the upstream is asked), or a timestamp (`use_cache` as one, or as cache key
        names: their `was.getlu`) before which stored answers are stale."""
        if rm_cache:
            return False
        if isinstance(use_cache, (str, list, tuple)):
            names = (use_cache,) if isinstance(use_cache, str) else tuple(use_cache)
            return self.was.engine.shared.getlu(*names)
        return False if use_cache is None else use_cache

    def _call(self, target: str, data: Any, headers: Any, auth: Any, timeout: float,
              max_size: int, cache_rule: Any = True, trace: bool = True) -> tuple[Call, tuple]:
        """The call and its cache key; with `trace`, the call carries the request's transaction
        ids (`map` numbers each member's call instead: see `traced_copy`)."""
        fields = request_headers(headers)
        if self.method in QUERY_METHODS:
            params, body = data, None
        else:
            params, body = None, self.encode(data, fields)
        if auth is not None:
            user, password = auth  # (user, password): HTTP Basic
            auth = (str(user), str(password))
        key = (_freeze(params), body, tuple(fields.items()), auth)
        call = Call(self.method, target, params, body, traced(fields) if trace else fields, auth, float(timeout),
                    int(max_size), cache_rule)
        return call, key

    def map_error(self, error: Exception) -> Result:
        """Beyond the base's mapping: the client's timeouts are STA_TIMEOUT (504); a connection
        refused, reset or closed, a malformed or oversized answer STA_NETERR (502); an invalid
        URL or an unknown alias STA_REQFAIL."""
        if isinstance(error, (aiohttp.InvalidURL, httpx.InvalidURL, httpx.UnsupportedProtocol)):
            return Result.failure(STA_REQFAIL, error)
        if isinstance(error, (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException)):
            return Result.failure(STA_TIMEOUT, error)
        if isinstance(error, (aiohttp.ClientError, httpx.HTTPError, BadUpstreamResponse)):  # a bad certificate too
            return Result.failure(STA_NETERR, error)
        if isinstance(error, (KeyError, ValueError, TypeError)):
            return Result.failure(STA_REQFAIL, error)
        return super().map_error(error)


class Upload(HttpMethod):
    """`was.upload(url, data, ...)`: a POST of `data` as multipart/form-data (files and fields,
    see `codec.upload_parts`), with `lb` and `map` like the others."""

    encode = staticmethod(upload_parts)

    def __init__(self, was: "Was", upstreams: Upstreams) -> None:
        super().__init__(was, "POST", upstreams)

    def __repr__(self) -> str:
        return "<was.upload>"


def traced(fields: CIMultiDict) -> CIMultiDict:
    """The call's fields with the API transaction ids of the request that makes it (the next
    local id of its sequence, see `skitai.transactions`), unless they carry their own: added in
    place, after the cache key was taken from them (the ids must not change it)."""
    transaction = current_transaction()
    if transaction is not None:  # None: not made by a request (a background thread of the app)
        for name, value in transaction.call_headers():
            fields.setdefault(name, value)
    return fields


def traced_copy(call: Call) -> Call:
    """A copy of the call with the next transaction ids: one per member of a `map`."""
    return dataclasses.replace(call, headers=traced(call.headers.copy()))


def _freeze(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _hashable(key: tuple) -> Hashable | None:
    try:
        hash(key)
    except TypeError:
        return None
    return key
