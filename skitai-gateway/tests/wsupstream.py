"""`WebSocketUpstream(name, ssl=None)`: a WebSocket server of the `websockets` library on
127.0.0.1, a free port and a thread of its own, for `was.ws`'s tests. By path:

* `/echo`: answers each message with `{"member", "echo" (the message), "type" ("text" or
  "binary"), "auth" and "txn" (the handshake's Authorization and transaction-id headers)}` as
  JSON text, and a binary message with its bytes reversed;
* `/mute`: closes (1000) without answering; `/slow`: answers after 2 s; `/big`: answers 1 MiB;
* `/status/<code>`: refuses the handshake with that HTTP status.

A module of its own (not conftest) so test modules can import it."""
from __future__ import annotations

import asyncio
import json
import threading
from http import HTTPStatus

from websockets.asyncio.server import serve


class WebSocketUpstream:
    def __init__(self, name: str = "a", ssl=None) -> None:
        self.name = name
        self.ssl = ssl
        self.handshakes = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "WebSocketUpstream":
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the WebSocket upstream did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, ssl=self.ssl, process_request=self._check,
                         max_size=2 ** 22) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def _check(self, connection, request):
        self.handshakes += 1
        if request.path.startswith("/status/"):
            return connection.respond(HTTPStatus(int(request.path.rsplit("/", 1)[1])), "refused\n")
        return None

    async def _handle(self, connection) -> None:
        path = connection.request.path
        headers = connection.request.headers
        async for message in connection:
            if path == "/mute":
                await connection.close()
                return
            if path == "/slow":
                await asyncio.sleep(2)
            if path == "/big":
                await connection.send("x" * 2 ** 20)
            elif isinstance(message, bytes):
                await connection.send(message[::-1])
            else:
                await connection.send(json.dumps({
                    "member": self.name, "echo": message, "type": "text", "auth": headers.get("Authorization"),
                    "txn": [headers.get("X-Gtxn-Id"), headers.get("X-Ltxn-Id")]}))
