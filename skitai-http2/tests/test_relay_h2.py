"""Handlers on the event loop thread over HTTP/2: `body.read_async` withholds the stream's window
credit while the handler does not read, and `exchange.drain` waits on the stream's flow-control
window (through `skitai.testing.RelayHandler`)."""
import os

import h2.events
import pytest
from h2peer import Client, request_headers
from h2server import h2_server

from skitai.testing import RelayHandler, StartedServers, TunnelEchoHandler, wait_for

UPLOAD = 16 * 1024 * 1024


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def relay():
    handler = RelayHandler()

    servers = StartedServers(h2_server, handlers=(handler,))
    yield handler, servers(hello)
    servers.stop()


def open_upload(client: Client) -> int:
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, request_headers(client.port, "/relay", "POST"))
    client.flush()
    return stream_id


def send_what_the_window_allows(client: Client, stream_id: int, body: bytes, sent: int) -> int:
    conn = client.conn
    while sent < len(body):
        size = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size,
                   len(body) - sent)
        if size <= 0:
            break
        conn.send_data(stream_id, body[sent:sent + size])
        sent += size
    client.flush()
    return sent


def send_until_stalled(client: Client, stream_id: int, body: bytes) -> int:
    """Send as the windows allow, acknowledging none of the echoed DATA, until no window
    credit comes for the client's timeout; returns the bytes sent."""
    sent = 0
    while sent < len(body):
        sent = send_what_the_window_allows(client, stream_id, body, sent)
        try:
            client.until(lambda event: isinstance(event, h2.events.WindowUpdated))
        except TimeoutError:
            break
    return sent


def take_echoed(client: Client, stream_id: int, into: bytearray) -> None:
    """Move the stream's DATA out of the backlog into `into`, crediting it."""
    for event in list(client.backlog):
        if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
            client.backlog.remove(event)
            into += event.data
            client.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
    client.flush()


def test_a_relay_to_a_client_that_does_not_read_stops_crediting_the_upload(relay):
    handler, server = relay
    body = os.urandom(UPLOAD)
    client = Client(server.port, timeout=2)
    try:
        stream_id = open_upload(client)
        sent = send_until_stalled(client, stream_id, body)
        # Without back-pressure the server would credit (and buffer) the whole upload.
        assert sent < UPLOAD // 4
        echoed = bytearray()
        while sent < len(body):
            take_echoed(client, stream_id, echoed)
            sent = send_what_the_window_allows(client, stream_id, body, sent)
            client.until(lambda event: True)
        client.conn.end_stream(stream_id)
        client.flush()
        take_echoed(client, stream_id, echoed)
        headers, rest = client.response(stream_id)
        echoed += rest
    finally:
        client.close()
    assert headers[":status"] == "200"
    assert bytes(echoed) == body
    assert handler.outcomes == ["done"]


def test_drain_raises_client_disconnected_when_the_stalled_stream_is_reset(relay):
    handler, server = relay
    client = Client(server.port, timeout=2)
    try:
        stream_id = open_upload(client)
        send_until_stalled(client, stream_id, b"x" * UPLOAD)
        client.conn.reset_stream(stream_id)
        client.flush()
        assert wait_for(lambda: handler.outcomes, timeout=10) == ["drain"]
    finally:
        client.close()


def test_read_async_raises_client_disconnected_when_the_stream_is_reset_mid_body(relay):
    handler, server = relay
    client = Client(server.port)
    try:
        stream_id = open_upload(client)
        client.conn.send_data(stream_id, b"x" * 1000)
        client.flush()
        wait_for(lambda: handler.relayed == 1000, timeout=10)
        client.conn.reset_stream(stream_id)
        client.flush()
        assert wait_for(lambda: handler.outcomes, timeout=10) == ["read"]
    finally:
        client.close()


@pytest.fixture
def tunnel():
    handler = TunnelEchoHandler()

    servers = StartedServers(h2_server, handlers=(handler,))
    yield handler, servers(hello)
    servers.stop()


def test_a_plain_connect_becomes_a_tunnel_that_carries_bytes_both_ways(tunnel):
    handler, server = tunnel
    payload = os.urandom(200 * 1024)  # within the stream's initial window
    client = Client(server.port)
    try:
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream_id, [(":method", "CONNECT"), (":authority", "example.com:443")])
        client.flush()
        client.until(lambda event: isinstance(event, h2.events.ResponseReceived))
        send_what_the_window_allows(client, stream_id, payload, 0)
        client.conn.end_stream(stream_id)
        client.flush()
        headers, echoed = client.response(stream_id)
    finally:
        client.close()
    assert headers[":status"] == "200"
    assert "content-length" not in headers
    assert echoed == payload
    assert handler.targets == ["example.com:443"]
    assert handler.lost.wait(10)


def test_a_plain_connect_no_handler_takes_is_answered_404(serve):
    server = serve(hello)
    client = Client(server.port)
    try:
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream_id, [(":method", "CONNECT"), (":authority", "example.com:443")])
        client.flush()
        headers, _ = client.response(stream_id)
    finally:
        client.close()
    assert headers[":status"] == "404"


def test_request_trailers_reach_the_relay_once_the_stream_ended(relay):
    """`body.trailers` over HTTP/2: the request's trailing HEADERS, complete once `read_async`
    returned b"" (echoed here as the response's trailers); a stream without them has none."""
    handler, server = relay
    client = Client(server.port)
    try:
        stream_id = open_upload(client)
        client.conn.send_data(stream_id, b"hello")
        client.conn.send_headers(stream_id, [("x-checksum", "abc"), ("server-timing", "db;dur=5")], end_stream=True)
        client.flush()
        headers, echoed = client.response(stream_id)
        plain = client.request("/relay", "POST", b"hi")
        plain_headers, plain_echoed = client.response(plain)
    finally:
        client.close()
    assert (headers[":status"], echoed, plain_echoed) == ("200", b"hello", b"hi")
    assert handler.trailers == [[("x-checksum", "abc"), ("server-timing", "db;dur=5")], []]
    assert client.trailers[stream_id] == {"x-checksum": "abc", "server-timing": "db;dur=5"}
