"""No request smuggling through the reverse proxy: the classic CL.TE, TE.CL and TE.TE payloads
are sent to the proxy in front of a lenient member (a raw socket that parses nothing). Each is
either refused by the proxy (400; nothing complete reaches the member) or reaches the member as exactly
one request with one framing of the proxy's own and nothing behind it, as a strict parser (h11)
reads the member's bytes; a request the proxy began to forward and then found malformed is
cut short, its member connection dropped."""
import socket

import h11
import pytest
from proxyservers import RawMember, proxy_server

from skitai.testing import StartedServers, wait_for

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
    """The safety property, whatever the timing: the client gets one answer and the connection
    ends (the smuggled bytes are never read as a request of their own); each member connection
    carries at most one request, `/x`, in one framing of the proxy's, with nothing behind it.
    The proxy streams the head before it reads the body, so a body it then finds malformed
    (the chunk size overflow) may leave the member a request cut short: that is no smuggling
    as long as the proxy drops that member connection and nothing the client smuggled is in it
    (and the lenient member, which answers at the head, may even have answered it first: the
    client then gets that 200 and the close)."""
    member, front = chain
    answer = send(front.port, PAYLOADS[name])
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 200")), answer
    cut = 0
    for received in member.received:
        events = strict_parse(received)
        if not events:
            continue
        request = events[0]
        assert isinstance(request, h11.Request) and request.target == b"/x", received
        framing = [field for field, _ in request.headers if field in (b"content-length", b"transfer-encoding")]
        assert len(framing) == 1, request.headers
        if isinstance(events[-1], h11.EndOfMessage):
            data = b"".join(event.data for event in events if isinstance(event, h11.Data))
            assert received.count(b"/admin") == data.count(b"/admin"), received  # only ever as body bytes
        else:
            cut += 1
            assert b"/admin" not in received, received
    if answer.startswith(b"HTTP/1.1 200"):
        assert len(member.received) == 1
    # a request cut short is one whose member connection the proxy dropped (the member's own
    # read timeout is 10 s, longer than this wait)
    wait_for(lambda: member.ended >= cut)


def test_an_accepted_chunked_request_reaches_the_member_in_the_proxys_own_framing(chain):
    member, front = chain
    payload = (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"5;ext=\"0\\r\\n\\r\\nGET /admin\"\r\nhello\r\n0\r\nX-Note: t\r\n\r\n")
    answer = send(front.port, payload)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    # the member answers at the end of the head, so the body may still be on its way
    events = wait_for(lambda: (events := strict_parse(member.received[0]))
                      and isinstance(events[-1], h11.EndOfMessage) and events, timeout=10)
    assert b"".join(event.data for event in events if isinstance(event, h11.Data)) == b"hello"
    assert b"ext=" not in member.received[0] and b"/admin" not in member.received[0]
    # the client's trailer field is passed on, in the proxy's own (lower-case) form
    assert member.received[0].endswith(b"\r\n\r\n5\r\nhello\r\n0\r\nx-note: t\r\n\r\n")
