"""Loader for the HTTP/1.1 request corpus in this directory (format: README.md).

    from corpus import load_cases
    for case in load_cases("valid"):      # or "invalid"
        case.name, case.raw, case.expectation

A case is `<kind>/NAME.http` (escaped text, decoded by `decode_http`) or `<kind>/NAME.py` (a
generator whose `make()` returns the bytes). Its expectation is `<kind>/NAME.json`; a valid
generator may instead define `expected()` returning the same list. Stdlib only.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("valid", "invalid")

_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)


@dataclass
class Case:
    name: str
    raw: bytes = field(repr=False)
    expectation: list | dict  # valid: list of request dicts; invalid: {"status": ..., "why": ...}

    def __str__(self) -> str:
        return self.name


def decode_http(text: str, origin: str = "<string>") -> bytes:
    """Turn the escaped text of a .http file into wire bytes.

    Real newlines (LF, or CRLF from a CRLF checkout) are layout only and dropped. The escapes
    are \\r \\n \\t \\0 \\\\ and \\xHH; anything else after a backslash, a literal tab or CR,
    and any non-ASCII or control character is an error, so no invisible byte sneaks in.
    """
    text = text.replace("\r\n", "\n").replace("\n", "")
    for index, char in enumerate(text):
        if not (" " <= char <= "~"):
            raise ValueError(f"{origin}: raw character {char!r} at offset {index}; write it as an escape")
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position:match.start()].encode("ascii")
        code = match.group(1)
        if code[0] == "x" and len(code) == 3:
            out.append(int(code[1:], 16))
        elif code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code]
        else:
            raise ValueError(f"{origin}: unknown escape \\{code} at offset {match.start()}")
        position = match.end()
    out += text[position:].encode("ascii")
    return bytes(out)


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"http1_case_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_case(kind: str, name: str) -> Case:
    folder = HERE / kind
    http_file, generator, json_file = (folder / f"{name}{ext}" for ext in (".http", ".py", ".json"))
    if http_file.exists() == generator.exists():
        raise ValueError(f"{kind}/{name}: needs exactly one of .http and .py")
    module = _import(generator) if generator.exists() else None
    raw = module.make() if module else decode_http(http_file.read_text("ascii"), str(http_file))
    if json_file.exists():
        expectation = json.loads(json_file.read_text("utf-8"))
    elif module is not None and kind == "valid" and hasattr(module, "expected"):
        expectation = module.expected()
    else:
        raise ValueError(f"{kind}/{name}: no expectation ({name}.json)")
    if not isinstance(raw, bytes) or not raw:
        raise ValueError(f"{kind}/{name}: empty or non-bytes request")
    if kind == "valid" and not (isinstance(expectation, list) and expectation):
        raise ValueError(f"{kind}/{name}: a valid expectation is a non-empty list of requests")
    if kind == "invalid" and not isinstance(expectation.get("status"), int):
        raise ValueError(f"{kind}/{name}: an invalid expectation needs an integer status")
    return Case(name, raw, expectation)


def load_cases(kind: str) -> list[Case]:
    """Every case of `kind` ("valid" or "invalid"), sorted by name."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    folder = HERE / kind
    names = sorted({path.stem for path in folder.iterdir() if path.suffix in (".http", ".py")})
    return [load_case(kind, name) for name in names]


if __name__ == "__main__":
    for kind in KINDS:
        cases = load_cases(kind)
        print(f"{kind}: {len(cases)} cases")
