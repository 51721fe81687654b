"""The gateway as users run it: a script whose alias and settings reach worker processes that
loaded the plugin through its entry point, and the one-line refusal when the plugin is off."""
import os
import subprocess
import sys
import textwrap

import httpx

from skitai.testing import ServerProcess, free_port

SCRIPT = textwrap.dedent('''
    import json
    import os

    import skitai
    from skitai import was


    def app(environ, start_response):
        answers = was.Tasks([was.get.lb("@up/echo", {"n": n}) for n in range(3)]).fetch()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps([answer["query"]["n"][0] for answer in answers]).encode()]


    if __name__ == "__main__":
        skitai.alias("@up", skitai.PROTO_HTTP, os.environ["UPSTREAM"])
        skitai.set_backend_keep_alive(5)
        skitai.mount("/", app)
        skitai.run(workers=2)
''')


def test_a_script_with_workers_calls_its_alias(upstream, tmp_path):
    up = upstream()
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    with ServerProcess(str(script), env={"UPSTREAM": f"127.0.0.1:{up.port}"}) as server:
        answers = [httpx.get(server.url("/"), timeout=20).json() for _ in range(4)]
    assert answers == [["0", "1", "2"]] * 4
    assert "Traceback" not in server.output, server.output


def test_without_the_plugin_an_http_alias_stops_the_script_in_one_line(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), f"--port={free_port()}", "--disable-plugin=gateway"],
                            env={**os.environ, "UPSTREAM": "127.0.0.1:9"}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        'skitai: error: PROTO_HTTP needs skitai-gateway: pip install "skitai[gateway]"')
