"""HTTP/3 protocol behaviour: GOAWAY on a graceful stop (and a handshake in progress then), QUIC's
idle timeout, the limits the server announces and enforces (streams, header section size),
malformed requests, and 0-RTT off."""
import asyncio
import threading
import time

import pytest
from aioquic.h3.connection import Setting
from h3apps import APP, route

from skitai.testing import wait_for
from skitai_http3 import quic
from skitai_http3.testing import H3Client, StreamResetError, h3_connect, run

H3_REQUEST_REJECTED = 0x10B
H3_MESSAGE_ERROR = 0x10E


slow_started = threading.Event()


def slow(environ, start_response):
    slow_started.set()
    time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slow done"]


SLOW_APP = route({"/slow": slow, "/": APP})


def test_a_graceful_stop_sends_goaway_finishes_in_flight_and_refuses_new_requests(serve, certs):
    server = serve(SLOW_APP)

    async def stopping():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            slow_started.clear()
            in_flight = asyncio.ensure_future(client.request("GET", "/slow", timeout=10))
            for _ in range(1000):  # until the app runs it: then it is in flight
                if slow_started.is_set():
                    break
                await asyncio.sleep(0.01)
            server.server.request_stop()
            for _ in range(1000):
                if client.goaway_id is not None:
                    break
                await asyncio.sleep(0.01)
            goaway = client.goaway_id
            with pytest.raises((StreamResetError, ConnectionError)) as refused:
                await client.request("GET", "/", timeout=5)
            return goaway, await in_flight, refused.value
    goaway, finished, refused = run(stopping)
    assert goaway == 4  # request stream 0 was in flight: 4 and above are not served
    assert finished.status == 200 and finished.body == b"slow done"
    assert not isinstance(refused, StreamResetError) or refused.error_code == H3_REQUEST_REJECTED
    wait_for(lambda: not server._thread.is_alive(), timeout=15)


class Gate:
    """A client's datagram transport that holds what is sent while `held` is a list."""

    def __init__(self, transport) -> None:
        self.transport = transport
        self.held: list | None = None

    def sendto(self, data: bytes, addr=None) -> None:
        if self.held is None:
            self.transport.sendto(data, addr)
        else:
            self.held.append((data, addr))

    def release(self) -> None:
        held, self.held = self.held, None
        for data, addr in held:
            self.transport.sendto(data, addr)


class HandshakeHeldClient(H3Client):
    """Holds all it sends from the server's first answer on (`gate.release()` sends it): the
    server's side of the handshake stays in progress while the client counts it done."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._transport = self.gate = Gate(transport)
        self.answered = False

    def datagram_received(self, data, addr) -> None:
        if not self.answered:
            self.answered = True
            self.gate.held = []
        super().datagram_received(data, addr)


def test_a_handshake_in_progress_when_a_graceful_stop_begins_completes_and_is_served(serve, certs):
    """The packets of a connection still in its handshake keep reaching its worker across a
    reload (see `steering`): that worker's graceful stop lets the handshake complete and serves
    the request sent with its end, where it used to close the connection (0xc) and fail it."""
    server = serve(APP)
    endpoint = quic._endpoints[id(server.server)]

    async def late():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca, protocol=HandshakeHeldClient) as client:
            request = asyncio.ensure_future(client.request("GET", "/", timeout=10))
            await asyncio.sleep(0)  # the request is made: held behind the handshake's end
            server.server.request_stop()
            for _ in range(1000):
                if not endpoint.admission.open:
                    break
                await asyncio.sleep(0.01)
            assert not endpoint.admission.open  # the stop began
            client.gate.release()
            return await request
    response = run(late)
    assert response.status == 200
    wait_for(lambda: not server._thread.is_alive(), timeout=15)


def test_an_idle_connection_is_closed_after_the_keep_alive(serve, certs):
    server = serve(APP, keep_alive=1)

    async def idle():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            assert (await client.request("GET", "/")).status == 200
            assert len(server.server.connections) == 1
            for _ in range(100):
                if not server.server.connections:
                    return True
                await asyncio.sleep(0.05)
            return False
    assert run(idle)


def test_the_limits_announced_to_the_client(serve, certs):
    server = serve(APP, max_header_size=32 * 1024)

    async def announced():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            await client.request("GET", "/")
            return client._quic._remote_max_streams_bidi, client.h3.received_settings
    streams, settings = run(announced)
    assert streams == 100
    assert settings[Setting.MAX_FIELD_SECTION_SIZE] == 32 * 1024


def test_a_header_section_over_the_limits_is_431_and_the_connection_goes_on(serve, certs):
    server = serve(APP, max_header_size=8 * 1024, max_header_count=20)

    async def oversized():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            big = await client.request("GET", "/", headers=[("x-big", "a" * 10_000)])
            many = await client.request("POST", "/echo", headers=[(f"x-{n}", "1") for n in range(30)],
                                        body=b"abc")
            return big, many, await client.request("GET", "/")
    big, many, after = run(oversized)
    assert big.status == 431 and many.status == 431
    assert after.status == 200


@pytest.mark.parametrize("fields", [
    [("connection", "close")],            # connection-specific (RFC 9114 4.2)
    [("te", "gzip")],                     # te other than "trailers"
    [("host", "other.example")],          # host disagreeing with :authority
    [("x-bad", "a\nb")],                  # a line feed in a value
])
def test_a_malformed_request_resets_its_stream_only(serve, certs, fields):
    server = serve(APP)

    async def malformed():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            with pytest.raises(StreamResetError) as error:
                await client.request("GET", "/", headers=fields, timeout=5)
            return error.value.error_code, await client.request("GET", "/")
    code, after = run(malformed)
    assert code == H3_MESSAGE_ERROR and after.status == 200


def test_a_request_with_an_invalid_field_name_resets_its_stream_only(serve, certs):
    server = serve(APP)

    async def broken():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            other = asyncio.ensure_future(client.request("POST", "/echo", body=b"x" * 100_000))
            with pytest.raises(StreamResetError) as error:
                await client.request("GET", "/", headers=[("bad name", "x")], timeout=5)
            return error.value.error_code, await other, await client.request("GET", "/")
    code, other, after = run(broken)
    assert code == H3_MESSAGE_ERROR and other.status == 200 and after.status == 200


def test_no_session_ticket_is_issued_so_no_0rtt(serve, certs):
    """0-RTT data can be replayed; aioquic accepts it only on a resumed session, and the server
    keeps no session tickets, so a client never gets one to resume with."""
    server = serve(APP)
    tickets = []

    async def first():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca,
                              session_ticket_handler=tickets.append) as client:
            response = await client.request("GET", "/")
            await asyncio.sleep(0.3)
            return response
    assert run(first).status == 200
    assert tickets == []


def test_concurrent_streams_beyond_the_limit_wait_for_credit(serve, certs):
    """More requests than the 100 concurrent streams at once: the client waits for MAX_STREAMS
    and every request is answered."""
    gate = threading.Event()

    def gated(environ, start_response):
        gate.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    server = serve(route({"/gated": gated}), threads=120)

    async def crowd():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            pending = [asyncio.ensure_future(client.request("GET", "/gated", timeout=30)) for _ in range(101)]
            await asyncio.sleep(0.5)
            gate.set()
            return await asyncio.gather(*pending)
    responses = run(crowd)
    assert [response.status for response in responses] == [200] * 101


def test_websocket_over_http3_is_refused_clearly(serve, certs):
    """RFC 9220 is not implemented: the SETTINGS do not offer extended CONNECT, and a CONNECT
    (a WebSocket's or a tunnel's) is answered 501 saying so; the connection goes on."""
    server = serve(APP)

    async def connect():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            await client.request("GET", "/")
            settings = client.h3.received_settings
            refused = await client.request("CONNECT", "/chat", headers=[(":protocol", "websocket"),
                                                                          ("sec-websocket-version", "13")])
            return settings, refused, await client.request("GET", "/")
    settings, refused, after = run(connect)
    assert settings[Setting.ENABLE_CONNECT_PROTOCOL] == 0
    assert refused.status == 501 and b"RFC 9220" in refused.body
    assert after.status == 200


def test_rapid_reset_ends_the_connection(serve, certs):
    """CVE-2023-44487 over HTTP/3: requests opened and cancelled at once, hundreds of them, cost
    from a budget (200, then 100 a second); overspent, the connection ends with
    H3_EXCESSIVE_LOAD, and the server goes on for others."""
    server = serve(route({"/slow": slow, "/": APP}))

    async def flood():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            head = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                    (b":path", b"/slow")]
            for _ in range(8):
                for _ in range(80):
                    stream_id = client._quic.get_next_available_stream_id()
                    client.h3.send_headers(stream_id, head, end_stream=True)
                    client._quic.reset_stream(stream_id, 0x10C)  # H3_REQUEST_CANCELLED
                client.transmit()
                await asyncio.sleep(0.05)
                if client.terminated is not None:
                    break
            for _ in range(100):
                if client.terminated is not None:
                    break
                await asyncio.sleep(0.05)
            terminated = client.terminated
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            return terminated, await client.request("GET", "/")
    terminated, after = run(flood)
    assert terminated is not None and terminated.error_code == 0x107  # H3_EXCESSIVE_LOAD
    assert after.status == 200
