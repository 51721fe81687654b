"""`skitai.test_client`: test an app script the way its users reach it, over a real socket.

The script runs in its own process as `python app.py --port=N`, so a test goes through the
same command line, mounts, workers and HTTP stack as production; the test talks to it with
httpx over one keep-alive connection pool. httpx comes with the `testclient` extra
(`pip install "skitai[testclient]"`), not with the server's dependencies, so it is imported only
when a test client is made.
"""
from __future__ import annotations

import json
import os
import socket
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .testing import ServerProcess, free_port, wait_for_port

HOST = "127.0.0.1"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError('skitai.test_client needs httpx: pip install "skitai[testclient]"') from exc
    return httpx


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


class Response:
    """An httpx response (every attribute of it: `status_code`, `text`, `content`, `headers`,
    `json()` ...) plus `data`, the body the way the app meant it:

    - JSON (`application/json` or any `+json` type): the decoded value, None for an empty body;
    - `text/*`: the text, decoded with the response's charset;
    - anything else: the raw bytes.
    """

    def __init__(self, response: Any) -> None:
        self.response = response

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle probe these before `response` is set
            raise AttributeError(name)
        return getattr(self.response, name)

    @property
    def data(self) -> Any:
        media_type = _media_type(self.response.headers.get("content-type", ""))
        if media_type == "application/json" or media_type.endswith("+json"):
            return json.loads(self.response.content) if self.response.content else None
        if media_type.startswith("text/"):
            return self.response.text
        return self.response.content

    def __repr__(self) -> str:
        request = self.response.request
        return f"<Response [{self.response.status_code}] {request.method} {request.url.raw_path.decode()}>"


def _merged(value: Any, fields: dict) -> Any:
    """One positional value (a dict, or a list for a JSON array) and/or keyword fields."""
    if not fields:
        return value
    if value is None:
        return fields
    if isinstance(value, Mapping):
        return {**value, **fields}
    raise TypeError(f"keyword fields cannot be added to a {type(value).__name__}")


class Stub:
    """A path built by attribute access and calls, then sent by a method call:

    `stub.apis.pets(45).get()` is GET /apis/pets/45; `stub.apis.pets.get(limit=10)` is
    GET /apis/pets?limit=10; `stub.apis.pets.post({"name": "Tom"})` or `.post(name="Tom")`
    sends that JSON body. A segment named like a method (`get`) or starting with `_` is given
    as a call: `stub.apis("get")`.
    """

    def __init__(self, client: "TestClient", path: str = "", headers: Mapping | None = None) -> None:
        self._client = client
        self._path = path
        self._headers = headers

    def __getattr__(self, name: str) -> "Stub":
        if name.startswith("_"):  # copy, pickle and introspection probe these; never a segment
            raise AttributeError(name)
        return self(name)

    def __call__(self, *segments: Any) -> "Stub":
        path = self._path + "".join("/" + quote(str(segment), safe="") for segment in segments)
        return Stub(self._client, path, self._headers)

    def _send(self, method: str, **kwargs: Any) -> Response:
        return self._client.request(method, self._path or "/", headers=self._headers, **kwargs)

    def get(self, params: Mapping | None = None, /, **more: Any) -> Response:
        return self._send("GET", params=_merged(params, more))

    def head(self, params: Mapping | None = None, /, **more: Any) -> Response:
        return self._send("HEAD", params=_merged(params, more))

    def options(self, params: Mapping | None = None, /, **more: Any) -> Response:
        return self._send("OPTIONS", params=_merged(params, more))

    def delete(self, params: Mapping | None = None, /, **more: Any) -> Response:
        return self._send("DELETE", params=_merged(params, more))

    def post(self, body: Any = None, /, **fields: Any) -> Response:
        return self._send("POST", json=_merged(body, fields))

    def put(self, body: Any = None, /, **fields: Any) -> Response:
        return self._send("PUT", json=_merged(body, fields))

    def patch(self, body: Any = None, /, **fields: Any) -> Response:
        return self._send("PATCH", json=_merged(body, fields))

    def __repr__(self) -> str:
        return f"<Stub {self._path or '/'}>"


class TestClient:
    """Runs `script` on `port` (a free one when omitted) and sends requests to it.

    The server starts as soon as the client is made, so it works as a `with` block and as a
    pytest fixture (`c = skitai.test_client(...); yield c; c.stop()`). `--port=N` overrides the
    port the script gives `skitai.run()`; `args` are more command-line words and `env` more
    environment variables for the script. With `dry=True` nothing is started: the client talks
    to a server already running on `port` (started by hand, to watch its console).
    """

    __test__ = False  # a class named Test* in a test module is not a test

    def __init__(self, script: str, port: int | None = None, dry: bool = False, *,
                 args: tuple[str, ...] | list[str] = (), env: Mapping[str, str] | None = None,
                 timeout: float = 10.0, startup_timeout: float = 60.0) -> None:
        httpx = _httpx()
        self.script = os.path.abspath(script)
        self.dry = dry
        self.server: ServerProcess | None = None
        if dry:
            if port is None:
                raise ValueError("test_client(dry=True) needs the port the server was started on")
            self.port = int(port)
            self._wait_for_dry_server(startup_timeout)
        else:
            self.port = int(port) if port else free_port()
            self._start(args, env, startup_timeout)
        self._http = httpx.Client(base_url=self.url(""), timeout=timeout, trust_env=False)

    def _wait_for_dry_server(self, timeout: float) -> None:
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            raise ConnectionError(
                f"test_client(dry=True): no server answers on {HOST}:{self.port}; start it first "
                f"(python {os.path.relpath(self.script)} --port={self.port})") from None

    def _start(self, args: tuple[str, ...] | list[str], env: Mapping[str, str] | None,
               timeout: float) -> None:
        if not os.path.isfile(self.script):
            raise FileNotFoundError(f"test_client: no script {self.script}")
        if _listening(self.port):
            # it would fail to bind, and until it exits the client would talk to the other one
            raise RuntimeError(f"test_client: port {self.port} is already in use; to test a server "
                               f"started by hand, use test_client(..., dry=True)")
        server = ServerProcess(self.script, *args, port=self.port, env=dict(env or {}),
                               startup_timeout=timeout)
        server.start()
        self.server = server
        # a fixture that forgets stop() still leaves no server behind when the tests exit
        self._stop_server = weakref.finalize(self, server.stop)

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def request(self, method: str, path: str = "/", **kwargs: Any) -> Response:
        """Sends `method path`; keyword arguments as httpx's `Client.request` takes them:
        `params`, `headers`, `json`, `data` (a form), `files`, `content`, `cookies`, `timeout`."""
        return Response(self._http.request(method, path, **kwargs))

    def get(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("OPTIONS", path, **kwargs)

    def delete(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    def post(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str = "/", **kwargs: Any) -> Response:
        return self.request("PATCH", path, **kwargs)

    def api(self, headers: Mapping[str, str] | None = None) -> Stub:
        """A stub of the app's URL tree; `headers` go with every request made through it."""
        return Stub(self, headers=headers)

    def stop(self) -> None:
        """Closes the connections and stops the server this client started (SIGTERM, then
        SIGKILL after 15 s); again is a no-op, and a dry client's server is left running."""
        self._http.close()
        if self.server is not None:
            self._stop_server()

    def __enter__(self) -> "TestClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        mode = "dry" if self.dry else "started"
        return f"<TestClient {mode} {os.path.basename(self.script)} on {self.url('')}>"


test_client = TestClient
