"""HTTP/3 with several worker processes: every datagram of a connection reaches the worker that
holds it (the steering of skitai_http3.steering), so many concurrent clients all succeed, each
connection served by one worker throughout, and a graceful reload under load fails nothing."""
import asyncio
import os
import signal
import time

import pytest
from h3server import free_udp_port
from test_h3_launch import SCRIPT

from skitai.testing import ServerProcess, make_certificates, wait_for
from skitai_http3.testing import h3_connect, run

CLIENTS = 100
REQUESTS = 3


@pytest.fixture
def service(tmp_path, request):
    certs = make_certificates(str(tmp_path))
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    quic = free_udp_port()
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic), "TEST_WORKERS": "2",
           **getattr(request, "param", {})}
    with ServerProcess(str(script), env=env) as server:
        yield server, quic, certs


async def one_client(quic, ca):
    """A connection of its own making REQUESTS requests: the pids that answered, or the error.
    As browsers do, a client told by GOAWAY that the server stops (a reload's old worker) makes
    its next requests on a new connection, and makes again on one a request the GOAWAY says was
    not processed (its stream at or above the GOAWAY's ID, RFC 9114 5.2)."""
    pids = []
    try:
        while len(pids) < REQUESTS:
            async with h3_connect("127.0.0.1", quic, cafile=ca) as client:
                while len(pids) < REQUESTS and client.goaway_id is None:
                    stream_id = client._quic.get_next_available_stream_id()
                    try:
                        response = await client.request("GET", "/", timeout=20)
                    except ConnectionError:
                        if client.goaway_id is None or stream_id < client.goaway_id:
                            raise
                        break  # not processed: made again on a new connection
                    assert response.status == 200, response.status
                    pids.append(int(response.body.split()[1]))
        return pids
    except Exception as error:  # counted, not raised: the test reports every failure
        return error


async def many_clients(quic, ca, count):
    return await asyncio.gather(*(asyncio.wait_for(one_client(quic, ca), 40) for _ in range(count)),
                                return_exceptions=True)


def test_a_hundred_concurrent_clients_against_two_workers_fail_nothing(service):
    server, quic, certs = service
    results = run(many_clients, quic, certs.ca, CLIENTS, timeout=120)
    failures = [result for result in results if not isinstance(result, list)]
    assert failures == []
    assert all(len(set(pids)) == 1 for pids in results)  # one worker per connection
    workers = {pids[0] for pids in results}
    assert len(workers) == 2 and server.process.pid not in workers  # both workers took clients


def test_a_graceful_reload_under_http3_load_fails_nothing(service):
    server, quic, certs = service
    before = run(many_clients, quic, certs.ca, 10, timeout=60)
    old_workers = {pid for pids in before for pid in pids}

    def only_new(batch):
        return all(isinstance(pids, list) and not set(pids) & old_workers for pids in batch)

    async def load():
        """Batches of clients from the SIGHUP until one is served by new workers only: the load
        spans the whole reload however long its check and the new workers' start take."""
        results = []
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (results and only_new(results[-10:])):
            results.extend(await many_clients(quic, certs.ca, 10))
        return results
    results = run(load, timeout=180)
    failures = [result for result in results if not isinstance(result, list)]
    assert failures == []
    assert any(set(pids) & old_workers for pids in results)  # the old workers took part of the load
    assert only_new(results[-10:])  # and new ones the last of it
    assert "skitai: reloading" in server.output
    assert os.path.exists(f"/proc/{server.process.pid}")


@pytest.mark.parametrize("service", [{"TEST_RETRY": "1"}], indirect=True)
def test_retry_validates_addresses_across_workers(service):
    """`skitai.enable_http3_retry()`: every new connection gets a Retry first; the token a
    worker made is good in the other worker too (one key, made by the master)."""
    server, quic, certs = service

    async def retried():
        async with h3_connect("127.0.0.1", quic, cafile=certs.ca) as client:
            response = await client.request("GET", "/")
            return client._quic._retry_count, response.status
    assert run(retried) == (1, 200)
    results = run(many_clients, quic, certs.ca, 40, timeout=120)
    assert [result for result in results if not isinstance(result, list)] == []
    assert len({pids[0] for pids in results}) == 2


@pytest.mark.parametrize("service", [{"TEST_WORKERS": "1"}], indirect=True)
def test_a_respawned_worker_resets_the_connections_of_the_one_that_crashed(service):
    """Packets of a connection whose worker died reach its successor, which does not hold it: it
    answers with a stateless reset (RFC 9000 10.3) carrying the token the client was given for
    that connection ID, smaller than the packet, so the client ends the connection at once."""
    import socket as sockets

    server, quic, certs = service

    async def connected():
        async with h3_connect("127.0.0.1", quic, cafile=certs.ca) as client:
            response = await client.request("GET", "/")
            peer = client._quic._peer_cid
            return int(response.body.split()[1]), peer.cid, peer.stateless_reset_token
    worker, cid, token = run(connected)
    assert len(token) == 16
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: (pids := run(many_clients, quic, certs.ca, 1)[0]) and isinstance(pids, list)
             and pids[0] != worker, timeout=20)
    with sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM) as raw:
        raw.settimeout(5)
        packet = b"\x41" + cid + os.urandom(60)
        raw.sendto(packet, ("127.0.0.1", quic))
        answer = raw.recv(2048)
    assert answer[-16:] == token
    assert 21 <= len(answer) < len(packet) and answer[0] & 0xC0 == 0x40
