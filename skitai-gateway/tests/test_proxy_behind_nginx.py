"""nginx in front of the Skitai reverse proxy, configured as the manual's "Skitai with Nginx"
(trimmed to plain HTTP): requests, bodies and a WebSocket pass nginx -> Skitai -> member, and
the client's address survives the chain because Skitai trusts nginx
(`skitai.set_proxy_trusted`)."""
import os
import threading

import httpx
import pytest
from proxyservers import proxy_server
from websockets.sync.client import connect
from websockets.sync.server import serve

from skitai.testing import Nginx, StartedServers, free_port, requires_commands

pytestmark = requires_commands("nginx", install="apt-get install nginx-light")

NGINX_HTTP = """
    upstream backend {{
        server 127.0.0.1:{skitai};
        keepalive 100;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 30s;
        proxy_http_version 1.1;
        proxy_set_header X-NginX-Proxy true;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        add_header X-Backend "skitai app engine";
        proxy_set_header Host $http_host;
        location / {{
            proxy_pass http://backend;
            client_max_body_size 2g;
            # (not the manual's: nginx's workers run as nobody and cannot write temp files
            # under the test's private folder, so bodies stream instead of spooling)
            proxy_request_buffering off;
            proxy_max_temp_file_size 0;
        }}
        location /websocket {{
            proxy_pass http://backend;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "Upgrade";
            proxy_read_timeout 86400;
        }}
    }}
"""


@pytest.fixture
def ws_member():
    def echo(websocket):
        for message in websocket:
            websocket.send(message)

    server = serve(echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.socket.getsockname()[1]}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def nginx_in_front(tmp_path, gunicorn, ws_member):
    started = StartedServers(lambda **settings: proxy_server(
        {"/": "@app", "/websocket": "@ws"}, {"@app": [gunicorn.member], "@ws": [ws_member]}, **settings))
    skitai = started(proxy_trusted=["127.0.0.1"])
    port = free_port()
    os.chmod(tmp_path, 0o755)
    try:
        with Nginx(tmp_path, NGINX_HTTP.format(skitai=skitai.port, port=port), port):
            yield port
    finally:
        started.stop()


def test_requests_pass_nginx_and_the_skitai_proxy(nginx_in_front):
    port = nginx_in_front
    with httpx.Client(timeout=10) as client:
        response = client.post(f"http://127.0.0.1:{port}/echo?q=1", content=b"z" * 300_000,
                               headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 200 and response.headers["x-backend"] == "skitai app engine"
    seen = response.json()
    assert seen["size"] == 300_000 and seen["query"] == "q=1"
    # nginx appended the client; Skitai trusts nginx, so it keeps that and appends nginx
    assert seen["headers"]["X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.1, 127.0.0.1"
    assert seen["headers"]["X_FORWARDED_HOST"] == f"127.0.0.1:{port}"
    assert seen["headers"]["X_NGINX_PROXY"] == "true" and seen["headers"]["VIA"] == "1.1 skitai"


def test_a_websocket_passes_nginx_and_the_skitai_proxy(nginx_in_front):
    with connect(f"ws://127.0.0.1:{nginx_in_front}/websocket/room", open_timeout=10, close_timeout=5) as ws:
        ws.send("through both")
        assert ws.recv(timeout=10) == "through both"
