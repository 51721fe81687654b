"""`was.ws`: one message to a WebSocket backend and its answer, as a corequest.

    was.ws(url, message, headers=None, auth=None, timeout=10, max_size=64 MiB)
    was.ws.lb("@alias/path", message, ...)    # a member by weight, failing over to the next
    was.ws.map("@alias/path", message, ...)   # every member: a Tasks of their Results

`url` is absolute (`ws://`, `wss://`) or `@alias/path` for a PROTO_WS or PROTO_WSS alias (the
manual's WebSocket backends). Each call opens a WebSocket (aiohttp's client, on the worker's
event loop and its connection pool's TLS settings), sends `message` (a `str` as a text message,
`bytes` as a binary one, anything else as JSON text), waits for the first message back, which is
the result's `data` (`str` or `bytes`), and closes with 1000. A backend that refuses the
handshake with an HTTP answer gives that answer's status (`fetch()` raises it); one that closes
before answering, fails the WebSocket protocol or answers more than `max_size` bytes is a 502
(STA_NETERR); no answer within `timeout`, a 504 (STA_TIMEOUT). Results are never cached (as in
the original Skitai): a WebSocket answer is a conversation's turn, not a resource.
"""
from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDict

import skitai
from skitai.backends import Alias, Member
from skitai.corequest import STA_NORMAL, Result, Task, Tasks
from skitai.corequest.task import DEFAULT_TIMEOUT

from .calls import HttpMethod, traced
from .codec import BadUpstreamResponse
from .upstreams import MAX_RESPONSE_SIZE, Upstreams, member_auth, with_auth

if TYPE_CHECKING:
    from skitai.corequest.was import Was

CLOSE_TIMEOUT = 2.0  # for the backend's close frame after the answer


class WebSocketCall(HttpMethod):
    """A driver like `was.get`'s (its alias lookup and fault mapping), for WebSocket exchanges."""

    kinds = (skitai.PROTO_WS, skitai.PROTO_WSS)

    def __init__(self, was: "Was", upstreams: Upstreams) -> None:
        super().__init__(was, "GET", upstreams)

    def __repr__(self) -> str:
        return "<was.ws>"

    def __call__(self, url: str, message: Any, headers: Any = None, auth: Any = None,
                 timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, filter: Any = None,
                 meta: dict | None = None) -> Task:
        """One exchange; to an alias, a member picked by weight (no fail-over: see `lb`)."""
        return self._exchange(url, message, headers, auth, timeout, max_size, filter, meta, failover=False)

    def lb(self, url: str, message: Any, headers: Any = None, auth: Any = None,
           timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, filter: Any = None,
           meta: dict | None = None) -> Task:
        """Load-balanced: on a refused connection or a 502/503 handshake answer the member is
        marked down and the next one is tried."""
        return self._exchange(url, message, headers, auth, timeout, max_size, filter, meta, failover=True)

    def map(self, url: str, message: Any, headers: Any = None, auth: Any = None,
            timeout: float = DEFAULT_TIMEOUT, max_size: int = MAX_RESPONSE_SIZE, *, filter: Any = None,
            meta: dict | None = None) -> Tasks:
        """The same message to every member of the alias at once, as `was.get.map`."""
        alias, path = self._alias(url)
        frame, fields, auth = prepared(message, headers, auth)
        tasks = [self.start(functools.partial(self.upstreams.watched, member, functools.partial(
                     self._to_member, alias, member, path, frame, fields, auth, timeout, max_size), _status),
                            None, timeout=timeout, filter=filter)
                 for member in alias.members]
        return Tasks(tasks, timeout=timeout, meta={**(meta or {}), "members": [m.address for m in alias.members]})

    def _exchange(self, url: str, message: Any, headers: Any, auth: Any, timeout: float, max_size: int,
                  filter: Any, meta: dict | None, failover: bool) -> Task:
        try:
            frame, fields, auth = prepared(message, headers, auth)
            if url.startswith("@"):
                alias, path = self._alias(url)

                def attempt(member: Member) -> Awaitable[Result]:
                    return self._to_member(alias, member, path, frame, fields, auth, timeout, max_size)

                factory = functools.partial(self.upstreams.over_members, alias, failover, attempt, _status)
            else:
                if not url.lower().startswith(("ws://", "wss://")):
                    raise ValueError(f"{url!r}: give an absolute ws(s):// URL or '@alias/path'")
                factory = functools.partial(exchange, self.upstreams, url, frame, with_auth(fields, auth), timeout,
                                            max_size)
        except Exception as error:  # a call that cannot be made: its Task holds the error
            return Task(None, result=self.map_error(error), timeout=timeout, meta=meta)
        return self.start(factory, None, timeout=timeout, filter=filter, meta=meta)

    async def _to_member(self, alias: Alias, member: Member, path: str, frame: str | bytes, fields: Any,
                         auth: tuple[str, str] | None, timeout: float, max_size: int) -> Result:
        scheme = "wss" if alias.ssl else "ws"
        return await exchange(self.upstreams, f"{scheme}://{member.address}{path}", frame,
                              with_auth(fields, auth or member_auth(member)), timeout, max_size)


def _status(result: Result) -> int:
    return result.status_code


def prepared(message: Any, headers: Any, auth: Any) -> tuple[str | bytes, Any, tuple[str, str] | None]:
    """The message as it goes on the wire, the handshake's headers (with the request's
    transaction ids) and HTTP Basic credentials."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        frame: str | bytes = bytes(message)
    elif isinstance(message, str):
        frame = message
    else:
        frame = json.dumps(message)
    fields = traced(CIMultiDict(headers.items() if isinstance(headers, Mapping) else (headers or ())))
    if auth is not None:
        user, password = auth
        auth = (str(user), str(password))
    return frame, fields, auth


async def exchange(upstreams: Upstreams, url: str, frame: str | bytes, headers: Any, timeout: float,
                   max_size: int) -> Result:
    """Open, send `frame`, read one message back, close, within `timeout` seconds (TimeoutError
    past it): the Result of one exchange, over the worker's session (on its loop, where this runs)."""
    return await asyncio.wait_for(_exchange(upstreams.session, url, frame, headers, max_size), timeout)


async def _exchange(session: aiohttp.ClientSession, url: str, frame: str | bytes, headers: Any,
                    max_size: int) -> Result:
    try:
        socket = await session.ws_connect(url, headers=headers, max_msg_size=max_size, autoclose=False,
                                          timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT))
    except aiohttp.WSServerHandshakeError as refusal:
        if refusal.status == 101:  # upgraded, but not as RFC 6455 says (a wrong accept key ...)
            raise BadUpstreamResponse(f"the backend's WebSocket handshake is invalid: {refusal.message}") from None
        return Result(STA_NORMAL, refusal.status, refusal.message, None, list((refusal.headers or {}).items()))
    try:
        if isinstance(frame, bytes):
            await socket.send_bytes(frame)
        else:
            await socket.send_str(frame)
        reply = await socket.receive()
    finally:
        await socket.close()
    if reply.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        return Result(STA_NORMAL, 200, "OK", reply.data)
    if reply.type == aiohttp.WSMsgType.ERROR:
        raise BadUpstreamResponse(f"the backend's WebSocket failed: {reply.data}")
    raise BadUpstreamResponse(f"the backend closed the WebSocket without answering (code {socket.close_code})")
