"""The WebSocket handshake and session without sockets: wsproto's client side produces the
exact frames a client would send."""
import base64
import zlib

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from skitai.websocket.handshake import HandshakeError, accept, read_handshake
from skitai.websocket.session import Closed, Message, WebSocketSession

KEY = base64.b64encode(b"0123456789abcdef").decode()


def h1_headers(**extra):
    headers = [("host", "example.com"), ("upgrade", "websocket"), ("connection", "keep-alive, Upgrade"),
               ("sec-websocket-key", KEY), ("sec-websocket-version", "13")]
    names = {name.replace("_", "-") for name in extra}
    headers = [(name, value) for name, value in headers if name not in names]
    headers += [(name.replace("_", "-"), value) for name, value in extra.items() if value is not None]
    return headers


# handshake
def test_a_valid_handshake_is_accepted_with_the_rfc_6455_accept_token():
    handshake = read_handshake("GET", "1.1", h1_headers(), None)
    status, headers, extensions = accept(handshake, 1 << 20)
    assert status == "101 Switching Protocols"
    # RFC 6455 1.3's worked example uses another key; the token is SHA-1 of key + GUID
    assert dict(headers)["Sec-WebSocket-Accept"] == base64.b64encode(
        __import__("hashlib").sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert ("Upgrade", "websocket") in headers and ("Connection", "Upgrade") in headers
    assert extensions == []


def test_rfc_6455_sample_key():
    handshake = read_handshake("GET", "1.1", h1_headers(sec_websocket_key="dGhlIHNhbXBsZSBub25jZQ=="), None)
    assert dict(accept(handshake, 1 << 20)[1])["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("method, version, headers, status", [
    ("POST", "1.1", h1_headers(), 400),
    ("GET", "1.0", h1_headers(), 400),
    ("GET", "1.1", h1_headers(connection="keep-alive"), 400),
    ("GET", "1.1", h1_headers(sec_websocket_key=None), 400),
    ("GET", "1.1", h1_headers(sec_websocket_key="c2hvcnQ="), 400),        # 5 bytes, not 16
    ("GET", "1.1", h1_headers(sec_websocket_key="not base64!"), 400),
    ("GET", "1.1", h1_headers(sec_websocket_version=None), 400),
    ("GET", "1.1", h1_headers(sec_websocket_version="8"), 426),
])
def test_invalid_handshakes_are_refused(method, version, headers, status):
    with pytest.raises(HandshakeError) as refused:
        read_handshake(method, version, headers, None)
    assert refused.value.status == status
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in refused.value.headers


def test_two_keys_are_refused():
    with pytest.raises(HandshakeError):
        read_handshake("GET", "1.1", h1_headers() + [("sec-websocket-key", KEY)], None)


def test_http2_extended_connect_is_accepted_with_200_and_no_key():
    handshake = read_handshake("CONNECT", "2.0", [("sec-websocket-version", "13")], "websocket")
    status, headers, _ = accept(handshake, 1 << 20)
    assert status == "200 OK"
    assert not any(name in ("Upgrade", "Connection", "Sec-WebSocket-Accept") for name, _ in headers)


def test_http2_websocket_must_be_a_connect():
    with pytest.raises(HandshakeError):
        read_handshake("GET", "2.0", [("sec-websocket-version", "13")], "websocket")


@pytest.mark.parametrize("offer, agreed", [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=15"),
    ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=abc", None),
    ("permessage-deflate; server_max_window_bits=3", None),
    ("x-unknown", None),
])
def test_permessage_deflate_negotiation(offer, agreed):
    handshake = read_handshake("GET", "1.1", h1_headers(sec_websocket_extensions=offer), None)
    _, headers, extensions = accept(handshake, 1 << 20)
    assert dict(headers).get("Sec-WebSocket-Extensions") == agreed
    assert len(extensions) == (agreed is not None)


# session
def client(extensions=None):
    return Connection(ConnectionType.CLIENT, extensions or [])


def frames(session, *events, peer=None):
    peer = peer or client()
    data = b"".join(peer.send(event) for event in events)
    return session.receive(data)


def replies(session, peer=None):
    peer = peer or client()
    peer.receive_data(session.data_to_send())
    return list(peer.events())


def test_text_and_binary_messages_come_whole_from_fragments():
    session, peer = WebSocketSession(), client()
    events = frames(session, TextMessage("héllo ", message_finished=False), TextMessage("wörld"),
                    BytesMessage(b"\x00\x01", message_finished=False), BytesMessage(b"\x02"), peer=peer)
    assert events == [Message("héllo wörld"), Message(b"\x00\x01\x02")]


def test_a_ping_between_fragments_gets_its_pong_at_once():
    session, peer = WebSocketSession(), client()
    events = frames(session, TextMessage("a", message_finished=False), Ping(b"p"), TextMessage("b"), peer=peer)
    assert events == [Message("ab")]
    assert replies(session, peer) == [Pong(b"p")]


def test_the_client_close_is_echoed_and_ends_the_session():
    session, peer = WebSocketSession(), client()
    assert frames(session, CloseConnection(4000, "bye"), peer=peer) == [Closed(4000, "bye")]
    assert replies(session, peer) == [CloseConnection(4000, "bye")]
    assert session.closed


def test_a_message_over_the_limit_is_refused_with_1009_and_the_close_completes():
    session, peer = WebSocketSession(max_message_size=10), client()
    events = frames(session, TextMessage("x" * 6, message_finished=False), TextMessage("y" * 6), peer=peer)
    assert events == [Closed(1009, "message too big")]
    assert replies(session, peer) == [CloseConnection(1009, "message too big")]
    assert not session.closed  # the client still answers our close
    assert frames(session, CloseConnection(1009), peer=peer) == [Closed(1009, "")]
    assert session.closed


def test_messages_after_our_close_are_not_delivered():
    session, peer = WebSocketSession(), client()
    session.close(1001, "going away")
    assert frames(session, TextMessage("late"), peer=peer) == []


def test_invalid_utf8_fails_the_connection_with_1007():
    session = WebSocketSession()
    frame = b"\x81\x82" + b"\x00\x00\x00\x00" + b"\xc3\x28"  # a masked text frame, bad UTF-8
    assert session.receive(frame) == [Closed(1007, "Invalid utf-8 in message")] or session.failed
    assert session.failed
    assert replies(session)[0].code == 1007


@pytest.mark.parametrize("frame", [
    b"\x81\x02ab",                          # unmasked client frame
    b"\xc1\x80\x00\x00\x00\x00",            # RSV1 without an extension
    b"\x83\x80\x00\x00\x00\x00",            # reserved opcode 3
    b"\x09\x80\x00\x00\x00\x00",            # fragmented ping
    b"\x80\x80\x00\x00\x00\x00",            # continuation with nothing to continue
    b"\x88\x81\x00\x00\x00\x00\x03",        # close with a 1-byte payload
    b"\x88\x82\x00\x00\x00\x00\x03\xed",    # close code 1005, which only a library may use
])
def test_protocol_violations_fail_the_connection_with_1002(frame):
    session = WebSocketSession()
    events = session.receive(frame)
    assert events and events[0].code == 1002
    assert session.failed and session.closed
    assert replies(session)[0].code == 1002
    assert session.receive(b"\x81\x80\x00\x00\x00\x00") == []  # nothing more is read


def test_the_end_of_the_transport_without_close_is_1006():
    session = WebSocketSession()
    assert session.receive(None) == [Closed(1006, "")]


def test_deflated_messages_are_inflated():
    server_ext, client_ext = accept(read_handshake("GET", "1.1", h1_headers(
        sec_websocket_extensions="permessage-deflate"), None), 1 << 20)[2], PerMessageDeflate()
    client_ext.finalize("permessage-deflate")
    session, peer = WebSocketSession(server_ext), client([client_ext])
    assert frames(session, TextMessage("z" * 5000), TextMessage("again"), peer=peer) == [
        Message("z" * 5000), Message("again")]
    session.send("reply " * 100)
    assert replies(session, peer) == [TextMessage("reply " * 100)]


def test_a_deflate_bomb_is_refused_before_it_inflates():
    limit = 64 * 1024
    extensions = accept(read_handshake("GET", "1.1", h1_headers(
        sec_websocket_extensions="permessage-deflate"), None), limit)[2]
    session = WebSocketSession(extensions, limit)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(b"\x00" * (64 * 1024 * 1024)) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(payload) < 65536  # so its length takes the 2-byte form
    size = bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    header = b"\xc2" + size + b"\x00\x00\x00\x00"  # FIN, RSV1, binary; masked with zeros
    events = session.receive(header + payload)
    assert events[0].code == 1009
    # the bounded inflate never held more than the limit (plus one byte)
    assert extensions[0]._inflated <= limit + 1


def _deflated_payloads(data):
    """The payload of each (unmasked, unfragmented) server frame in `data`."""
    payloads = []
    while data:
        length, start = data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        payloads.append(data[start:start + length])
        data = data[start + length:]
    return payloads


@pytest.mark.parametrize("bits, mem_level", [(9, 5), (10, 6), (12, 8), (15, 8)])
def test_the_deflate_hash_table_is_sized_to_the_window_the_client_asked_for(bits, mem_level):
    # zlib's default memLevel 8 with a 512-byte window rescans 32 Ki hash entries each time
    # the window slides: deflating was several times slower (Autobahn 13.3, 13.5, 13.7)
    offer = f"permessage-deflate; server_max_window_bits={bits}"
    _, headers, extensions = accept(read_handshake("GET", "1.1", h1_headers(
        sec_websocket_extensions=offer), None), 1 << 20)
    assert dict(headers)["Sec-WebSocket-Extensions"] == offer
    session = WebSocketSession(extensions)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    text = " ".join(words[(i * i + 7 * i) % 9] + str(i % 97) for i in range(12000))
    session.send(text)
    session.send(text[::-1])  # context takeover: the second message uses the first's window
    expected = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits, mem_level)
    payloads = [expected.compress(message.encode()) + expected.flush(zlib.Z_SYNC_FLUSH)
                for message in (text, text[::-1])]
    sent = session.data_to_send()
    assert _deflated_payloads(sent) == [payload[:-4] for payload in payloads]
    client_ext = PerMessageDeflate()
    client_ext.finalize(offer)
    peer = client([client_ext])
    peer.receive_data(sent)
    assert list(peer.events()) == [TextMessage(text), TextMessage(text[::-1])]
    if mem_level != 8:  # the test tells the two apart
        default = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
        assert default.compress(text.encode()) + default.flush(zlib.Z_SYNC_FLUSH) != payloads[0]


def test_empty_fragments_hold_no_memory():
    # each empty continuation frame used to add an entry to the message's parts: 6 bytes on
    # the wire each, past any message size limit
    session, peer = WebSocketSession(max_message_size=1024), client()
    assert frames(session, TextMessage("a", message_finished=False), peer=peer) == []
    empty = peer.send(TextMessage("", message_finished=False))
    for _ in range(20):
        assert session.receive(empty * 5000) == []
    assert len(session._parts) == 1
    assert frames(session, TextMessage("b"), peer=peer) == [Message("ab")]
    assert frames(session, BytesMessage(b"", message_finished=False), BytesMessage(b""), peer=peer) == [
        Message(b"")]


@pytest.mark.parametrize("unit", ["€", b"\xff", "é" * 100, b"x" * 70000],
                         ids=["1-character", "1-byte", "100-character", "70000-byte"])
def test_a_message_in_tiny_fragments_is_held_in_a_few_parts(unit):
    # one object per 1-character frame: a message of the limit's size held ~80 times as much
    session, peer = WebSocketSession(max_message_size=64 << 20), client()
    kind = TextMessage if isinstance(unit, str) else BytesMessage
    count = 3000 if len(unit) < 1000 else 40
    data = b"".join(peer.send(kind(unit, message_finished=False)) for _ in range(count))
    assert session.receive(data) == []
    total = len(unit) * count
    assert len(session._parts) <= total // (64 * 1024) + 17
    assert frames(session, kind(unit[:1]), peer=peer) == [Message(unit * count + unit[:1])]
    assert session._parts == []
