"""bench/ws_echo_client.py, the WebSocket load client of the ws-echo scenario: its frames as a
real WebSocket implementation (wsproto) reads and writes them, and its round trips, mismatches
and probe against a real Skitai serving the bench's echo app and the manual's example app."""
from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, TextMessage
from wsproto.frame_protocol import CloseReason

from skitai.testing import ServerProcess

BENCH = Path(__file__).resolve().parent.parent / "bench"
EXAMPLE = BENCH.parent / "examples" / "websocket" / "app.py"
_spec = importlib.util.spec_from_file_location("bench_ws_echo_client", BENCH / "ws_echo_client.py")
client = sys.modules["bench_ws_echo_client"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client)

SIZES = [0, 5, 125, 126, 65535, 65536, 70000]  # each length encoding and its edges


def server_side() -> Connection:
    return Connection(ConnectionType.SERVER)  # past the handshake: frames only


@pytest.mark.parametrize("size", SIZES)
def test_a_client_frame_reads_as_one_masked_text_message(size):
    message = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    text = message.decode("latin-1")
    server = server_side()
    server.receive_data(client.client_frame(client.TEXT, text.encode()))
    events = list(server.events())
    # wsproto refuses an unmasked client frame (RFC 6455 5.1), so reading it at all checks the mask
    assert [type(event) for event in events] == [TextMessage]
    assert events[0].data == text and events[0].message_finished


@pytest.mark.parametrize("size", SIZES)
def test_the_expected_echo_is_the_frame_a_server_sends(size):
    text = "x" * size
    assert client.server_frame(client.TEXT, text.encode()) == server_side().send(Message(data=text))


def test_read_frame_waits_for_a_whole_frame_and_says_what_it_used():
    frame = server_side().send(Message(data="y" * 300))
    for cut in range(len(frame)):
        assert client.read_frame(frame[:cut]) is None
    assert client.read_frame(frame + b"\x81") == (client.TEXT, True, b"y" * 300, len(frame))
    close = server_side().send(CloseConnection(code=CloseReason.NORMAL_CLOSURE))
    assert client.read_frame(close)[:2] == (client.CLOSE, True)


def run_client(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.mark.parametrize("threads", ["0", "2"])
def test_round_trips_against_a_real_echo_server(threads):
    with ServerProcess(str(BENCH / "apps" / "skitai_ws_echo.py"), env={"BENCH_THREADS": threads}) as server:
        url = f"ws://127.0.0.1:{server.port}/echo"
        run_client(client.probe(url, 5.0))
        stats = run_client(client.load(url, connections=3, size=200, duration=1.0, timeout=5.0,
                                       max_reconnects=0))
    assert stats["errors"] == 0, stats
    assert stats["round_trips"] > 100  # hundreds at the least, thousands on a quiet machine
    assert "Traceback" not in server.output, server.output


def test_an_answer_other_than_the_echo_counts_as_a_mismatch():
    # the manual's example app answers "ECHO:" + the message
    with ServerProcess(str(EXAMPLE)) as server:
        url = f"ws://127.0.0.1:{server.port}/echo"
        stats = run_client(client.load(url, connections=1, size=8, duration=0.5, timeout=5.0,
                                       max_reconnects=0))
        with pytest.raises(RuntimeError, match="no echo"):
            run_client(client.probe(url, 5.0))
    assert stats["round_trips"] == 0 and stats["mismatch"] > 0 and stats["errors"] == stats["mismatch"]


def test_a_refused_handshake_is_an_error_not_a_round_trip():
    with ServerProcess(str(EXAMPLE)) as server:
        # the example's page, not a WebSocket: it answers 200, not 101
        stats = run_client(client.load(f"ws://127.0.0.1:{server.port}/", connections=1, size=8,
                                       duration=0.5, timeout=5.0, max_reconnects=0))
    assert stats["round_trips"] == 0 and stats["kinds"] == {"HandshakeRefused": 1}, stats
