"""Members that fail behind the reverse proxy: fail-over to the next member while the request
was not sent, 502 for a member that is down or answers no HTTP, 504 for one too slow, a cut
response when a member breaks off mid-body; the gtxid is in the log line."""
import logging
import socket
import time

import httpx
import pytest
from proxyservers import RawMember, proxy_server

from skitai.testing import StartedServers, free_port, wait_for


@pytest.fixture
def servers():
    started = StartedServers(lambda **settings: proxy_server(settings.pop("mounts"), settings.pop("aliases"),
                                                             **settings))
    yield lambda mounts, aliases, **settings: started(mounts=mounts, aliases=aliases, **settings)
    started.stop()


@pytest.fixture
def raw():
    members = []

    def start(respond, **options):
        member = RawMember(respond, **options)
        members.append(member)
        return member
    yield start
    for member in members:
        member.close()


def proxy_log(caplog):
    return [record.getMessage() for record in caplog.records if record.name == "skitai.gateway.proxy"]


def test_a_member_that_is_down_is_a_502_with_the_gtxid_logged(servers, caplog):
    caplog.set_level(logging.WARNING, "skitai.gateway.proxy")
    front = servers({"/": "@m"}, {"@m": [f"127.0.0.1:{free_port()}"]})
    response = httpx.get(front.url("/x"), headers={"X-Gtxn-Id": "GTID-test-1", "X-Ltxn-Id": "1000"}, timeout=10)
    assert response.status_code == 502
    assert any("GTID-test-1" in line and "failed" in line for line in proxy_log(caplog)), proxy_log(caplog)


def test_requests_fail_over_to_the_next_member_while_their_body_was_not_sent(servers, gunicorn):
    dead = f"127.0.0.1:{free_port()}"
    front = servers({"/": "@m"}, {"@m": [f"{dead} 5", gunicorn.member]})
    with httpx.Client(timeout=10) as client:
        for _ in range(6):
            assert client.get(front.url("/echo")).status_code == 200
            posted = client.post(front.url("/echo"), content=b"body" * 1000)
            assert posted.status_code == 200 and posted.json()["size"] == 4000


def test_a_member_that_answers_no_http_is_a_502(servers, raw):
    member = raw(lambda data: b"SSH-2.0-OpenSSH\r\n\r\n" if b"\r\n\r\n" in data else None)
    front = servers({"/": "@m"}, {"@m": [member.member]})
    assert httpx.get(front.url("/x"), timeout=10).status_code == 502


def test_a_slow_member_is_a_504_after_the_channel_timeout(servers, gunicorn, caplog):
    caplog.set_level(logging.WARNING, "skitai.gateway.proxy")
    front = servers({"/": "@m"}, {"@m": [gunicorn.member]}, proxy_keep_alive=1.0)
    started = time.monotonic()
    response = httpx.get(front.url("/slow?wait=4"), headers={"X-Gtxn-Id": "GTID-slow-7"}, timeout=10)
    assert response.status_code == 504 and time.monotonic() - started < 3.5
    assert any("GTID-slow-7" in line and "504" in line for line in proxy_log(caplog)), proxy_log(caplog)
    assert httpx.get(front.url("/slow?wait=0.1"), timeout=10).status_code == 200


def test_a_member_that_breaks_off_mid_body_cuts_the_response(servers, raw):
    member = raw(lambda data: b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
                 if b"\r\n\r\n" in data else None, close=True)
    front = servers({"/": "@m"}, {"@m": [member.member]})
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(front.url("/x"), timeout=10)


@pytest.mark.parametrize("closing", [
    {"close": True},          # the member closed a pooled connection after its answer
    {"close_on_next": True},  # ... or as the next request arrives: retried on a new one
], ids=["closed_is_replaced", "closed_as_the_request_arrives_is_retried"])
def test_a_pooled_connection_the_member_closed_is_replaced(servers, raw, closing):
    member = raw(lambda data: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" if b"\r\n\r\n" in data else None,
                 **closing)
    front = servers({"/": "@m"}, {"@m": [member.member]})
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            response = client.get(front.url("/x"))
            assert response.status_code == 200 and response.text == "ok"
    assert len(member.received) == 3


def test_a_client_that_leaves_mid_download_frees_the_member_connection(servers, raw):
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + b"x" * (64 * 1024 * 1024)
    member = raw(lambda data: huge if b"\r\n\r\n" in data else None)
    front = servers({"/": "@m"}, {"@m": [member.member]})
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # the proxy closed its side, so the member's send failed (on its own it would give up after 10 s)
    wait_for(lambda: member.ended == 1, timeout=5)
