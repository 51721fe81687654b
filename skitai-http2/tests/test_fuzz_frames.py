"""Fuzz the HTTP/2 plugin's frame handling through a running server's real socket path.

Each connection sends a valid preface and SETTINGS, then random and mutated frames of every
type and random bytes (`h2fuzz.FrameFuzzer`), then a PING and a GOAWAY of its own. Checked:

* nothing the server logs carries a traceback, and nothing is logged as an error;
* every connection ends, with the server's GOAWAY or its close, within a bounded wait (a frame
  cut short may swallow the client's GOAWAY: the server's idle and request timeouts, shortened
  here, must then end it);
* clean requests on fresh connections, HTTP/2 and HTTP/1.1, keep working afterwards.

The suite runs it for `SKITAI_FUZZ_SECONDS` seconds (3 by default); `nox -s fuzz_h2` runs it
for longer. `SKITAI_FUZZ_SEED` replays a run; a failure names the seed of its connection.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from apps import APP
from h2fuzz import FrameFuzzer
from h2peer import PREFACE, split_frames
from h2server import h2_server
from hyperframe.frame import GoAwayFrame, PingFrame, SettingsFrame

import skitai

FUZZ_SECONDS = float(os.environ.get("SKITAI_FUZZ_SECONDS", "3"))
END_WAIT = 15.0       # the longest a connection may stay open after the client is done
CONCURRENCY = 32    # connections in flight: many wait on the server's timeouts
CLIENT_END = PingFrame(0, opaque_data=b"fuzzdone").serialize() + GoAwayFrame(0).serialize()


@skitai.websocket(2)  # an idle WebSocket ends soon: a fuzzed connection may leave one open
def echo(environ, start_response):
    while True:
        message = yield
        if not message:
            return
        yield message


def fuzz_connection(port: int, seed: int) -> str:
    """One fuzzed connection; how it ended ("goaway" or "closed"). Raises AssertionError naming
    the seed when the server kept it open beyond END_WAIT."""
    rng = random.Random(seed)
    fuzzer = FrameFuzzer(rng, f"127.0.0.1:{port}")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        pieces = [PREFACE + SettingsFrame(0).serialize()]
        pieces += [fuzzer.piece() for _ in range(rng.randrange(1, 40))]
        pieces.append(CLIENT_END)
        try:
            while pieces:  # in writes of a few pieces each
                count = rng.randrange(1, 8)
                sock.sendall(b"".join(pieces[:count]))
                del pieces[:count]
        except OSError:
            pass  # the server ended the connection already, which is what we wait for below
        return _ending(sock, seed)


def _ending(sock: socket.socket, seed: int) -> str:
    deadline = time.monotonic() + END_WAIT
    received = b""
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:  # reset by the server
            chunk = b""
        if not chunk:
            frames, _ = split_frames(received)
            return "goaway" if any(isinstance(frame, GoAwayFrame) for frame in frames) else "closed"
        received += chunk
    raise AssertionError(f"connection of seed {seed} still open {END_WAIT} s after the client was done")


def serving(server) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as http:
        response = http.get(server.url("/"))
        assert response.status_code == 200 and response.http_version == "HTTP/2"
        assert http.post(server.url("/echo"), content=b"x" * 100000).text.startswith("100000 ")
    assert httpx.get(server.url("/"), timeout=10).status_code == 200


def test_random_and_mutated_frames(caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="skitai")
    base_seed = int(os.environ.get("SKITAI_FUZZ_SEED", random.randrange(2**32)))
    server = h2_server(keep_alive=1, request_timeout=2, max_upload_size=1_000_000)
    server.mount("/ws", echo)
    server.mount("/", APP)
    with server:
        endings: dict[str, int] = {}
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            futures = []
            stop = time.monotonic() + FUZZ_SECONDS
            index = 0
            while time.monotonic() < stop:
                if sum(not future.done() for future in futures) < CONCURRENCY:
                    futures.append(pool.submit(fuzz_connection, server.port, base_seed + index))
                    index += 1
                else:
                    time.sleep(0.005)
            for future in futures:
                ending = future.result(timeout=END_WAIT + 10)
                endings[ending] = endings.get(ending, 0) + 1
        serving(server)
    failures = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert not failures, f"base seed {base_seed}:\n" + "\n".join(map(formatter.format, failures[:5]))
    err = capfd.readouterr().err
    assert "Traceback" not in err, f"base seed {base_seed}:\n{err[:5000]}"
    assert sum(endings.values()) == len(futures) > 0
    print(f"fuzzed {len(futures)} connections (base seed {base_seed}): {endings}")


@pytest.mark.parametrize("seed", range(5))
def test_a_fuzzed_connection_is_replayed_by_its_seed(seed):
    """The generator is deterministic: a seed from a failure report gives the same bytes."""
    def run():
        fuzzer = FrameFuzzer(random.Random(seed), "x")
        return [fuzzer.piece() for _ in range(30)]
    assert run() == run()
