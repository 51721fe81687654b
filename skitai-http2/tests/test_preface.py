"""The client preface on a plain listener (RFC 9113 3.4), over raw sockets: a connection that
starts like the preface but departs from it is closed without an HTTP/1.1 answer; a complete
preface not followed by a valid SETTINGS frame gets GOAWAY PROTOCOL_ERROR (FRAME_SIZE_ERROR for
a SETTINGS payload that is not a whole number of settings)."""

import httpx
import pytest
from apps import APP
from h2.errors import ErrorCodes
from h2peer import PREFACE, split_frames
from hyperframe.frame import GoAwayFrame, PingFrame, SettingsFrame

from skitai.testing import read_until_closed


def goaway_of(received: bytes) -> GoAwayFrame | None:
    frames, _ = split_frames(received)
    return next((frame for frame in frames if isinstance(frame, GoAwayFrame)), None)


def still_serving(server) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as http:
        assert http.get(server.url("/")).status_code == 200
    assert httpx.get(server.url("/"), timeout=10).status_code == 200


@pytest.mark.parametrize("data", [
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",                 # departs in its second line
    b"PRI * HTTP/2.0\r\nHost: x\r\n\r\n",                # the first line, then HTTP/1.1 fields
    b"PRI / HTTP/1.1\r\nHost: x\r\n\r\n",                # the reserved method as an HTTP/1.1 request
    b"PRI * HTTP/1.1\r\n\r\n",
])
def test_a_near_miss_of_the_preface_is_closed_without_an_answer(serve, data):
    server = serve(APP)
    assert read_until_closed(server.port, data) == b""
    still_serving(server)


SETTINGS_ON_A_STREAM = b"\x00\x00\x00\x04\x00\x00\x00\x00\x01"
SETTINGS_ACK = SettingsFrame(0, flags=["ACK"]).serialize()
SETTINGS_CUT = b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00"


@pytest.mark.parametrize("after, error_code", [
    (PingFrame(0, opaque_data=b"12345678").serialize(), ErrorCodes.PROTOCOL_ERROR),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrorCodes.PROTOCOL_ERROR),   # HTTP/1.1 after the preface
    (SETTINGS_ACK, ErrorCodes.PROTOCOL_ERROR),                          # an ACK is not the SETTINGS
    (SETTINGS_ON_A_STREAM, ErrorCodes.PROTOCOL_ERROR),
    (SETTINGS_CUT, ErrorCodes.FRAME_SIZE_ERROR),
])
def test_a_preface_not_followed_by_valid_settings_gets_goaway(serve, after, error_code):
    server = serve(APP)
    goaway = goaway_of(read_until_closed(server.port, PREFACE + after))
    assert goaway is not None and goaway.error_code == error_code
    still_serving(server)


def test_a_settings_ack_with_a_payload_is_a_frame_size_error(serve):
    server = serve(APP)
    ack = b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x64"
    goaway = goaway_of(read_until_closed(server.port, PREFACE + SettingsFrame(0).serialize() + ack))
    assert goaway is not None and goaway.error_code == ErrorCodes.FRAME_SIZE_ERROR
