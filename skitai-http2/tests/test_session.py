"""The sans-IO session without sockets: h2's client connection on one side, bytes passed by hand."""
import base64

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from h2peer import split_frames
from hyperframe.frame import SettingsFrame

from skitai_http2.budget import Budget
from skitai_http2.session import H2Session, Limits, SessionError, valid_settings_header

REQUEST = [(":method", "GET"), (":path", "/x?y=1"), (":scheme", "http"), (":authority", "example")]


def pair(limits=None, client_settings=None):
    server = H2Session(limits)
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    if client_settings:
        client.update_settings(client_settings)
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    return server, client


def test_budget_allows_a_burst_then_a_rate():
    budget = Budget(burst=3, rate=1.0)
    assert all(budget.spend(0.0) for _ in range(3))
    assert not budget.spend(0.0)
    assert budget.spend(2.5)  # earned back with time


def test_request_and_flow_controlled_response():
    server, client = pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.send_headers(1, REQUEST, end_stream=True)
    events = server.receive(client.data_to_send(), 0.0)
    request = next(e for e in events if isinstance(e, h2.events.RequestReceived))
    assert dict(request.headers)[b":path"] == b"/x?y=1"
    server.send_head(1, 200, [(b"content-type", b"text/plain")], end_stream=False)
    assert server.queue(1, b"a" * 5000) == 5000
    server.end(1)
    assert server.flush(1.0) == ([], [])          # 1000 bytes go out, the rest waits
    assert server.pending(1) == 4000
    received = client.receive_data(server.data_to_send())
    assert sum(len(e.data) for e in received if isinstance(e, h2.events.DataReceived)) == 1000
    assert server.stalled(5.0, 3.0) == [1]          # blocked since 1.0
    client.increment_flow_control_window(4000, 1)
    server.receive(client.data_to_send(), 6.0)
    assert server.flush(6.0) == ([1], [])
    assert server.stalled(10.0, 3.0) == []
    events = client.receive_data(server.data_to_send())
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_rapid_reset_budget_ends_the_session():
    server, client = pair(Limits(reset_burst=5, reset_rate=1.0))
    with pytest.raises(SessionError) as error:
        for n in range(10):
            client.send_headers(2 * n + 1, REQUEST, end_stream=True)
            client.reset_stream(2 * n + 1)
            server.receive(client.data_to_send(), 0.0)
    assert error.value.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[-1], h2.events.ConnectionTerminated)
    assert events[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_graceful_goaway_keeps_in_flight_streams_sendable():
    server, client = pair()
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    server.goaway()
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"after goaway")
    server.end(1)
    assert server.flush(0.0) == ([1], [])
    assert server.last_stream_id == 1
    frames, rest = split_frames(server.data_to_send())
    assert rest == b""
    assert [type(frame).__name__ for frame in frames] == ["GoAwayFrame", "HeadersFrame", "DataFrame"]
    assert frames[0].last_stream_id == 1 and frames[0].error_code == ErrorCodes.NO_ERROR
    assert frames[2].data == b"after goaway" and "END_STREAM" in frames[2].flags


def test_settings_header_validation():
    payload = SettingsFrame(0, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0}).serialize_body()
    assert valid_settings_header(base64.urlsafe_b64encode(payload).decode().rstrip("="))
    assert valid_settings_header("")  # no settings at all is valid
    assert not valid_settings_header("a")
    assert not valid_settings_header("AAAA!")
