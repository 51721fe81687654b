import http.client

import httpx


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello World"]


def test_hello_over_http_client(serve):
    server = serve(hello)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):  # keep-alive: same connection
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"Hello World"
        assert response.getheader("Content-Length") == "11"
        assert response.getheader("Server").startswith("skitai/")
        assert response.getheader("Date")
    conn.close()


def test_hello_with_httpx_threads_zero(serve):
    server = serve(hello, threads=0)
    with httpx.Client(timeout=5) as client:
        response = client.post(server.url("/x"), content=b"a" * 100000)
        assert response.status_code == 200
        assert response.text == "Hello World"
