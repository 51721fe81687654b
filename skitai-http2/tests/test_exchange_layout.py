"""A stream's exchange keeps every attribute in CPython's shared compact layout: the layout
holds at most 30 names a class (CPython 3.11's SHARED_KEYS_MAX_SIZE), and an instance that
sets a name outside it, or one name too many, gets a dict of its own, some thousands of
instructions a request (`Exchange.__init__`). With the core's, StreamExchange's and the
protocol's own names all in `__dict__`, every HTTP/2 exchange had gone past it."""
import httpx
import pytest
from apps import APP

from skitai_http2.exchange import H2Exchange

SHARED_KEYS_MAX = 30


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/", None),
    ("POST", "/echo", b"x" * 1000),
    ("GET", "/stream", None),   # a streamed body, beyond the stream window
])
def test_the_usual_paths_keep_an_exchanges_names_few_and_set_at_init(serve, monkeypatch, method, path, body):
    made = []
    init = H2Exchange.__init__

    def recording_init(self, *args):
        init(self, *args)
        made.append((self, set(vars(self))))

    monkeypatch.setattr(H2Exchange, "__init__", recording_init)
    server = serve(APP)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.request(method, server.url(path), content=body)
        assert response.http_version == "HTTP/2" and response.status_code == 200
    (exchange, at_init), = made
    assert exchange.finished
    assert set(vars(exchange)) == at_init
    assert len(at_init) <= SHARED_KEYS_MAX
