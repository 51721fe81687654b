"""Flood protections beyond rapid reset and malformed requests (`skitai_http3.floods`): a peer
that makes the server spend without bound, within flow control and the stream limits, is cut off
with H3_EXCESSIVE_LOAD. Each abuse is produced with aioquic's low-level API on a real client
connection; ordinary use on a connection stays within the budgets."""
import asyncio

import pytest
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import encode_frame
from h3apps import APP

from skitai_http3.testing import h3_connect, run

H3_EXCESSIVE_LOAD = 0x107
GREASE_STREAM_TYPE = 0x21      # a reserved type (0x1f * N + 0x21): to be accepted and ignored
GREASE_FRAME_TYPE = 0x21
SET_TABLE_CAPACITY_0 = b"\x20"  # QPACK encoder instruction: Set Dynamic Table Capacity 0


async def wait_terminated(client, seconds: float = 10.0):
    for _ in range(int(seconds / 0.02)):
        if client.terminated is not None:
            return client.terminated
        await asyncio.sleep(0.02)
    return None


def tiny_frames(client) -> None:
    """A request body sent one byte per STREAM frame (a packet carries hundreds of them)."""
    quic = client._quic
    stream_id = quic.get_next_available_stream_id()
    client.h3.send_headers(stream_id, [(b":method", b"POST"), (b":scheme", b"https"),
                                       (b":authority", b"localhost"), (b":path", b"/echo")])
    sender = quic._streams[stream_id].sender
    get_frame = sender.get_frame
    sender.get_frame = lambda max_size, max_offset=None: get_frame(min(max_size, 1), max_offset)
    quic.send_stream_data(stream_id, b"x" * 4000)


def uni_streams(client) -> None:
    """Unidirectional streams of an unknown type, opened and ended one after another."""
    for _ in range(40):
        stream_id = client._quic.get_next_available_stream_id(is_unidirectional=True)
        client._quic.send_stream_data(stream_id, encode_uint_var(GREASE_STREAM_TYPE) + b"x" * 10, end_stream=True)


def encoder_instructions(client) -> None:
    """100 000 valid QPACK encoder-stream instructions, none used by any request."""
    client._quic.send_stream_data(client.h3._local_encoder_stream_id, SET_TABLE_CAPACITY_0 * 100_000)


def control_frames(client) -> None:
    """Reserved frames (to be ignored) on the control stream, 100 KB of them."""
    frame = encode_frame(GREASE_FRAME_TYPE, b"x" * 1000)
    client._quic.send_stream_data(client.h3._local_control_stream_id, frame * 100)


async def retired_connection_ids(client) -> None:
    """The client retires the connection ID it uses again and again; the server issues a new one
    for each."""
    for _ in range(300):
        if client.terminated is not None:
            return
        if client._quic._peer_cid_available:
            client._quic.change_connection_id()
            client.transmit()
        await asyncio.sleep(0.002)


@pytest.mark.parametrize("abuse", [tiny_frames, uni_streams, encoder_instructions, control_frames,
                                   retired_connection_ids])
def test_a_flood_ends_the_connection_with_excessive_load(serve, certs, abuse):
    server = serve(APP)

    async def flood():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            assert (await client.request("GET", "/")).status == 200
            abused = abuse(client)
            if abused is not None:
                await abused
            client.transmit()
            return await wait_terminated(client)
    terminated = run(flood)
    assert terminated is not None, "the connection was not ended"
    assert terminated.error_code == H3_EXCESSIVE_LOAD


def test_ordinary_use_stays_within_the_budgets(serve, certs):
    """Many requests with varied fields (QPACK inserts on the encoder stream), small streamed
    body pieces, and a few reserved frames and streams: the connection stays up."""
    server = serve(APP)

    async def pieces():
        for _ in range(50):
            yield b"y" * 100

    async def ordinary():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            client._quic.send_stream_data(client.h3._local_control_stream_id,
                                          encode_frame(GREASE_FRAME_TYPE, b"z" * 100))
            uni = client._quic.get_next_available_stream_id(is_unidirectional=True)
            client._quic.send_stream_data(uni, encode_uint_var(GREASE_STREAM_TYPE), end_stream=True)
            statuses = []
            for index in range(300):
                response = await client.request("GET", "/", headers=[("x-request", f"{index}-" + "v" * 200),
                                                                      ("cookie", f"session={index}")])
                statuses.append(response.status)
            upload = await client.request("POST", "/echo", body=pieces())
            return statuses, upload, client.terminated
    statuses, upload, terminated = run(ordinary, timeout=120)
    assert statuses == [200] * 300 and upload.body.startswith(b"5000 ")
    assert terminated is None


def test_small_frames_among_full_ones_are_not_a_flood(serve, certs):
    """An upload whose every other STREAM frame is tiny (what a client's packing may leave at
    packets' ends, here on purpose, 2000 of them): full frames earn the small ones back."""
    server = serve(APP)
    body = b"z" * (2000 * 1101)

    async def upload():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            def alternate(stream_id):
                sender = client._quic._streams[stream_id].sender
                get_frame, sizes = sender.get_frame, iter([1, 1100] * 2000)
                sender.get_frame = lambda max_size, max_offset=None: get_frame(
                    min(max_size, next(sizes, max_size)), max_offset)
            response = await client.request("POST", "/echo", body=body, timeout=60, on_stream=alternate)
            return response, client.terminated
    response, terminated = run(upload, timeout=90)
    assert terminated is None and response.status == 200
    assert response.body.startswith(b"%d " % len(body))
