#!/usr/bin/env python3
"""WebSocket echo round-trip load client for bench/run.py (run with the peers venv's python).

N connections (default 10) each send a text message (default 32 bytes), wait for its echo,
check it, and send the next one, until the duration is over. One round trip = one message
sent and the identical message received back. Prints one JSON line on stdout:

    {"round_trips": ..., "elapsed": ..., "rps": ..., "errors": ..., "cpu_pct": ..., ...}

`cpu_pct` is the client's own CPU use during the load (process time over wall time, start-up
and imports left out): near 100 means the client, not the server, was the limit.

Why its own framing and not a WebSocket library: a load client has to cost much less per
message than the servers it measures, or it sets the pace and pulls every ratio toward 1 (with
the `websockets` library's client this bench's client ran at 85-97% of its CPU against Skitai).
So each connection is a bare asyncio protocol: the handshake is checked once (101, the accept
key, no extension), then every round trip writes one frame masked once in advance and compares
what comes back with the one expected frame; anything else (a split or merged echo, a ping, a
close) goes through a general frame reader. No permessage-deflate is offered, so every server
is measured on plain frames.

Errors are: connections that could not be opened, connections that closed or failed
mid-run, echoes that did not match, and echoes that took longer than --timeout. A
connection that failed is reopened after a short pause (at most --max-reconnects times),
so one broken connection does not silence the rest of the run.

`--probe` opens one connection, does one round trip and exits 0 on success: run.py uses it
to wait until a server is ready.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time
from urllib.parse import urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
MAX_HEAD = 16384  # bytes of a handshake answer before it is refused as no answer


def _head(opcode: int, size: int, mask_bit: int) -> bytes:
    """A final frame's first bytes: opcode, the mask bit, and the payload length (RFC 6455 5.2)."""
    if size < 126:
        return bytes((0x80 | opcode, mask_bit | size))
    if size < 65536:
        return bytes((0x80 | opcode, mask_bit | 126)) + size.to_bytes(2, "big")
    return bytes((0x80 | opcode, mask_bit | 127)) + size.to_bytes(8, "big")


def _masked(payload: bytes, key: bytes) -> bytes:
    """`payload` XORed with the 4-byte `key` (masking and unmasking are the same)."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame (a client must mask, RFC 6455 5.3)."""
    key = os.urandom(4)
    return _head(opcode, len(payload), 0x80) + key + _masked(payload, key)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """The unmasked frame a server sends for `payload`: what an echo is compared with."""
    return _head(opcode, len(payload), 0) + payload


def read_frame(buffer: bytes) -> tuple[int, bool, bytes, int] | None:
    """(opcode, final, payload, bytes used) of the first whole frame in `buffer`, or None."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    size, offset = second & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, offset = int.from_bytes(buffer[2:4], "big"), 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, offset = int.from_bytes(buffer[2:10], "big"), 10
    key = b""
    if second & 0x80:  # a server must not mask; read it anyway so the count stays in step
        key, offset = buffer[offset:offset + 4], offset + 4
    if len(buffer) < offset + size:
        return None
    payload = buffer[offset:offset + size]
    if key:
        payload = _masked(payload, key)
    return first & 0x0F, bool(first & 0x80), payload, offset + size


class EchoConnection(asyncio.Protocol):
    """One connection's handshake and round trips; `finished` resolves when it is closed."""

    def __init__(self, host: str, target: str, message: bytes, deadline: float, stats: dict,
                 limit: int | None = None) -> None:
        self.host, self.target, self.deadline, self.stats = host, target, deadline, stats
        self.limit = limit  # round trips to make before closing (the probe's 1), else the deadline
        self.message = message
        self.frame = client_frame(TEXT, message)
        self.echo = server_frame(TEXT, message)
        self.key = base64.b64encode(os.urandom(16))
        self.buffer = b""
        self.open = self.closing = False
        self.fragments: list[bytes] = []
        self.last_progress = time.monotonic()
        self.round_trips = 0
        self.transport: asyncio.Transport | None = None
        self.finished: asyncio.Future = asyncio.get_running_loop().create_future()
        self.failure: str | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        % (self.target.encode(), self.host.encode(), self.key))

    def data_received(self, data: bytes) -> None:
        self.last_progress = time.monotonic()
        if self.open and not self.buffer and data == self.echo:  # the one expected frame, whole
            self._answered()
            return
        self.buffer += data
        if not self.open:
            self._read_handshake()
        if self.open:
            self._read_frames()

    def _read_handshake(self) -> None:
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            if len(self.buffer) > MAX_HEAD:
                self.fail("HandshakeTooLong")
            return
        lines = head.split(b"\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        if lines[0].split(b" ")[1:2] != [b"101"]:
            self.fail("HandshakeRefused")
        elif fields.get(b"sec-websocket-accept") != accept:
            self.fail("HandshakeBadAccept")
        elif b"sec-websocket-extensions" in fields:
            self.fail("HandshakeExtension")  # none was offered (RFC 6455 9.1)
        else:
            self.open = True
            self.buffer = rest
            self.transport.write(self.frame)

    def _read_frames(self) -> None:
        while self.buffer and self.transport is not None:
            frame = read_frame(self.buffer)
            if frame is None:
                return
            opcode, final, payload, used = frame
            self.buffer = self.buffer[used:]
            if opcode == PING:
                self.transport.write(client_frame(PONG, payload))
            elif opcode == CLOSE:
                self.transport.close()
            elif opcode != PONG:
                self.fragments.append(payload)
                if final:
                    whole, self.fragments = b"".join(self.fragments), []
                    if whole == self.message:
                        self._answered()
                    else:
                        self.stats["mismatch"] += 1
                        self.stats["errors"] += 1
                        self._next()

    def _answered(self) -> None:
        self.stats["round_trips"] += 1
        self.round_trips += 1
        self._next()

    def _next(self) -> None:
        if self.closing:
            return
        if (self.limit is not None and self.round_trips >= self.limit) or time.monotonic() >= self.deadline:
            self.closing = True
            self.transport.write(client_frame(CLOSE, (1000).to_bytes(2, "big")))
            asyncio.get_running_loop().call_later(1.0, self.transport.close)  # no close answer
        else:
            self.transport.write(self.frame)

    def fail(self, kind: str) -> None:
        if self.failure is None:
            self.failure = kind
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.failure is None and not self.closing:
            self.failure = type(exc).__name__ if exc else "ClosedEarly"
        if not self.finished.done():
            self.finished.set_result(None)


async def one_connection(url: str, message: bytes, deadline: float, timeout: float,
                         max_reconnects: int, stats: dict, limit: int | None = None) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    reconnects = 0
    while time.monotonic() < deadline:
        failure = None
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: EchoConnection(f"{host}:{port}", target, message, deadline, stats, limit),
                host, port), timeout)
            while not conn.finished.done():  # a watchdog: every echo must come within timeout
                await asyncio.wait((conn.finished,), timeout=min(timeout, 0.5))
                if not conn.finished.done() and time.monotonic() - conn.last_progress > timeout:
                    conn.fail("EchoTimeout")
                    await asyncio.wait((conn.finished,), timeout=1.0)
                    break
            failure = conn.failure
        except Exception as exc:  # any failure to connect counts as an error
            failure = type(exc).__name__
        if failure is None:
            return
        stats["errors"] += 1
        stats["kinds"][failure] = stats["kinds"].get(failure, 0) + 1
        reconnects += 1
        if reconnects > max_reconnects or limit is not None:
            return
        await asyncio.sleep(0.1)


async def load(url: str, connections: int, size: int, duration: float, timeout: float,
               max_reconnects: int) -> dict:
    message = ("x" * size)[:size].encode()
    stats = {"round_trips": 0, "errors": 0, "mismatch": 0, "kinds": {}}
    t0, cpu0 = time.monotonic(), time.process_time()
    deadline = t0 + duration
    tasks = [asyncio.create_task(one_connection(url, message, deadline, timeout, max_reconnects, stats))
             for _ in range(connections)]
    # Every task ends by itself (deadline, echo timeout, reconnect limit); the wait's timeout is
    # a last guard against a close that hangs.
    done, pending = await asyncio.wait(tasks, timeout=duration + 3 * timeout + 5)
    for task in pending:
        task.cancel()
        stats["errors"] += 1
        stats["kinds"]["Hung"] = stats["kinds"].get("Hung", 0) + 1
    wall = time.monotonic() - t0
    elapsed = min(wall, duration)
    stats.update(elapsed=round(elapsed, 3), rps=round(stats["round_trips"] / elapsed, 1),
                 cpu_pct=round(100 * (time.process_time() - cpu0) / wall),
                 connections=connections, size=size)
    return stats


async def probe(url: str, timeout: float) -> None:
    stats = {"round_trips": 0, "errors": 0, "mismatch": 0, "kinds": {}}
    await one_connection(url, b"probe", time.monotonic() + timeout, timeout, 0, stats, limit=1)
    if stats["round_trips"] != 1:
        raise RuntimeError(f"no echo: {stats['kinds'] or 'mismatch'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://127.0.0.1:PORT/path")
    parser.add_argument("-c", "--connections", type=int, default=10)
    parser.add_argument("-s", "--size", type=int, default=32, help="message size in bytes (text)")
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an echo or a handshake")
    parser.add_argument("--max-reconnects", type=int, default=20, help="per connection")
    parser.add_argument("--probe", action="store_true", help="one round trip; exit status says if it worked")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop of the client (uvloop, when installed, leaves more headroom)")
    args = parser.parse_args(argv)
    run = asyncio.run
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            run = uvloop.run
    if args.probe:
        try:
            run(asyncio.wait_for(probe(args.url, args.timeout), args.timeout + 2))
        except Exception as exc:  # the probe reports any failure
            print(f"probe failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return 0
    stats = run(load(args.url, args.connections, args.size, args.duration, args.timeout,
                     args.max_reconnects))
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
