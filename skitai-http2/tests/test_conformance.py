"""HTTP/2 conformance table: the ground h2spec covers, over real sockets with exact frames.

h2spec (github.com/summerwind/h2spec) cannot be installed here, so its three groups are
rebuilt as tables, written from the RFCs and h2spec's list of cases:

* "generic": RFC 9113 basics a server must accept (every frame type, padding, priority,
  CONTINUATION, GET/HEAD/POST/trailers, every HPACK representation);
* "http2": section by section (RFC 7540 numbering, as h2spec uses): the preface, frame
  format and size, header compression, stream states, identifiers and concurrency, priority,
  connection errors, extensions, each frame type's rules, flow control, HTTP semantics
  (malformed requests, pseudo-header and connection-specific fields, TE, content-length)
  and push;
* "hpack": RFC 7541 decoding errors (indexes, Huffman padding and EOS, table size updates);
* "rfc8441" (extra, not in h2spec): extended CONNECT, how a WebSocket opens over HTTP/2.

A case id is group/section/what. Cases h2spec does not have are marked "(extra)" in the
comments: field value rules of RFC 9113 8.2.1, trailers with END_STREAM, boundary values.

Outcome kinds, one test each: a connection error (GOAWAY with the code, then close), a stream
error (RST_STREAM with the code and the connection lives on; GOAWAY with the same code is
accepted where RFC 9113 5.4 lets a server escalate), frames accepted (PING still answered, no
error), a complete response, a DATA frame of a flow-controlled length, the connection closed.
"""
import hashlib
import ssl

import pytest
from apps import echo, hello, route
from h2.errors import ErrorCodes
from h2conformance import (
    ACK,
    DATA,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    HEADER_TABLE_SIZE,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    Peer,
    accepted,
    closes,
    connection_error,
    data_frame,
    frame,
    huffman,
    integer,
    literal,
    plain_block,
    response,
    size_update,
    stream_error,
    string,
)

from skitai.testing import make_certificates

PROTOCOL_ERROR = ErrorCodes.PROTOCOL_ERROR
FLOW_CONTROL_ERROR = ErrorCodes.FLOW_CONTROL_ERROR
STREAM_CLOSED = ErrorCodes.STREAM_CLOSED
FRAME_SIZE_ERROR = ErrorCodes.FRAME_SIZE_ERROR
REFUSED_STREAM = ErrorCodes.REFUSED_STREAM
COMPRESSION_ERROR = ErrorCodes.COMPRESSION_ERROR
MAX_WINDOW = 2**31 - 1
ENABLE_CONNECT_PROTOCOL = 0x8


def extended_connect(protocol="websocket", method="CONNECT", drop=()):
    """An RFC 8441 request's fields (`drop` leaves out pseudo-headers)."""
    fields = [(":method", method), (":protocol", protocol), (":scheme", "http"), (":path", "/"),
              (":authority", "example.com"), ("sec-websocket-version", "13")]
    return [(name, value) for name, value in fields if name not in drop]


def announces_extended_connect(p):
    if p.server_settings.get(ENABLE_CONNECT_PROTOCOL) != 1:
        p.fail(f"SETTINGS_ENABLE_CONNECT_PROTOCOL is not 1 in {p.server_settings}")


def fields(environ, start_response):
    """The request's header fields as the app sees them, one "name: value" line each."""
    lines = sorted(f"{key[5:].lower().replace('_', '-')}: {value}"
                   for key, value in environ.items() if key.startswith("HTTP_"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]


APP = route({"/": hello, "/echo": echo, "/fields": fields})


def echoed(body: bytes) -> bytes:
    """What /echo answers for `body`."""
    return f"{len(body)} {hashlib.sha256(body).hexdigest()} HTTP/2.0".encode()


def has_line(line: str):
    return lambda body: line.encode() in body.split(b"\n")


class Case:
    def __init__(self, steps, expect, settings=(), handshake=True, tls=False):
        self.steps, self.expect = steps, expect
        self.settings, self.handshake, self.tls = settings, handshake, tls


def case(id, steps, *expect, marks=(), settings=(), handshake=True, tls=False, **options):
    return pytest.param(Case(steps, (expect, options), settings, handshake, tls), id=id, marks=marks)


def run(serve, tmp_path, case: Case, outcome) -> None:
    if case.tls:
        certs = make_certificates(str(tmp_path))
        server = serve(APP, ssl_certfile=certs.cert, ssl_keyfile=certs.key)
        context = ssl.create_default_context(cafile=certs.ca)
        context.set_alpn_protocols(["h2"])
    else:
        server, context = serve(APP), None
    with Peer(server.port, context) as peer:
        if case.handshake:
            peer.handshake(case.settings)
        case.steps(peer)
        args, options = case.expect
        outcome(peer, *args, **options)


# steps that take more than sending
def post(p, stream=1, path="/echo", extra=(), **options):
    return p.request(stream, "POST", path, extra, end_stream=False, **options)


def request_then_frames(*frames_after):
    """A GET on stream 1, its whole response, then `frames_after(p)`."""
    def steps(p):
        p.send(p.request(1))
        p.finish(1)
        p.send(*(make(p) for make in frames_after))
    return steps


def too_many_streams(p):
    limit = p.server_settings[MAX_CONCURRENT_STREAMS]
    block = p.block(p.common())  # the same fields each time: all indexed after the first
    p.send(*(p.headers(2 * n + 1, block) for n in range(limit + 1)))


def window_change_after_headers(p):
    p.send(p.request(1))
    p.wait_for(lambda f: f.kind == HEADERS and f.stream == 1, "the response HEADERS")
    p.apply_settings((INITIAL_WINDOW_SIZE, 1))


def negative_window(p):
    p.send(p.request(1))
    p.wait_for(lambda f: f.kind == DATA and f.stream == 1, "the first 3 octets")
    p.apply_settings((INITIAL_WINDOW_SIZE, 2))  # 3 sent, window now -1
    p.send(p.window_update(1, 2))               # ... and now 1


def window_setting_overflows_stream(p):
    p.send(p.request(1, end_stream=False), p.window_update(1, MAX_WINDOW - 65535),
           p.settings((INITIAL_WINDOW_SIZE, 65536)))


def dynamic_table_across_blocks(p):
    common = p.common(path="/fields")
    p.send(p.headers(1, plain_block(common) + literal(b"x-test", b"indexed", "incremental")))
    p.finish(1)
    p.send(p.headers(3, plain_block(common) + integer(62, 7, 0x80)))  # the entry just added


def evicted_entry(p):
    common = p.common()
    p.send(p.headers(1, plain_block(common) + literal(b"x-test", b"indexed", "incremental")))
    p.finish(1)
    p.send(p.headers(3, size_update(0) + plain_block(common) + integer(62, 7, 0x80)))


def settings_acked(p):
    p.apply_settings((ENABLE_PUSH, 0))


def ping_with_undefined_flags(p):
    p.send(p.ping(b"flags\0\0\0", flags=0xFE))
    p.wait_for(lambda f: f.kind == PING and f.flags & ACK and f.payload == b"flags\0\0\0", "its PING ACK")


def ping_with_reserved_bit(p):
    p.send(frame(PING, 0, 0x80000000, b"reserved"))
    p.wait_for(lambda f: f.kind == PING and f.flags & ACK and f.payload == b"reserved", "its PING ACK")


def header_table_size_0(p):
    """After SETTINGS_HEADER_TABLE_SIZE 0 is acknowledged, the server's next header block must
    begin with a dynamic table size update to 0 (RFC 7541 4.2), and then it can only use the
    static table: our decoder is held to that."""
    p.send(p.request(1))
    first = p.wait_for(lambda f: f.kind == HEADERS and f.stream == 1, "the response HEADERS")
    if first.payload[:1] != size_update(0):
        p.fail(f"the header block after SETTINGS_HEADER_TABLE_SIZE 0 begins {first.payload[:4]!r}, "
               "not with a table size update to 0")
    p.decoder.max_allowed_table_size = 0
    p.finish(1)
    p.send(p.request(3))
    p.finish(3)


def hpack_accepted(id, representation, line, prefix=b""):
    """A GET /fields whose header block ends with `representation` (after `prefix`)."""
    return case(id, lambda p: p.send(p.headers(1, prefix + plain_block(p.common(path="/fields")) + representation)),
                body=has_line(line))


def common_block(p):
    return plain_block(p.common())


def x_test(huffman_value: bytes) -> bytes:
    """x-test with a (broken) Huffman-coded value: a literal without indexing, new name."""
    return integer(0, 4) + string(b"x-test") + integer(len(huffman_value), 7, 0x80) + huffman_value


def decoding_error(id, block, marks=()):
    """A GET whose header block (`block(p)`) does not decode: COMPRESSION_ERROR (RFC 9113 4.3)."""
    return case(id, lambda p: p.send(p.headers(1, block(p))), [COMPRESSION_ERROR], marks=marks)


UNKNOWN = 0xFA  # a frame type no extension uses

CONNECTION_ERRORS = [
    # http2/3.5: connection preface
    case("http2/3.5/invalid-preface-tls", lambda p: p.send(b"INVALID CONNECTION PREFACE\r\n\r\n"),
         [PROTOCOL_ERROR], handshake=False, tls=True, close_ok=True),
    case("http2/3.5/preface-not-followed-by-settings", lambda p: p.send(PREFACE, p.ping()),  # (extra)
         [PROTOCOL_ERROR], handshake=False),
    # http2/4.2: frame size
    case("http2/4.2/headers-over-max-frame-size", lambda p: p.send(p.request(
        1, extra=[(f"x-dummy{n}", "x" * 4000) for n in range(5)])), [FRAME_SIZE_ERROR]),
    # http2/4.3: header compression and decompression
    case("http2/4.3/invalid-header-block", lambda p: p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\x40")),
         [COMPRESSION_ERROR]),
    case("http2/4.3/priority-inside-header-block", lambda p: p.send(
        p.request(1, end_headers=False), p.priority(1), p.continuation(1, p.block([("x-dummy", "x")]))),
         [PROTOCOL_ERROR]),
    case("http2/4.3/headers-of-another-stream-inside-header-block", lambda p: p.send(
        p.request(1, end_headers=False), p.request(3), p.continuation(1, p.block([("x-dummy", "x")]))),
         [PROTOCOL_ERROR]),
    # http2/5.1: stream states
    case("http2/5.1/idle/data", lambda p: p.send(p.data(1, b"test", True)), [PROTOCOL_ERROR]),
    case("http2/5.1/idle/rst-stream", lambda p: p.send(p.rst(1)), [PROTOCOL_ERROR]),
    case("http2/5.1/idle/window-update", lambda p: p.send(p.window_update(1, 100)), [PROTOCOL_ERROR]),
    case("http2/5.1/idle/continuation", lambda p: p.send(p.continuation(1, p.block(p.common()))),
         [PROTOCOL_ERROR]),
    # http2/5.1.1: stream identifiers
    case("http2/5.1.1/even-stream-id", lambda p: p.send(p.request(2)), [PROTOCOL_ERROR]),
    case("http2/5.1.1/stream-id-smaller-than-previous", lambda p: p.send(p.request(5), p.request(3)),
         [PROTOCOL_ERROR]),
    # http2/5.4.1: connection error handling: GOAWAY, then close (both checked)
    case("http2/5.4.1/goaway-then-close", lambda p: p.send(frame(PING, 0, 3, bytes(8))), [PROTOCOL_ERROR]),
    # http2/5.5: extending HTTP/2
    case("http2/5.5/unknown-frame-inside-header-block", lambda p: p.send(
        p.request(1, end_headers=False), frame(UNKNOWN, 0, 0, bytes(8))), [PROTOCOL_ERROR]),
    # http2/6.1: DATA
    case("http2/6.1/stream-0", lambda p: p.send(p.data(0, b"test", True)), [PROTOCOL_ERROR]),
    case("http2/6.1/pad-length-over-payload", lambda p: p.send(
        post(p, extra=[("content-length", "4")]), frame(DATA, END_STREAM | PADDED, 1, b"\x06test")),
         [PROTOCOL_ERROR]),
    case("http2/6.1/pad-length-equal-to-payload", lambda p: p.send(  # (extra) the boundary
        post(p, extra=[("content-length", "4")]), frame(DATA, END_STREAM | PADDED, 1, b"\x05test")),
         [PROTOCOL_ERROR]),
    # http2/6.2: HEADERS
    case("http2/6.2/no-end-headers-then-priority", lambda p: p.send(
        p.request(1, end_stream=False, end_headers=False), p.priority(1),
        p.continuation(1, p.block([("x-dummy", "x")]))), [PROTOCOL_ERROR]),
    case("http2/6.2/no-end-headers-then-headers-of-another-stream", lambda p: p.send(
        p.request(1, end_stream=False, end_headers=False), p.request(3),
        p.continuation(1, p.block([("x-dummy", "x")]))), [PROTOCOL_ERROR]),
    case("http2/6.2/stream-0", lambda p: p.send(p.request(0)), [PROTOCOL_ERROR]),
    # http2/6.3: PRIORITY
    case("http2/6.3/stream-0", lambda p: p.send(p.priority(0)), [PROTOCOL_ERROR]),
    # http2/6.4: RST_STREAM
    case("http2/6.4/stream-0", lambda p: p.send(p.rst(0)), [PROTOCOL_ERROR]),
    case("http2/6.4/idle-stream", lambda p: p.send(p.rst(1)), [PROTOCOL_ERROR]),
    case("http2/6.4/length-3", lambda p: p.send(p.request(1), frame(RST_STREAM, 0, 1, bytes(3))),
         [FRAME_SIZE_ERROR]),
    # http2/6.5: SETTINGS
    case("http2/6.5/ack-with-payload", lambda p: p.send(frame(SETTINGS, ACK, 0, b"\0")), [FRAME_SIZE_ERROR]),
    case("http2/6.5/stream-1", lambda p: p.send(frame(SETTINGS, 0, 1, bytes(6))), [PROTOCOL_ERROR]),
    case("http2/6.5/length-not-multiple-of-6", lambda p: p.send(frame(SETTINGS, 0, 0, bytes(8))),
         [FRAME_SIZE_ERROR]),
    # http2/6.5.2: defined SETTINGS parameters
    case("http2/6.5.2/enable-push-2", lambda p: p.send(p.settings((ENABLE_PUSH, 2))), [PROTOCOL_ERROR]),
    case("http2/6.5.2/initial-window-size-over-max",
         lambda p: p.send(p.settings((INITIAL_WINDOW_SIZE, MAX_WINDOW + 1))), [FLOW_CONTROL_ERROR]),
    case("http2/6.5.2/max-frame-size-below-initial",
         lambda p: p.send(p.settings((MAX_FRAME_SIZE, 2**14 - 1))), [PROTOCOL_ERROR]),
    case("http2/6.5.2/max-frame-size-over-max",
         lambda p: p.send(p.settings((MAX_FRAME_SIZE, 2**24))), [PROTOCOL_ERROR]),
    # http2/6.7: PING
    case("http2/6.7/stream-1", lambda p: p.send(frame(PING, 0, 1, bytes(8))), [PROTOCOL_ERROR]),
    case("http2/6.7/length-6", lambda p: p.send(frame(PING, 0, 0, bytes(6))), [FRAME_SIZE_ERROR]),
    # http2/6.8: GOAWAY
    case("http2/6.8/stream-1", lambda p: p.send(frame(7, 0, 1, bytes(8))), [PROTOCOL_ERROR]),
    # http2/6.9: WINDOW_UPDATE
    case("http2/6.9/increment-0-connection", lambda p: p.send(p.window_update(0, 0)), [PROTOCOL_ERROR]),
    case("http2/6.9/length-3", lambda p: p.send(frame(WINDOW_UPDATE, 0, 0, bytes(3))), [FRAME_SIZE_ERROR]),
    # http2/6.9.1: the flow-control window
    case("http2/6.9.1/connection-window-over-max",
         lambda p: p.send(p.window_update(0, MAX_WINDOW), p.window_update(0, MAX_WINDOW)), [FLOW_CONTROL_ERROR]),
    # http2/6.9.2: initial flow-control window size
    case("http2/6.9.2/initial-window-size-over-max",
         lambda p: p.send(frame(SETTINGS, 0, 0, b"\0\x04\x80\0\0\0")), [FLOW_CONTROL_ERROR]),
    case("http2/6.9.2/setting-overflows-open-stream-window", window_setting_overflows_stream,  # (extra)
         [FLOW_CONTROL_ERROR]),
    # http2/6.10: CONTINUATION
    case("http2/6.10/continuation-then-data", lambda p: p.send(
        post(p, end_headers=False), p.continuation(1, p.block([("x-dummy", "x")]), end_headers=False),
        p.data(1, b"test", True)), [PROTOCOL_ERROR]),
    case("http2/6.10/stream-0", lambda p: p.send(
        p.request(1, end_headers=False), p.continuation(0, p.block([("x-dummy", "x")]))), [PROTOCOL_ERROR]),
    case("http2/6.10/after-headers-with-end-headers", lambda p: p.send(
        p.request(1), p.continuation(1, p.block([("x-dummy", "x")]))), [PROTOCOL_ERROR]),
    case("http2/6.10/after-continuation-with-end-headers", lambda p: p.send(
        p.request(1, end_headers=False), p.continuation(1, p.block([("x-dummy", "x")])),
        p.continuation(1, p.block([("x-dummy", "y")]))), [PROTOCOL_ERROR]),
    case("http2/6.10/after-data", lambda p: p.send(
        post(p), p.data(1, b"test", True), p.continuation(1, p.block([("x-dummy", "x")]), end_headers=False)),
         [PROTOCOL_ERROR]),
    case("http2/6.10/on-another-stream", lambda p: p.send(  # (extra)
        p.request(1, end_headers=False), p.continuation(3, p.block([("x-dummy", "x")]))), [PROTOCOL_ERROR]),
    # http2/8.2: server push
    case("http2/8.2/push-promise-from-client", lambda p: p.send(
        p.request(1, end_stream=False), p.push_promise(1, 2, p.common())), [PROTOCOL_ERROR]),
    # hpack (RFC 7541): every decoding error is a connection error COMPRESSION_ERROR
    decoding_error("hpack/2.3.3/index-beyond-both-tables", lambda p: common_block(p) + integer(200, 7, 0x80)),
    decoding_error("hpack/4.2/size-update-at-end-of-block", lambda p: common_block(p) + size_update(1)),
    case("hpack/4.3/evicted-entry-referenced", evicted_entry, [COMPRESSION_ERROR]),  # (extra)
    decoding_error("hpack/5.1/integer-overflow",  # (extra) an index of 2^70 and more
                   lambda p: common_block(p) + b"\xff" * 11 + b"\x01"),
    decoding_error("hpack/5.2/huffman-padding-over-7-bits",
                   lambda p: common_block(p) + x_test(huffman(b"test", "long"))),
    decoding_error("hpack/5.2/huffman-padding-not-eos", lambda p: common_block(p) + x_test(huffman(b"test", "zeros"))),
    decoding_error("hpack/5.2/huffman-with-eos-symbol", lambda p: common_block(p) + x_test(huffman(b"test", eos_at=2))),
    decoding_error("hpack/5.2/string-longer-than-block",  # (extra) 143 octets announced, 3 sent
                   lambda p: common_block(p) + b"\x00\x06x-test" + integer(143, 7) + b"abc"),
    decoding_error("hpack/6.1/index-0", lambda p: common_block(p) + integer(0, 7, 0x80)),
    decoding_error("hpack/6.3/size-update-over-settings",
                   lambda p: size_update(p.server_settings.get(HEADER_TABLE_SIZE, 4096) + 1) + common_block(p)),
]


def malformed(id, steps, stream=1, marks=()):
    """A malformed request (RFC 9113 8.1.1): stream error PROTOCOL_ERROR."""
    return case(id, steps, stream, [PROTOCOL_ERROR], marks=marks)


def malformed_fields(id, extra=(), fields=None, marks=()):
    return malformed(id, lambda p: p.send(p.request(1, extra=extra, fields=fields)), marks=marks)


STREAM_ERRORS = [
    # rfc8441/4: :protocol only on CONNECT, which then needs :scheme and :path
    malformed_fields("rfc8441/4/protocol-on-get", fields=extended_connect(method="GET")),
    malformed_fields("rfc8441/4/extended-connect-without-path", fields=extended_connect(drop=(":path",))),
    malformed_fields("rfc8441/4/extended-connect-without-scheme", fields=extended_connect(drop=(":scheme",))),
    malformed_fields("rfc8441/4/empty-protocol", fields=extended_connect(protocol="")),
    # http2/8.5: a plain CONNECT has :authority alone (one that does is a tunnel request)
    malformed_fields("http2/8.5/connect-with-scheme-and-path", fields=extended_connect(drop=(":protocol",))),
    malformed_fields("http2/8.5/connect-without-authority",
                     fields=extended_connect(drop=(":protocol", ":scheme", ":path", ":authority"))),
    # http2/4.2
    case("http2/4.2/data-over-max-frame-size", lambda p: p.send(post(p), p.data(1, b"x" * (2**14 + 1), True)),
         1, [FRAME_SIZE_ERROR]),
    # http2/5.1: half-closed (remote), held open by a zero window for the response
    case("http2/5.1/half-closed-remote/data", lambda p: p.send(p.request(1), p.data(1, b"test", True)),
         1, [STREAM_CLOSED], settings=[(INITIAL_WINDOW_SIZE, 0)]),
    case("http2/5.1/half-closed-remote/headers", lambda p: p.send(p.request(1), p.request(1)),
         1, [STREAM_CLOSED], settings=[(INITIAL_WINDOW_SIZE, 0)]),
    case("http2/5.1/half-closed-remote/continuation", lambda p: p.send(
        p.request(1), p.continuation(1, p.block([("x-dummy", "x")]))),
         1, [STREAM_CLOSED, PROTOCOL_ERROR], settings=[(INITIAL_WINDOW_SIZE, 0)]),
    # http2/5.1: closed by the client's RST_STREAM
    case("http2/5.1/closed/data-after-rst-stream", lambda p: p.send(
        p.request(1, end_stream=False), p.rst(1), p.data(1, b"test", True)), 1, [STREAM_CLOSED]),
    case("http2/5.1/closed/headers-after-rst-stream", lambda p: p.send(
        p.request(1, end_stream=False), p.rst(1), p.request(1)), 1, [STREAM_CLOSED]),
    case("http2/5.1/closed/continuation-after-rst-stream", lambda p: p.send(
        p.request(1, end_stream=False), p.rst(1), p.continuation(1, p.block([("x-dummy", "x")]))),
         1, [STREAM_CLOSED, PROTOCOL_ERROR]),
    # http2/5.1: closed by END_STREAM both ways. RFC 7540 (and h2spec) wanted a connection error;
    # RFC 9113 5.1 makes that a MAY and 6.1 requires a stream error for DATA: either passes
    case("http2/5.1/closed/data-after-end-stream", request_then_frames(lambda p: p.data(1, b"test", True)),
         1, [STREAM_CLOSED]),
    case("http2/5.1/closed/headers-after-end-stream", request_then_frames(lambda p: p.request(1)),
         1, [STREAM_CLOSED]),
    case("http2/5.1/closed/continuation-after-end-stream",
         request_then_frames(lambda p: p.continuation(1, p.block([("x-dummy", "x")]))),
         1, [STREAM_CLOSED, PROTOCOL_ERROR]),
    # http2/5.1.1
    case("http2/5.1.1/headers-on-half-closed-remote-stream", lambda p: p.send(p.request(5), p.request(5)),
         5, [STREAM_CLOSED], settings=[(INITIAL_WINDOW_SIZE, 0)]),
    # http2/5.1.2: stream concurrency, with a zero window so that no stream can end
    case("http2/5.1.2/over-max-concurrent-streams", too_many_streams, None, [PROTOCOL_ERROR, REFUSED_STREAM],
         settings=[(INITIAL_WINDOW_SIZE, 0)]),
    # http2/5.3.1: stream dependencies
    case("http2/5.3.1/headers-depends-on-itself", lambda p: p.send(p.request(1, priority=(1, 255, False))),
         1, [PROTOCOL_ERROR]),
    case("http2/5.3.1/priority-depends-on-itself", lambda p: p.send(p.priority(1, depends_on=1)),
         1, [PROTOCOL_ERROR]),
    # http2/6.1
    case("http2/6.1/data-on-half-closed-remote-stream", lambda p: p.send(
        p.request(1, "POST", "/echo"), p.data(1, b"test", True)), 1, [STREAM_CLOSED],
         settings=[(INITIAL_WINDOW_SIZE, 0)]),
    # http2/6.2
    case("http2/6.2/pad-length-over-payload", lambda p: p.send(
        (lambda block: frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, bytes((len(block) + 2,)) + block))(
            p.block(p.common()))), 1, [PROTOCOL_ERROR]),
    # http2/6.3
    case("http2/6.3/length-4", lambda p: p.send(p.request(1), frame(PRIORITY, 0, 1, b"\x80\0\0\x01")),
         1, [FRAME_SIZE_ERROR]),
    # http2/6.9
    case("http2/6.9/increment-0-stream", lambda p: p.send(p.request(1, end_stream=False), p.window_update(1, 0)),
         1, [PROTOCOL_ERROR]),
    # http2/6.9.1: RFC 9113 6.9.1 names RST_STREAM for a stream's window
    case("http2/6.9.1/stream-window-over-max", lambda p: p.send(
        p.request(1, end_stream=False), p.window_update(1, MAX_WINDOW), p.window_update(1, MAX_WINDOW)),
         1, [FLOW_CONTROL_ERROR], escalate=False),
    # http2/8.1: HTTP request/response exchange
    case("http2/8.1/trailers-without-end-stream", lambda p: p.send(
        post(p), p.data(1, b"test"), p.headers(1, p.block([("x-test", "ok")]), end_stream=False)),
         1, [PROTOCOL_ERROR]),
    # http2/8.1.2: HTTP header fields
    malformed_fields("http2/8.1.2/uppercase-field-name", [("X-TEST", "ok")]),
    malformed_fields("http2/8.1.2/field-name-with-space", [("x test", "ok")]),           # (extra)
    malformed_fields("http2/8.1.2/field-name-with-colon", [("x:test", "ok")]),           # (extra)
    malformed_fields("http2/8.1.2/field-value-with-nul", [("x-test", "o\0k")]),          # (extra)
    malformed_fields("http2/8.1.2/field-value-with-cr", [("x-test", "o\rk")]),           # (extra)
    malformed_fields("http2/8.1.2/field-value-with-lf", [("x-test", "o\nk")]),           # (extra)
    malformed_fields("http2/8.1.2/field-value-leading-space", [("x-test", " ok")]),      # (extra)
    malformed_fields("http2/8.1.2/field-value-trailing-tab", [("x-test", "ok\t")]),      # (extra)
    # http2/8.1.2.1: pseudo-header fields
    malformed_fields("http2/8.1.2.1/unknown-pseudo-header", [(":test", "ok")]),
    malformed_fields("http2/8.1.2.1/response-pseudo-header", [(":status", "200")]),
    malformed("http2/8.1.2.1/pseudo-header-in-trailers", lambda p: p.send(
        post(p), p.data(1, b"test"), p.headers(1, p.block([(":method", "POST")]), end_stream=False))),
    malformed("http2/8.1.2.1/pseudo-header-in-trailers-with-end-stream", lambda p: p.send(  # (extra)
        post(p), p.data(1, b"test"), p.headers(1, p.block([(":method", "POST")])))),
    malformed("http2/8.1.2.1/pseudo-header-after-regular-field", lambda p: p.send(
        p.request(1, fields=[("x-test", "ok"), *p.common()]))),
    # http2/8.1.2.2: connection-specific header fields
    malformed_fields("http2/8.1.2.2/connection", [("connection", "keep-alive")]),
    malformed_fields("http2/8.1.2.2/keep-alive", [("keep-alive", "timeout=5")]),         # (extra)
    malformed_fields("http2/8.1.2.2/proxy-connection", [("proxy-connection", "close")]),  # (extra)
    malformed_fields("http2/8.1.2.2/transfer-encoding", [("transfer-encoding", "chunked")]),  # (extra)
    malformed_fields("http2/8.1.2.2/upgrade", [("upgrade", "websocket")]),               # (extra)
    malformed_fields("http2/8.1.2.2/te-other-than-trailers", [("trailers", "test"), ("te", "trailers, deflate")]),
    malformed("http2/8.1.2.2/connection-in-trailers", lambda p: p.send(  # (extra)
        post(p), p.data(1, b"test"), p.headers(1, p.block([("connection", "close")])))),
    # RFC 9110 6.5.1: framing, routing, authentication and content fields in trailers  (extra)
    *(malformed(f"http2/8.1/{name}-in-trailers", lambda p, name=name, value=value: p.send(
        post(p), p.data(1, b"test"), p.headers(1, p.block([(name, value)]))))
      for name, value in [("content-length", "4"), ("host", "example"), ("authorization", "Basic eDp5"),
                          ("content-type", "text/plain"), ("transfer-encoding", "chunked"),
                          ("cookie", "a=b"), ("te", "trailers")]),
    # http2/8.1.2.3: request pseudo-header fields
    malformed("http2/8.1.2.3/empty-path", lambda p: p.send(p.request(
        1, fields=[(n, "" if n == ":path" else v) for n, v in p.common()]))),
    malformed("http2/8.1.2.3/no-method", lambda p: p.send(p.request(1, fields=p.common()[1:]))),
    malformed("http2/8.1.2.3/no-scheme", lambda p: p.send(p.request(
        1, fields=[f for f in p.common() if f[0] != ":scheme"]))),
    malformed("http2/8.1.2.3/no-path", lambda p: p.send(p.request(
        1, fields=[f for f in p.common() if f[0] != ":path"]))),
    malformed("http2/8.1.2.3/duplicate-method", lambda p: p.send(p.request(1, extra=[(":method", "GET")]))),
    malformed("http2/8.1.2.3/duplicate-scheme", lambda p: p.send(p.request(1, extra=[(":scheme", "http")]))),
    malformed("http2/8.1.2.3/duplicate-path", lambda p: p.send(p.request(1, extra=[(":path", "/")]))),
    malformed_fields("http2/8.1.2.3/host-differs-from-authority", [("host", "example.com")]),  # (extra)
    # http2/8.1.2.6: malformed requests (content-length against the DATA received)
    malformed("http2/8.1.2.6/content-length-over-data", lambda p: p.send(
        post(p, extra=[("content-length", "1")]), p.data(1, b"test", True))),
    malformed("http2/8.1.2.6/content-length-over-several-data", lambda p: p.send(
        post(p, extra=[("content-length", "1")]), p.data(1, b"test"), p.data(1, b"test", True))),
    malformed("http2/8.1.2.6/content-length-under-data", lambda p: p.send(  # (extra)
        post(p, extra=[("content-length", "8")]), p.data(1, b"test", True))),
]


ACCEPTED = [
    # rfc8441/3: the server says it takes extended CONNECT
    case("rfc8441/3/settings-enable-connect-protocol", announces_extended_connect),
    # generic/1, generic/3.7 and http2/3.5, http2/6.7: the handshake checks the server's first
    # frame is SETTINGS, and `accepted` that PING is answered with the same payload
    case("generic/1/preface", lambda p: None),
    case("http2/3.5/preface", lambda p: None),
    case("generic/3.7/ping", lambda p: None),
    case("http2/6.7/ping-answered-with-same-payload", lambda p: None),
    # generic/2: streams and multiplexing
    case("generic/2/priority-on-idle-stream", lambda p: p.send(p.priority(1, weight=255))),
    case("generic/2/rst-stream-on-half-closed-remote-stream", lambda p: p.send(p.request(1), p.rst(1))),
    case("generic/2/priority-on-closed-stream", request_then_frames(lambda p: p.priority(1, weight=255))),
    # generic/3.4, 3.5, 3.9
    case("generic/3.4/rst-stream", lambda p: p.send(p.request(1, end_stream=False), p.rst(1))),
    case("generic/3.5/settings", lambda p: p.apply_settings(
        (HEADER_TABLE_SIZE, 4096), (ENABLE_PUSH, 1), (MAX_CONCURRENT_STREAMS, 100), (INITIAL_WINDOW_SIZE, 65535),
        (MAX_FRAME_SIZE, 16384), (MAX_HEADER_LIST_SIZE, 100))),
    case("generic/3.9/window-update-connection", lambda p: p.send(p.window_update(0, 1))),
    # http2/4.1: frame format
    case("http2/4.1/unknown-frame-type", lambda p: p.send(frame(UNKNOWN, 0, 0, bytes(8)))),
    case("http2/4.1/undefined-flags", ping_with_undefined_flags),
    case("http2/4.1/reserved-bit", ping_with_reserved_bit),
    # http2/5.5
    case("http2/5.5/unknown-extension-frame", lambda p: p.send(frame(UNKNOWN, 0xFF, 0, b"extension"))),
    case("http2/5.5/unknown-frame-on-idle-stream", lambda p: p.send(frame(UNKNOWN, 0, 7, b"x"))),  # (extra)
    # http2/6.5.2, 6.5.3
    case("http2/6.5.2/unknown-setting", lambda p: p.send(p.settings((0xFF, 1)))),
    case("http2/6.5.3/settings-acknowledged", settings_acked),
    case("hpack/4.2/server-encoder-follows-header-table-size-0", header_table_size_0,  # (extra)
         settings=[(HEADER_TABLE_SIZE, 0)]),
    # http2/6.7: a PING with ACK is not answered (`accepted` fails on a PING ACK it did not ask for)
    case("http2/6.7/ping-with-ack-not-answered", lambda p: p.send(p.ping(b"invalid!", ack=True))),
    # http2/7: error codes
    case("http2/7/rst-stream-unknown-error-code", lambda p: p.send(post(p), p.rst(1, 0xFF))),
]


RESPONSES = [
    # rfc8441/5: a route that is no WebSocket view answers the extended CONNECT as a request
    case("rfc8441/5/extended-connect-to-a-plain-route", lambda p: p.send(
        p.request(1, fields=extended_connect(), end_stream=False)), body=lambda body: body.startswith(b"HTTP/2.0")),
    # generic/3.1: DATA
    case("generic/3.1/data", lambda p: p.send(post(p), p.data(1, b"test", True)), body=echoed(b"test")),
    case("generic/3.1/several-data", lambda p: p.send(post(p), p.data(1, b"test"), p.data(1, b"test", True)),
         body=echoed(b"testtest")),
    case("generic/3.1/data-with-padding", lambda p: p.send(post(p), p.data(1, b"test", True, pad=6)),
         body=echoed(b"test")),
    case("http2/6.1/data-of-padding-only", lambda p: p.send(  # (extra) pad length = payload length - 1
        post(p), frame(DATA, END_STREAM | PADDED, 1, b"\x04" + bytes(4))), body=echoed(b"")),
    # generic/3.2: HEADERS
    case("generic/3.2/headers", lambda p: p.send(p.request(1))),
    case("generic/3.2/headers-with-padding", lambda p: p.send(p.request(1, pad=8))),
    case("generic/3.2/headers-with-priority", lambda p: p.send(p.request(1, priority=(0, 255, False)))),
    case("generic/3.2/headers-with-padding-and-priority",  # (extra)
         lambda p: p.send(p.request(1, pad=3, priority=(0, 255, False)))),
    # generic/3.3: PRIORITY
    case("generic/3.3/priority-weight-1", lambda p: p.send(p.priority(1, weight=0), p.request(1))),
    case("generic/3.3/priority-weight-256", lambda p: p.send(p.priority(1, weight=255), p.request(1))),
    case("generic/3.3/priority-with-dependency", lambda p: p.send(p.priority(3, depends_on=1), p.request(1))),
    case("generic/3.3/priority-exclusive", lambda p: p.send(p.priority(1, exclusive=True), p.request(1))),
    case("generic/3.3/priority-on-idle-then-lower-stream", lambda p: p.send(p.priority(3), p.request(1))),
    case("http2/6.3/priority-on-idle-then-lower-stream", lambda p: p.send(p.priority(3), p.request(1))),
    # generic/3.9
    case("generic/3.9/window-update-stream", lambda p: p.send(p.request(1), p.window_update(1, 1))),
    # generic/3.10, http2/6.10: CONTINUATION
    case("generic/3.10/continuation", lambda p: p.send(
        *(lambda block: (p.headers(1, block[:5], end_headers=False), p.continuation(1, block[5:])))(
            p.block(p.common())))),
    case("generic/3.10/several-continuation", lambda p: p.send(
        *(lambda block: (p.headers(1, block[:5], end_headers=False), p.continuation(1, block[5:10], False),
                         p.continuation(1, block[10:])))(p.block(p.common())))),
    case("http2/6.10/several-continuation", lambda p: p.send(
        p.request(1, end_headers=False), p.continuation(1, p.block([("x-dummy0", "x" * 4000)]), False),
        p.continuation(1, p.block([("x-dummy1", "x" * 4000)])))),
    # generic/4: HTTP message exchanges
    case("generic/4/get", lambda p: p.send(p.request(1))),
    case("generic/4/head", lambda p: p.send(p.request(1, "HEAD")), body=b""),
    case("generic/4/post", lambda p: p.send(post(p), p.data(1, b"test", True)), body=echoed(b"test")),
    case("generic/4/post-with-trailers", lambda p: p.send(
        post(p, extra=[("trailer", "x-test")]), p.data(1, b"test"), p.headers(1, p.block([("x-test", "ok")]))),
         body=echoed(b"test")),
    # http2/4.2
    case("http2/4.2/data-of-max-frame-size", lambda p: p.send(post(p), p.data(1, b"x" * 2**14, True)),
         body=echoed(b"x" * 2**14)),
    # http2/8.1.2.2: TE: trailers is the one allowed value  (extra)
    case("http2/8.1.2.2/te-trailers", lambda p: p.send(p.request(1, extra=[("te", "trailers")]))),
    # generic/5: every HPACK representation (the app echoes the field it got)
    hpack_accepted("generic/5/indexed", integer(58, 7, 0x80), "user-agent: "),
    hpack_accepted("generic/5/incremental-indexing-indexed-name",
                   literal(b"", b"h2conf", "incremental", 58), "user-agent: h2conf"),
    hpack_accepted("generic/5/incremental-indexing-indexed-name-huffman",
                   literal(b"", b"h2conf", "incremental", 58, True), "user-agent: h2conf"),
    hpack_accepted("generic/5/incremental-indexing-new-name",
                   literal(b"x-test", b"h2conf", "incremental"), "x-test: h2conf"),
    hpack_accepted("generic/5/incremental-indexing-new-name-huffman",
                   literal(b"x-test", b"h2conf", "incremental", 0, True), "x-test: h2conf"),
    hpack_accepted("generic/5/without-indexing-indexed-name",
                   literal(b"", b"h2conf", "without", 58), "user-agent: h2conf"),
    hpack_accepted("generic/5/without-indexing-indexed-name-huffman",
                   literal(b"", b"h2conf", "without", 58, True), "user-agent: h2conf"),
    hpack_accepted("generic/5/without-indexing-new-name",
                   literal(b"x-test", b"h2conf", "without"), "x-test: h2conf"),
    hpack_accepted("generic/5/without-indexing-new-name-huffman",
                   literal(b"x-test", b"h2conf", "without", 0, True), "x-test: h2conf"),
    hpack_accepted("generic/5/never-indexed-indexed-name",
                   literal(b"", b"h2conf", "never", 58), "user-agent: h2conf"),
    hpack_accepted("generic/5/never-indexed-indexed-name-huffman",
                   literal(b"", b"h2conf", "never", 58, True), "user-agent: h2conf"),
    hpack_accepted("generic/5/never-indexed-new-name",
                   literal(b"x-test", b"h2conf", "never"), "x-test: h2conf"),
    hpack_accepted("generic/5/never-indexed-new-name-huffman",
                   literal(b"x-test", b"h2conf", "never", 0, True), "x-test: h2conf"),
    hpack_accepted("generic/5/size-update", literal(b"x-test", b"h2conf"), "x-test: h2conf", size_update(0)),
    hpack_accepted("generic/5/two-size-updates", literal(b"x-test", b"h2conf"), "x-test: h2conf",
                   size_update(0) + size_update(4096)),
    case("hpack/2.3.2/dynamic-table-entry-across-blocks", dynamic_table_across_blocks, 3,  # (extra)
         body=has_line("x-test: indexed")),
]


FLOW_CONTROL = [
    # generic/2: a zero window holds the response; WINDOW_UPDATE (after PRIORITY) lets one octet out
    case("generic/2/window-update-on-half-closed-remote-stream", lambda p: p.send(
        p.request(1), p.window_update(1, 1)), 1, 1, settings=[(INITIAL_WINDOW_SIZE, 0)]),
    case("generic/2/priority-on-half-closed-remote-stream", lambda p: p.send(
        p.request(1), p.priority(1, weight=255), p.window_update(1, 1)), 1, 1,
         settings=[(INITIAL_WINDOW_SIZE, 0)]),
    # http2/6.5.3: values are applied in order: the last one wins
    case("http2/6.5.3/initial-window-size-twice", lambda p: p.send(p.request(1)), 1, 1,
         settings=[(INITIAL_WINDOW_SIZE, 100), (INITIAL_WINDOW_SIZE, 1)]),
    # http2/6.9.1
    case("http2/6.9.1/initial-window-size-1", lambda p: p.send(p.request(1)), 1, 1,
         settings=[(INITIAL_WINDOW_SIZE, 1)]),
    # http2/6.9.2
    case("http2/6.9.2/initial-window-size-raised-after-headers", window_change_after_headers, 1, 1,
         settings=[(INITIAL_WINDOW_SIZE, 0)]),
    case("http2/6.9.2/negative-window", negative_window, 1, 1, settings=[(INITIAL_WINDOW_SIZE, 3)]),
]


CLOSES = [
    case("http2/3.5/invalid-preface", lambda p: p.send(b"INVALID CONNECTION PREFACE\r\n\r\n"), handshake=False),
    case("generic/3.8/goaway", lambda p: p.send(p.goaway(0, debug=b"h2conf"))),
    case("http2/7/goaway-unknown-error-code", lambda p: p.send(p.goaway(0, 0xFF))),
]


@pytest.mark.parametrize("case", CONNECTION_ERRORS)
def test_connection_error(serve, tmp_path, case):
    run(serve, tmp_path, case, connection_error)


@pytest.mark.parametrize("case", STREAM_ERRORS)
def test_stream_error(serve, tmp_path, case):
    run(serve, tmp_path, case, stream_error)


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted(serve, tmp_path, case):
    run(serve, tmp_path, case, accepted)


@pytest.mark.parametrize("case", RESPONSES)
def test_response(serve, tmp_path, case):
    run(serve, tmp_path, case, response)


@pytest.mark.parametrize("case", FLOW_CONTROL)
def test_flow_control(serve, tmp_path, case):
    run(serve, tmp_path, case, data_frame)


@pytest.mark.parametrize("case", CLOSES)
def test_closes(serve, tmp_path, case):
    run(serve, tmp_path, case, closes)


def test_the_table_covers_h2specs_groups():
    """Cases per group, so that a lost table row shows (update the counts with the table)."""
    ids = [param.id for table in (CONNECTION_ERRORS, STREAM_ERRORS, ACCEPTED, RESPONSES, FLOW_CONTROL, CLOSES)
           for param in table]
    assert len(ids) == len(set(ids))
    groups = {group: sum(1 for id in ids if id.startswith(group + "/"))
              for group in ("generic", "http2", "hpack", "rfc8441")}
    assert sum(groups.values()) == len(ids)
    assert groups == {"generic": 45, "http2": 128, "hpack": 12, "rfc8441": 6}
