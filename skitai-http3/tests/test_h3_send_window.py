"""What aioquic holds of a response stream is bounded by `Limits.quic_buffer` whatever the
congestion window: aioquic keeps every byte it sent until the peer acknowledges it, and its
congestion window has no ceiling, so a window grown large on a fast path (or a peer slow to
acknowledge) let a 256 MiB download hold as much in the worker as the window allowed
(test_h3_large's bounded-memory check went over 12 MiB in some runs). Here the window starts
huge, the client gives 64 MiB of credit and stops acknowledging once the response begins: the
server must stop handing data over."""
import asyncio

from aioquic.quic.congestion import base as congestion

from skitai_http3.connection import CHUNK, H3ServerConnection
from skitai_http3.settings import Limits
from skitai_http3.testing import H3Client, h3_connect, run

MiB = 1024 * 1024


class Silent(H3Client):
    """A client that gives 64 MiB of credit from the start (its transport parameters) and can
    stop sending anything (acknowledgments included)."""
    silent = False
    received = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._quic._local_max_data.value = self._quic._local_max_stream_data_bidi_local = 64 * MiB

    def transmit(self) -> None:
        if not self.silent:
            super().transmit()

    def count(self, data: bytes) -> None:
        self.received += len(data)


def test_unacknowledged_response_data_stays_under_the_send_buffer(serve, certs, tmp_path, monkeypatch):
    folder = tmp_path / "static"
    folder.mkdir()
    with open(folder / "big.bin", "wb") as file:
        file.truncate(64 * MiB)  # sparse
    monkeypatch.setattr(congestion, "K_INITIAL_WINDOW", 20000)  # a 24 MB congestion window from the start
    held = []
    transmit = H3ServerConnection.transmit

    def measured(self):
        transmit(self)
        held.extend(stream.sender._buffer_stop - stream.sender._buffer_start
                    for stream in self._quic._streams.values())
    monkeypatch.setattr(H3ServerConnection, "transmit", measured)
    server = serve(("/", str(folder)))

    async def download():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca, protocol=Silent) as client:
            request = asyncio.ensure_future(client.request("GET", "/big.bin", sink=client.count, timeout=120))
            for _ in range(6000):  # the response begins, within 60 s
                if client.received or request.done():
                    break
                await asyncio.sleep(0.001)
            client.silent = True
            before = len(held)
            for _ in range(500):  # the server sends what credit and window allow, then waits
                await asyncio.sleep(0.01)
            client.silent = False
            request.cancel()
            return client.received, before
    received, before = run(download, timeout=180)
    assert received and len(held) > before
    assert max(held) <= Limits.quic_buffer + CHUNK + 64, f"aioquic held {max(held)} bytes of one stream"
