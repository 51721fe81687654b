"""Large transfers over HTTP/3 with bounded server memory: a 256 MiB download (a static file,
handed to QUIC in blocks as the stream drains) and a 64 MiB upload into an app that does not
read at first (the stream gets no credit while its body buffer is full), with the worker's peak
memory measured; and a transfer through a relay that drops datagrams."""
import asyncio
import hashlib
import os
import random
import socket
import textwrap

import pytest
from h3server import free_udp_port

from skitai.testing import ServerProcess, make_certificates
from skitai_http3.testing import h3_connect, run

MiB = 1024 * 1024
DOWNLOAD = 256 * MiB
UPLOAD = 64 * MiB

SCRIPT = textwrap.dedent('''
    import hashlib
    import os
    import time

    import skitai


    def upload(environ, start_response):
        time.sleep(float(environ.get("HTTP_X_WAIT", "0")))  # the body piles up meanwhile, or not
        digest, size = hashlib.sha256(), 0
        while chunk := environ["wsgi.input"].read(262144):
            digest.update(chunk)
            size += len(chunk)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{size} {digest.hexdigest()} {os.getpid()}".encode()]


    def status(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        with open("/proc/self/status") as file:
            fields = dict(line.split(":", 1) for line in file)
        return [f"{os.getpid()} {int(fields['VmRSS'].split()[0])} {int(fields['VmHWM'].split()[0])}".encode()]


    if __name__ == "__main__":
        skitai.enable_ssl(os.environ["TEST_CERT"], os.environ["TEST_KEY"])
        skitai.mount("/", os.environ["TEST_STATIC"])
        skitai.mount("/upload", upload)
        skitai.mount("/status", status)
        skitai.set_max_upload_size(128 * 1024 * 1024)
        skitai.run(port=5000, quic=int(os.environ["TEST_QUIC"]), threads=2)
''')


@pytest.fixture
def service(tmp_path):
    certs = make_certificates(str(tmp_path))
    static = tmp_path / "static"
    static.mkdir()
    with open(static / "big.bin", "wb") as file:
        file.truncate(DOWNLOAD)  # sparse: zeros on read, no disk
    (static / "medium.bin").write_bytes(os.urandom(4 * MiB))
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    quic = free_udp_port()
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic), "TEST_STATIC": str(static)}
    with ServerProcess(str(script), env=env) as server:
        yield server, quic, certs, static


def memory(client):
    async def read():
        pid, rss, peak = map(int, (await client.request("GET", "/status")).body.split())
        return pid, rss * 1024, peak * 1024
    return read()


@pytest.mark.timeout(900)
def test_a_256_mib_download_and_a_64_mib_upload_with_bounded_memory(service):
    server, quic, certs, _ = service

    async def transfers():
        async with h3_connect("127.0.0.1", quic, cafile=certs.ca) as client:
            pid, rss_before, _ = await memory(client)
            digest = hashlib.sha256()
            download = await client.request("GET", "/big.bin", sink=digest.update, timeout=600)

            async def body():
                piece = bytes(range(256)) * 1024
                for _ in range(UPLOAD // len(piece)):
                    yield piece
            upload = await client.request("POST", "/upload", body=body(), headers=[("x-wait", "3")], timeout=600)
            return pid, rss_before, download, digest.hexdigest(), upload, await memory(client)
    pid, rss_before, download, digest, upload, (pid_after, _, peak) = run(transfers, timeout=900)
    assert download.status == 200 and download.received == DOWNLOAD
    assert digest == hashlib.sha256(bytes(DOWNLOAD)).hexdigest()
    expected = hashlib.sha256(bytes(range(256)) * 1024 * (UPLOAD // (256 * 1024))).hexdigest()
    assert upload.status == 200 and upload.body.split()[:2] == [str(UPLOAD).encode(), expected.encode()]
    assert pid == pid_after
    assert peak - rss_before < 12 * MiB, f"the worker grew by {(peak - rss_before) / MiB:.1f} MiB"


class LossyRelay(asyncio.DatagramProtocol):
    """Relays datagrams between one client and the server, dropping `loss` of them each way."""

    def __init__(self, server_port, loss, seed=7):
        self.server = ("127.0.0.1", server_port)
        self.loss = loss
        self.random = random.Random(seed)
        self.client = None
        self.upstream = None
        self.dropped = 0
        self.relayed = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        if self.random.random() < self.loss:
            self.dropped += 1
            return
        self.relayed += 1
        if address == self.server:
            if self.client is not None:
                self.transport.sendto(data, self.client)
        else:
            self.client = address
            self.transport.sendto(data, self.server)


@pytest.mark.timeout(600)
def test_transfers_complete_through_a_relay_that_drops_three_percent_of_datagrams(service):
    server, quic, certs, static = service
    content = (static / "medium.bin").read_bytes()

    async def through_relay():
        loop = asyncio.get_running_loop()
        relay_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        relay_socket.bind(("127.0.0.1", 0))
        transport, relay = await loop.create_datagram_endpoint(lambda: LossyRelay(quic, 0.03), sock=relay_socket)
        try:
            async with h3_connect("127.0.0.1", relay_socket.getsockname()[1], cafile=certs.ca) as client:
                download = await client.request("GET", "/medium.bin", timeout=300)
                upload = await client.request("POST", "/upload", body=content, timeout=300)
                many = await asyncio.gather(*(client.request("GET", "/status", timeout=300) for _ in range(20)))
                return download, upload, many, relay.dropped
        finally:
            transport.close()
    download, upload, many, dropped = run(through_relay, timeout=600)
    assert dropped > 10
    assert download.status == 200 and download.body == content
    assert upload.body.split()[:2] == [str(len(content)).encode(), hashlib.sha256(content).hexdigest().encode()]
    assert [response.status for response in many] == [200] * 20
