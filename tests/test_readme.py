"""The README stays true where a test can tell: its contents list every section (and only those
there are), the development layout names every distribution, and the self-signed certificate
recipe runs without a prompt and makes the file every `--cacert` example names."""
from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import httpx

from skitai.testing import ServerThread, requires_commands

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def outside_code(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```\w*\n(.*?)^```", text, re.M | re.S)


def anchor(title: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_contents_link_every_section_in_order():
    headings = [match.group(2) for line in outside_code(README)
                if (match := re.match(r"(#{2,3}) (.+)", line)) and match.group(2) != "Contents"]
    listed = re.findall(r"\]\(#([^)]+)\)", section("Contents"))
    assert listed == [anchor(title) for title in headings]


def test_development_layout_names_every_distribution():
    layout = code_blocks(section("Development"))[0]
    folders = [path.parent.name for path in sorted(ROOT.glob("skitai-*/pyproject.toml"))]
    assert [folder for folder in folders if not re.search(rf"^{re.escape(folder)}/ ", layout, re.M)] == []


@requires_commands("openssl", install="apt-get install openssl")
def test_self_signed_recipe_runs_without_a_prompt_and_serves_https(tmp_path):
    recipe = next(block for block in code_blocks(README) if "openssl req -x509" in block)
    made = re.findall(r"-(?:out|keyout) (\S+)", recipe)
    assert sorted(set(re.findall(r"--cacert (\S+)", README))) == [name for name in made if name.endswith(".crt")]
    subprocess.run(["bash", "-c", recipe], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=60, check=True)
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"

    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"over TLS"]

    with ServerThread(ssl_certfile=str(cert), ssl_keyfile=str(key)).mount("/", hello) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(f"https://localhost:{server.port}/", verify=trusting, timeout=10)
    assert response.text == "over TLS"
