"""The README's demo app, run as users run it: `python examples/hello/app.py`."""
import signal
from pathlib import Path

import httpx

from skitai.testing import ServerProcess

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello" / "app.py"


def test_demo_answers_hello_and_serves_static_file_then_stops_cleanly():
    server = ServerProcess(str(HELLO))
    with server:
        with httpx.Client(timeout=5) as client:
            hello = client.get(server.url("/x"))
            assert hello.status_code == 200 and hello.text == "Hello World"
            static = client.get(server.url("/hello.txt"))
            assert static.status_code == 200 and static.text == "Hello from a static file.\n"
            index = client.get(server.url("/"))
            assert "<h1>Skitai</h1>" in index.text
        server.signal(signal.SIGTERM)
        assert server.process.wait(15) == 0
    output = server.output
    assert f"serving on http://127.0.0.1:{server.port}/" in output
    assert " GET /hello.txt HTTP/1.1 0 200 26 " in output
