"""Bodies of upstream calls: what `data` becomes on the wire, and what a response body becomes.

The manual's rule: requests and answers are JSON unless the headers say otherwise. `data` is
sent as JSON by default; `Content-Type: application/x-www-form-urlencoded` sends a form,
`text/...` (or any other type) a string as it is; bytes always go as they are. `was.upload`
sends `multipart/form-data` (see `upload_parts`). An answer is decoded by its own Content-Type:
JSON to Python objects, text (text/..., XML, JavaScript) to `str` by its charset, anything else
stays `bytes`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_TEXT_TYPES = ("application/xml", "application/javascript", "application/xhtml+xml")


class BadUpstreamResponse(Exception):
    """The backend answered something unusable: a body that does not decode as its Content-Type
    says, or one larger than the call's `max_size`. A Bad Gateway (STA_NETERR, 502)."""


def request_headers(headers: Any) -> CIMultiDict:
    """The call's headers (a dict or a list of pairs) with `Accept: application/json` unless
    they name another."""
    fields = CIMultiDict(headers.items() if isinstance(headers, Mapping) else (headers or ()))
    fields.setdefault("Accept", JSON)
    return fields


def encode_body(data: Any, headers: CIMultiDict) -> bytes | None:
    """The request body for `data`, setting `Content-Type` in `headers` when it is missing."""
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        headers.setdefault("Content-Type", "application/octet-stream")
        return bytes(data)
    content_type = headers.setdefault("Content-Type", JSON)
    mime, charset = _media_type(content_type)
    if mime == JSON or mime.endswith("+json"):
        return json.dumps(data).encode(charset or "utf-8")
    if mime == FORM and not isinstance(data, str):
        return urlencode(data, doseq=True).encode("ascii")
    if isinstance(data, str):
        return data.encode(charset or "utf-8")
    raise TypeError(f"cannot send {type(data).__name__} as {mime}: give str or bytes, or a JSON or form "
                    "Content-Type")


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body: a field (`filename` None) or a file."""

    name: str
    value: str | bytes
    filename: str | None = None
    content_type: str | None = None


def upload_parts(data: Any, headers: CIMultiDict) -> tuple[Part, ...]:
    """The parts of `was.upload`'s `data`, a dict (or pairs) of field name to value: a `str` or
    number is a field; `bytes` a file named like its field; an open binary file a file with its
    own name (read here, in the app's thread, so that a fail-over can send it again); a tuple
    `(filename, bytes)` or `(filename, bytes, content_type)` a file named so. The client sets
    the multipart Content-Type with its boundary, so the call's own is dropped."""
    headers.popall("Content-Type", None)
    parts = []
    for name, value in (data.items() if isinstance(data, Mapping) else data or ()):
        if isinstance(value, tuple):
            parts.append(Part(name, bytes(value[1]), value[0], *value[2:3]))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            parts.append(Part(name, bytes(value), name))
        elif hasattr(value, "read"):
            content = value.read()
            if not isinstance(content, bytes):
                raise TypeError(f"upload field {name!r}: open the file in binary mode ('rb')")
            parts.append(Part(name, content, os.path.basename(getattr(value, "name", "") or name)))
        else:
            parts.append(Part(name, str(value)))
    return tuple(parts)


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """A response body by its Content-Type (None for an empty JSON body)."""
    mime, charset = _media_type(content_type or "")
    if mime == JSON or mime.endswith("+json"):
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode(charset or "utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise BadUpstreamResponse(f"the backend's {mime} body does not decode: {error}") from error
    if mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith("+xml"):
        return raw.decode(charset or "utf-8", "replace")
    return raw


def _media_type(content_type: str) -> tuple[str, str | None]:
    mime, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return mime.lower(), charset


def form_data(parts: tuple[Part, ...]) -> aiohttp.MultipartWriter:
    """A multipart/form-data body, made afresh for each attempt (a writer is sent once)."""
    writer = aiohttp.MultipartWriter("form-data")
    for part in parts:
        payload = writer.append(part.value, {"Content-Type": part.content_type} if part.content_type else None)
        names = {"name": part.name} if part.filename is None else {"name": part.name, "filename": part.filename}
        payload.set_content_disposition("form-data", **names)
    return writer
