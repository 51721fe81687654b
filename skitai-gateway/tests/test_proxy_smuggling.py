"""No request smuggling through the reverse proxy: the classic CL.TE, TE.CL and TE.TE payloads
are sent to the proxy in front of a lenient member (a raw socket that parses nothing). Each is
either refused by the proxy (400; nothing complete reaches the member) or reaches the member as exactly
one request with one framing of the proxy's own and nothing behind it, as a strict parser (h11)
reads the member's bytes."""
import socket

import h11
import pytest
from proxyservers import RawMember, proxy_server

from skitai.testing import StartedServers

SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
PAYLOADS = {
    "CL.TE": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n" + SMUGGLED,
    "TE.CL": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE duplicate": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n"
                       b"Content-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE space before colon": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
                                b"Content-Length: 4\r\n\r\n21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE xchunked": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n"
                      b"21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE tab": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n"
                 b"21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE obs-fold": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n"
                      b"21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE chunked, identity": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                            b"21\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "CL.CL": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 38\r\n\r\nabcd" + SMUGGLED,
    "CL list": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 38\r\n\r\nabcd" + SMUGGLED,
    "chunk size overflow": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"10000000000000021\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "bare LF chunk": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"21\n" + SMUGGLED + b"\n0\n\n",
}


@pytest.fixture
def chain():
    member = RawMember(lambda data: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" if b"\r\n\r\n" in data else None)
    started = StartedServers(lambda **settings: proxy_server({"/": "@m"}, {"@m": [member.member]}, **settings))
    yield member, started()
    started.stop()
    member.close()


def send(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        answer = bytearray()
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return bytes(answer)


def strict_parse(data: bytes) -> list:
    """The events a strict server parser reads from what the member received."""
    if not data:
        return []  # (h11 takes b"" for the end of the stream)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    events = []
    while True:
        event = conn.next_event()
        if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
            break
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            assert conn.trailing_data == (b"", False), f"bytes behind the request: {conn.trailing_data!r}"
            break
    return events


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_an_ambiguous_request_is_refused_or_reframed(chain, name):
    member, front = chain
    answer = send(front.port, PAYLOADS[name])
    responses = answer.count(b"HTTP/1.1 ")
    assert responses == 1, answer
    if answer.startswith(b"HTTP/1.1 400"):
        # refused at the head, or in the body after the head went on: then the member saw one
        # request cut short (the proxy dropped the connection), never a complete one or a second
        for received in member.received:
            assert b"/admin" not in received
            assert not any(isinstance(event, h11.EndOfMessage) for event in strict_parse(received)), received
        return
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert len(member.received) == 1
    events = strict_parse(member.received[0])
    request = events[0]
    assert isinstance(request, h11.Request) and request.target == b"/x"
    framing = [name for name, _ in request.headers if name in (b"content-length", b"transfer-encoding")]
    assert len(framing) == 1, request.headers
    assert isinstance(events[-1], h11.EndOfMessage)
    assert b"/admin" not in member.received[0] or b"".join(
        event.data for event in events if isinstance(event, h11.Data)).count(b"/admin") == 1


def test_an_accepted_chunked_request_reaches_the_member_in_the_proxys_own_framing(chain):
    member, front = chain
    payload = (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"5;ext=\"0\\r\\n\\r\\nGET /admin\"\r\nhello\r\n0\r\nX-Note: t\r\n\r\n")
    answer = send(front.port, payload)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    events = strict_parse(member.received[0])
    assert b"".join(event.data for event in events if isinstance(event, h11.Data)) == b"hello"
    assert b"ext=" not in member.received[0] and b"/admin" not in member.received[0]
    assert member.received[0].endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
