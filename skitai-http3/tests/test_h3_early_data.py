"""0-RTT (`skitai.enable_http3_early_data`): a client resumes with a session ticket and sends
requests in early data; safe methods are served, others answered 425 Too Early (RFC 8470); a
ticket resumes once only, so a replayed 0-RTT flight gets no early data accepted."""
import asyncio

from h3apps import APP

from skitai_http3.testing import h3_connect, run


def first_ticket(server, certs):
    tickets = []

    async def first():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca,
                              session_ticket_handler=tickets.append) as client:
            assert (await client.request("GET", "/")).status == 200
            for _ in range(100):
                if tickets:
                    break
                await asyncio.sleep(0.01)
    run(first)
    assert tickets, "the server issued no session ticket"
    return tickets[0]


def early_requests(server, certs, ticket):
    """GET and POST sent in 0-RTT on a connection resuming `ticket`, then a POST after the
    handshake: (early data accepted, GET, early POST, later POST)."""

    async def resumed():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca, session_ticket=ticket) as client:
            get = asyncio.ensure_future(client.request("GET", "/", timeout=10))
            post = asyncio.ensure_future(client.request("POST", "/echo", body=b"early body", timeout=10))
            get, post = await get, await post
            for _ in range(500):  # aioquic's wait_connected misses a handshake done before it is called
                if client._quic._handshake_complete:
                    break
                await asyncio.sleep(0.01)
            later = await client.request("POST", "/echo", body=b"after the handshake", timeout=10)
            return client._quic.tls.early_data_accepted, get, post, later
    return run(resumed)


def test_get_in_0rtt_is_served_and_post_is_425_too_early(serve, certs):
    server = serve(APP, quic_early_data=True)
    accepted, get, post, later = early_requests(server, certs, first_ticket(server, certs))
    assert accepted
    assert get.status == 200 and get.body == b"HTTP/3.0 GET localhost https"
    assert post.status == 425 and b"Too Early" in post.body
    assert later.status == 200 and later.body.startswith(b"19 ")


def test_a_ticket_resumes_once_so_a_replayed_0rtt_flight_is_not_accepted(serve, certs):
    server = serve(APP, quic_early_data=True)
    ticket = first_ticket(server, certs)
    assert early_requests(server, certs, ticket)[0]
    accepted, get, post, later = early_requests(server, certs, ticket)
    assert not accepted  # the ticket was used: a full handshake, nothing taken from early data
    assert later.status == 200
