"""`FrameHeaderCheck` finds the same frame boundaries and rule breaks however the input is cut
into reads: in one piece, at every point in two, and a byte at a time."""
import h2.exceptions
import pytest
from hyperframe.frame import DataFrame, HeadersFrame, PingFrame, SettingsFrame

from skitai_http2.framing import PREFACE, FrameHeaderCheck, FrameSizeError

MAX = 16384
GOOD = (PREFACE + SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1000}).serialize()
        + HeadersFrame(1, data=b"h" * 30).serialize() + DataFrame(1, data=b"d" * 300).serialize()
        + SettingsFrame(0, flags=("ACK",)).serialize() + DataFrame(1, data=b"").serialize()
        + PingFrame(0, opaque_data=b"12345678").serialize())


def header(length: int, kind: int, flags: int = 0, stream_id: int = 1) -> bytes:
    return length.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")


def cuts(stream: bytes):
    yield [stream]
    for point in range(1, len(stream)):
        yield [stream[:point], stream[point:]]
    yield [stream[i:i + 1] for i in range(len(stream))]


def fed_until_error(pieces) -> tuple[int, type | None]:
    """How many bytes were fed before the check raised (all of them when it did not), and what."""
    check, fed = FrameHeaderCheck(MAX), 0
    for piece in pieces:
        try:
            check.feed(piece)
        except h2.exceptions.ProtocolError as error:
            return fed + len(piece), type(error)
        fed += len(piece)
    return fed, None


def test_well_formed_input_passes_however_it_is_cut():
    for pieces in cuts(GOOD):
        assert fed_until_error(pieces) == (len(GOOD), None)


@pytest.mark.parametrize("bad, error", [
    (header(MAX + 1, 0x0), FrameSizeError),                     # longer than SETTINGS_MAX_FRAME_SIZE
    (header(4, 0x4, flags=0x1, stream_id=0), FrameSizeError),   # SETTINGS ACK with a payload
])
def test_a_bad_frame_header_is_refused_once_its_nine_bytes_are_in(bad, error):
    """Its payload need not arrive (a header announcing 16 MiB must not make us buffer them)."""
    stream = GOOD + bad
    for pieces in cuts(stream):
        fed, raised = fed_until_error(pieces)
        assert raised is error
        assert fed >= len(stream)   # not before the header was complete


def test_the_preface_must_end_with_settings():
    stream = PREFACE + PingFrame(0, opaque_data=b"12345678").serialize()
    for pieces in cuts(stream):
        fed, raised = fed_until_error(pieces)
        assert raised is h2.exceptions.ProtocolError and fed >= len(PREFACE) + 9
