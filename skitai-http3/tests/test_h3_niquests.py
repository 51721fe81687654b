"""niquests (HTTP/3 through qh3, an independent QUIC stack) finds HTTP/3 the way a browser does:
from the `Alt-Svc` of an answer over TCP, then it speaks HTTP/3 to the QUIC port."""
import hashlib

import niquests
from h3apps import APP


def test_niquests_follows_alt_svc_to_http3(serve, certs):
    server = serve(APP)
    with niquests.Session() as session:
        first = session.get(f"https://localhost:{server.port}/", timeout=10, verify=certs.ca)
        later = [session.get(f"https://localhost:{server.port}/", timeout=10, verify=certs.ca) for _ in range(3)]
        data = bytes(range(256)) * 1000
        upload = session.post(f"https://localhost:{server.port}/echo", data=data, timeout=10, verify=certs.ca)
    assert first.status_code == 200 and first.headers["alt-svc"] == f'h3=":{server.quic_port}"; ma=86400'
    assert [response.http_version for response in later] == [30, 30, 30]
    # (niquests names the alternative's port in :authority, not the origin's: RFC 7838 2.4 asks
    # for the origin's, so only the protocol is checked)
    assert later[0].text.startswith("HTTP/3.0 GET localhost:")
    assert upload.http_version == 30 and upload.text == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_niquests_straight_to_http3(serve, certs):
    """A client told where HTTP/3 is (niquests' QUIC cache) goes there first, no TCP."""
    server = serve(APP)
    with niquests.Session(disable_http1=True, disable_http2=True) as session:
        session.quic_cache_layer.add_domain("localhost", server.quic_port)
        response = session.get(f"https://localhost:{server.quic_port}/stream", timeout=30, verify=certs.ca)
    assert response.http_version == 30 and len(response.content) == 4 * 1024 * 1024
